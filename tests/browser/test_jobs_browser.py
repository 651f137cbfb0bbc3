"""One click turns a notebook into a batch GPU job, in a real browser.

A real hub (local-process spawner, simulated pool, the embedded default's local-process job
executor) spawns a person's JupyterLab; they open a notebook with a ``parameters`` cell,
click "Run as GPU job" in its toolbar, change a parameter in the dialog (a wrong value is
refused in place first), submit, watch the job reach "succeeded" in the Jobs panel with its
log, and open the executed notebook. A script that checkpoints runs as a spot job: it
is preempted for another user's guaranteed request and waits for its second attempt.
Debian's chromium driven by Playwright (never ``playwright install``); screenshots go to
``$GPUHUB_TEST_ARTIFACTS`` (default: the test's temporary folder) for CI to keep.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support import http
from tests.support.browser import log_in, standalone_lab
from tests.support.hub import Hub, put_notebook, wait_for

pytestmark = [pytest.mark.hub, pytest.mark.timeout(420)]

USER = f"jb{secrets.token_hex(3)}-hopper"
#: Someone whose guaranteed request takes the spot job's GPU back.
OTHER = f"jb{secrets.token_hex(3)}-lovelace"
PARAMETERS = "epochs = 2  # passes\nmessage = 'hello'\nuse_amp = False\n"
BODY = "print(f'epochs={epochs} message={message} use_amp={use_amp}')"
#: Two GPUs: the server holds one, a job runs on the other, a second job queues; the quota
#: lets one person hold a server, a running job and a queued one.
QUOTA = """
c.GpuhubService.default_user_quota = {"max_units": 4, "gpu_hours": 40, "period": "week"}
c.JobManager.default_max_runtime = 2 * 3600 + 30 * 60
c.JobManager.max_runtime = 12 * 3600
"""
#: Seconds from a preemption notice to the deadline (short: the test waits for it).
GRACE_S = 10
#: A spot job that resumes from its checkpoints: on the notice (SIGUSR1, which
#: gpuhub.checkpoint turns into a flag) it saves one and stops a few seconds later, well
#: before the deadline, so the Jobs panel can show the notice meanwhile.
SPOT_SCRIPT = """\
import time
from gpuhub import checkpoint

found = checkpoint.latest()
step = found.step if found else 0
print(f"attempt {checkpoint.attempt()} from step {step}", flush=True)
with checkpoint.on_notice():
    while not checkpoint.notice_given():
        step += 1
        time.sleep(0.1)
    checkpoint.save({"step": step}, step)
    print(f"notice: saved step {step}", flush=True)
    time.sleep(4)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A running hub on a simulated pool with the local-process spawner."""
    h = Hub(
        tmp_path_factory.mktemp("jobs-browser"),
        env={"GPUHUB_SPAWNER": "local", "GPUHUB_POLL_INTERVAL": "0.2",
             "GPUHUB_SIMULATED_SPEC": "sim-node-1: 2xH100-80GB[nvlink]",
             # spot jobs may be preempted at once, with a short notice
             "GPUHUB_SPOT_MIN_RUNTIME_S": "0", "GPUHUB_SPOT_GRACE_S": str(GRACE_S)},
        extra_config=QUOTA,
    )  # fmt: skip
    try:
        h.start()
        yield h
    finally:
        try:
            if h.proc is not None and h.server(USER) is not None:
                h.stop_server(USER)
        finally:
            h.stop()


@pytest.fixture
def page(hub: Hub, blank: Page) -> Page:
    """A chromium page logged in to the hub as USER (its login form, the user password)."""
    return log_in(blank, hub, USER)


def _put_notebook(
    hub: Hub, token: str, name: str, params: str = PARAMETERS, body: str = BODY
) -> None:
    """Save a notebook with a ``parameters`` cell and a cell that prints them."""
    put_notebook(hub, USER, token, name, body, parameters=params)


def test_run_as_gpu_job_from_the_notebook_toolbar(hub: Hub, page: Page, artifacts: Path) -> None:
    token = hub.add_user(USER)
    r = hub.spawn(USER, {"profile": "gpu-1"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(USER, timeout=60)
    _put_notebook(hub, token, "train.ipynb")

    page.goto(f"{hub.url}/user/{USER}/lab/tree/train.ipynb")
    button = page.locator(".jp-NotebookPanel-toolbar [data-command='gpuhub:run-as-job']")
    expect(button).to_be_visible(timeout=60000)
    expect(button).to_contain_text("Run as GPU job")

    # the file browser's context menu offers it on the notebook too
    page.locator(".jp-DirListing-item[data-file-type='notebook']", has_text="train.ipynb").click(
        button="right"
    )
    page.locator(".lm-Menu-itemLabel", has_text="Run as GPU job").click()
    dialog = page.locator(".jp-gpuhub-job-dialog")
    expect(dialog).to_contain_text("Notebook: train.ipynb", timeout=30000)
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    expect(dialog).to_be_hidden()

    button.click()
    expect(dialog).to_be_visible(timeout=30000)
    expect(dialog).to_contain_text("train.ipynb")
    expect(dialog.locator(".jp-gpuhub-job-shape option").nth(1)).to_contain_text("GPU")
    # the models behind the shape and the site's runtime limits come from GET /me/options
    expect(dialog.locator(".jp-gpuhub-job-shape option").nth(1)).to_contain_text("H100-80GB")
    expect(dialog.locator("#gpuhub-job-hours")).to_have_value("2")
    expect(dialog.locator("#gpuhub-job-minutes")).to_have_value("30")
    expect(dialog.locator("#gpuhub-job-hours")).to_have_attribute("max", "12")
    expect(dialog.locator(".jp-gpuhub-job-queue")).to_contain_text("queue")
    # the price of the GPUs chosen (the H100's rate per GPU-hour), as they change
    with hub.client(token) as client:
        [h100] = [r for r in client.get("/rates").json()["rates"] if r["model"] == "H100-80GB"]
    rate = h100["credits_per_gpu_hour"]
    price = dialog.locator(".jp-gpuhub-job-price")
    expect(price).to_have_text(f"≈ {rate:g} credits/h")
    shapes = dialog.locator(".jp-gpuhub-job-shape")
    expect(shapes.locator("option").nth(2)).to_contain_text("2 whole GPUs")
    shapes.select_option(index=2)
    expect(price).to_have_text(f"≈ {2 * rate:g} credits/h")
    shapes.select_option(value="")
    expect(price).to_have_text(f"≈ {rate:g} credits/h")
    epochs = dialog.locator("#gpuhub-param-epochs")
    expect(epochs).to_have_value("2")
    expect(dialog.locator("#gpuhub-param-message")).to_have_value("hello")
    expect(dialog.locator("#gpuhub-param-use_amp")).not_to_be_checked()
    submit = dialog.locator(".jp-Dialog-button.jp-mod-accept")

    epochs.fill("2.5")  # an int parameter: refused in place, Submit disabled
    expect(dialog).to_contain_text("epochs must be a whole number.")
    expect(submit).to_be_disabled()
    page.screenshot(path=str(artifacts / "jobs-dialog-invalid.png"))

    epochs.fill("7")
    dialog.locator("#gpuhub-param-message").fill("from the browser")
    dialog.locator("#gpuhub-param-use_amp").check()
    expect(submit).to_be_enabled()
    page.screenshot(path=str(artifacts / "jobs-dialog.png"))
    submit.click()
    expect(dialog).to_be_hidden(timeout=30000)

    panel = page.locator(".jp-gpuhub-jobs")
    expect(panel).to_be_visible(timeout=20000)
    row = panel.locator(".jp-gpuhub-job").first
    expect(row).to_contain_text("train")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=180000)
    expect(row).to_contain_text("GPU-h")
    log = panel.locator(".jp-gpuhub-job-log")
    expect(log).to_contain_text("epochs=7 message=from the browser use_amp=True", timeout=30000)
    page.screenshot(path=str(artifacts / "jobs-panel-succeeded.png"))

    panel.locator(".jp-gpuhub-job-open").click()
    output = page.locator(".jp-OutputArea-output", has_text="epochs=7 message=from the browser")
    expect(output.first).to_be_visible(timeout=30000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "jobs-executed-notebook.png"))

    # run again: the dialog comes back with the job's parameters
    panel.locator(".jp-gpuhub-job-rerun").click()
    expect(dialog.locator("#gpuhub-param-epochs")).to_have_value("7", timeout=30000)
    expect(dialog.locator("#gpuhub-param-message")).to_have_value("from the browser")
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    expect(dialog).to_be_hidden()

    # the output folder in the file browser: the executed notebook, the log, the artifacts
    panel.locator(".jp-gpuhub-job-folder").click()
    listing = page.locator(".jp-DirListing-content")
    expect(page.locator(".jp-BreadCrumbs")).to_contain_text("-train", timeout=20000)
    for name in ("train.ipynb", "job.log", "artifacts"):
        expect(listing.locator(".jp-DirListing-item", has_text=name).first).to_be_visible()
    page.screenshot(path=str(artifacts / "jobs-output-folder.png"))

    # the service has it as the user's job, with the parameters the dialog gave
    with hub.client(token) as client:
        [job] = client.get("/jobs").json()["jobs"]
    assert job["status"] == "succeeded"
    assert job["parameters"] == {
        "epochs": 7,
        "message": "from the browser",
        "use_amp": True,
    }, json.dumps(job)


def test_notebook_7_has_the_button_and_the_jobs_panel(
    hub: Hub, page: Page, artifacts: Path
) -> None:
    """Notebook 7: the same toolbar button opens the dialog; View → Show GPU jobs lists the
    job that ran above."""
    token = hub.add_user(USER)
    if hub.server(USER) is None:
        assert hub.spawn(USER, {"profile": "gpu-1"}).status_code in (201, 202)
        hub.wait_ready(USER, timeout=60)
        _put_notebook(hub, token, "train.ipynb")
    page.goto(f"{hub.url}/user/{USER}/notebooks/train.ipynb")
    button = page.locator(".jp-NotebookPanel-toolbar [data-command='gpuhub:run-as-job']")
    expect(button).to_be_visible(timeout=60000)
    button.click()
    dialog = page.locator(".jp-gpuhub-job-dialog")
    expect(dialog.locator("#gpuhub-param-epochs")).to_have_value("2", timeout=30000)
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    expect(dialog).to_be_hidden()

    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-itemLabel", has_text="Show GPU jobs (gpuhub)").click()
    panel = page.locator(".jp-gpuhub-jobs")
    expect(panel).to_be_visible(timeout=20000)
    expect(panel.locator(".jp-gpuhub-job").first).to_contain_text("train", timeout=20000)
    page.screenshot(path=str(artifacts / "jobs-notebook7.png"))


def test_a_queued_and_a_running_job_are_cancelled(hub: Hub, page: Page, artifacts: Path) -> None:
    """A long job runs on the second GPU; the next one queues with its position; Cancel
    ends the queued one at once and stops the running one."""
    token = hub.add_user(USER)
    if hub.server(USER) is None:
        assert hub.spawn(USER, {"profile": "gpu-1"}).status_code in (201, 202)
        hub.wait_ready(USER, timeout=60)
    _put_notebook(hub, token, "sleepy.ipynb", "seconds = 600\n", "import time\ntime.sleep(seconds)")
    page.goto(f"{hub.url}/user/{USER}/lab/tree/sleepy.ipynb?reset")  # no tabs of other tests
    button = page.locator(".jp-NotebookPanel-toolbar [data-command='gpuhub:run-as-job']:visible")
    dialog = page.locator(".jp-gpuhub-job-dialog")
    panel = page.locator(".jp-gpuhub-jobs")
    rows = {}
    for n, want in ((1, "running"), (2, "queued")):
        expect(button).to_be_visible(timeout=60000)
        button.click()
        expect(dialog).to_contain_text("sleepy.ipynb", timeout=30000)
        expect(dialog.locator("#gpuhub-param-seconds")).to_have_value("600")
        dialog.locator("#gpuhub-job-name").fill(f"sleepy-{n}")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        expect(dialog).to_be_hidden(timeout=30000)
        row = panel.locator(".jp-gpuhub-job", has_text=f"sleepy-{n}")
        expect(row).to_have_attribute("data-status", want, timeout=60000)
        rows[want] = row
    expect(rows["queued"]).to_contain_text("queued (#1)")
    page.screenshot(path=str(artifacts / "jobs-queued-and-running.png"))

    rows["queued"].click()
    panel.locator(".jp-gpuhub-job-cancel").click()  # a queued job: at once
    expect(rows["queued"]).to_have_attribute("data-status", "cancelled", timeout=30000)
    rows["running"].click()
    # the panel redraws as the queued job's end comes in: cancel once the running one is
    # the selected row, or the click may land on the row just cancelled
    expect(rows["running"]).to_have_class(re.compile("jp-mod-selected"), timeout=30000)
    panel.locator(".jp-gpuhub-job-cancel").click()  # a running one: once confirmed
    confirm = page.locator(".jp-Dialog", has_text="Stop job")
    expect(confirm).to_contain_text("what it wrote so far stays in its folder", timeout=30000)
    confirm.locator(".jp-Dialog-button.jp-mod-warn").click()
    expect(rows["running"]).to_have_attribute("data-status", "cancelled", timeout=90000)
    page.screenshot(path=str(artifacts / "jobs-cancelled.png"))


def _credits(n: float) -> str:
    """Credits as the extension writes them (format.ts ``credits``)."""
    text = f"{n:.{2 if n < 10 else 1 if n < 100 else 0}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _clock(iso: str, page: Page, fmt: str = "%H:%M") -> str:
    """A time as the panel writes it today: "14:05" on the browser's clock."""
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime(fmt)


def test_a_spot_job_is_preempted_and_waits_for_its_next_attempt(
    hub: Hub, page: Page, artifacts: Path, shoot: Callable[[Page, str], None]
) -> None:
    """The dialog offers Spot with its price and what it means; a checkpointing script
    goes as a spot job with its retries; another user's guaranteed request for the GPU
    takes it back: the panel warns of the notice, then shows attempt 2 waiting out its
    backoff and the first attempt preempted."""
    token = hub.add_user(USER)
    if hub.server(USER) is None:
        assert hub.spawn(USER, {"profile": "gpu-1"}).status_code in (201, 202)
        hub.wait_ready(USER, timeout=60)
    r = http.put(
        f"{hub.url}/user/{USER}/api/contents/spot_train.py",
        json={"type": "file", "format": "text", "content": SPOT_SCRIPT},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text
    with hub.client(token) as client:
        spot = client.get("/me/options").json()["spot"]
        [h100] = [r for r in client.get("/rates").json()["rates"] if r["model"] == "H100-80GB"]
    assert spot["enabled"] and spot["grace_s"] == GRACE_S, spot
    rate, pct = h100["credits_per_gpu_hour"], f"{spot['discount'] * 100:g}"

    page.goto(f"{hub.url}/user/{USER}/lab?reset")
    item = page.locator(".jp-DirListing-item[data-file-type='python']", has_text="spot_train.py")
    expect(item).to_be_visible(timeout=60000)
    item.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Run as GPU job").click()
    dialog = page.locator(".jp-gpuhub-job-dialog")
    expect(dialog).to_contain_text("Script: spot_train.py", timeout=30000)
    box = dialog.locator("#gpuhub-job-spot")
    expect(box).not_to_be_checked()
    # what spot means, from the site's numbers (its discount and notice)
    expect(dialog.locator(".jp-gpuhub-job-spot-note")).to_have_text(
        f"{pct} % of the price; may be stopped with {GRACE_S} s notice and resumed from its"
        " checkpoints (gpuhub.checkpoint)"
    )
    price = dialog.locator(".jp-gpuhub-job-price")
    retries = dialog.locator("#gpuhub-job-retries")
    expect(price).to_have_text(f"≈ {_credits(rate)} credits/h")
    expect(retries).to_be_hidden()  # asked for spot jobs only
    box.check()
    expect(price).to_have_text(
        f"≈ {_credits(rate * spot['discount'])} credits/h spot (guaranteed: ≈ {_credits(rate)}"
        " credits/h)"
    )
    expect(retries).to_have_value("10")
    submit = dialog.locator(".jp-Dialog-button.jp-mod-accept")
    retries.fill("101")  # refused in place, Submit disabled
    expect(dialog).to_contain_text("Retries if preempted: a whole number from 0 to 100.")
    expect(submit).to_be_disabled()
    retries.fill("3")
    dialog.locator("#gpuhub-job-name").fill("spot-train")
    expect(submit).to_be_enabled()
    shoot(page, "jobs-dialog-spot")
    submit.click()
    expect(dialog).to_be_hidden(timeout=30000)

    panel = page.locator(".jp-gpuhub-jobs")
    row = panel.locator(".jp-gpuhub-job", has_text="spot-train")
    expect(row).to_have_attribute("data-status", "running", timeout=60000)
    expect(row.locator(".jp-gpuhub-job-tier")).to_have_text("spot")
    with hub.client(token) as client:
        [job] = [j for j in client.get("/jobs").json()["jobs"] if j["name"] == "spot-train"]
    assert job["tier"] == "spot" and job["retry"]["preempted"] == 3, json.dumps(job)
    log = panel.locator(".jp-gpuhub-job-log")
    row.click()
    expect(log).to_contain_text("attempt 1 from step 0", timeout=30000)

    other = hub.client(hub.add_user(OTHER))
    lease = None
    try:
        # a guaranteed whole GPU: the server holds one, the spot job the other
        r = other.post("/leases", json={"shape": {"kind": "gpu"}, "label": "needs it now"})
        assert r.status_code == 201 and r.json()["status"] == "queued", r.text
        lease = r.json()["id"]
        me = hub.client(token)

        def noticed() -> dict | None:
            j = me.get(f"/jobs/{job['id']}").json()
            return j if j["preemption"] else None

        notice = wait_for(noticed, timeout=20, step=0.2)["preemption"]
        panel.locator(".jp-gpuhub-jobs-refresh").click()
        warning = f"preempted: checkpoint now, stops by {_clock(notice['deadline'], page)}"
        expect(row.locator(".jp-gpuhub-job-preempt")).to_have_text(warning)
        expect(panel.locator(".jp-gpuhub-job-detail .jp-gpuhub-job-preempt")).to_have_text(warning)
        expect(log).to_contain_text("notice: saved step", timeout=10000)
        page.screenshot(path=str(artifacts / "jobs-panel-spot-notice.png"))

        def retried() -> dict | None:
            j = me.get(f"/jobs/{job['id']}").json()
            return j if j["attempt"] == 2 and j["next_attempt_at"] else None

        waiting = wait_for(retried, timeout=GRACE_S + 15, step=0.2)
        first, second = waiting["attempts"]
        assert (first["status"], first["failure"]) == ("preempted", "preempted"), waiting
        assert second["lease_id"] is None and waiting["status"] == "queued", waiting
        # the other user got the GPU
        assert other.get(f"/leases/{lease}").json()["status"] == "active"
        panel.locator(".jp-gpuhub-jobs-refresh").click()
        at = _clock(waiting["next_attempt_at"], page)
        expect(row).to_have_attribute("data-status", "queued")
        expect(row.locator(".jp-gpuhub-job-state")).to_have_text("queued")
        expect(row.locator(".jp-gpuhub-job-facts")).to_contain_text(f"attempt 2 at {at}")
        expect(row.locator(".jp-gpuhub-job-preempt")).to_have_count(0)
        detail = panel.locator(".jp-gpuhub-job-detail")
        expect(detail.locator("dt", has_text="Next attempt").locator("+ dd")).to_have_text(
            f"at {at}"
        )
        attempts = detail.locator(".jp-gpuhub-job-attempt")
        expect(attempts).to_have_count(2)
        expect(attempts.nth(0)).to_have_attribute("data-status", "preempted")
        expect(attempts.nth(0)).to_contain_text("Attempt 1")
        expect(attempts.nth(0).locator(".jp-gpuhub-job-state")).to_have_text("preempted")
        # why it ended: the service's sentence, its times on the browser's clock
        why = attempts.nth(0).locator(".jp-gpuhub-job-attempt-why")
        expect(why).to_contain_text("preempted: its spot GPU lease")
        expect(why).to_contain_text(f"deadline {_clock(notice['deadline'], page, '%H:%M:%S')}")
        expect(attempts.nth(0)).to_contain_text("GPU-h")
        expect(attempts.nth(1)).to_contain_text("Attempt 2")
        expect(attempts.nth(1)).to_have_attribute("data-status", "queued")
        expect(detail).to_contain_text("run again up to 3 times if preempted")
        shoot(page, "jobs-panel-spot")
        me.close()
    finally:
        client = hub.client(token)
        client.delete(f"/jobs/{job['id']}")
        client.close()
        if lease is not None:
            other.delete(f"/leases/{lease}")
        other.close()
    with hub.client(token) as client:
        ended = client.get(f"/jobs/{job['id']}").json()
    assert ended["status"] == "cancelled", ended


@pytest.mark.parametrize(
    "state, panel_text",
    [
        ("no-service", "This server does not know the gpuhub service"),
        ("no-extension", "The gpuhub server extension (jupyter_gpuhub) is not installed"),
    ],
)
def test_without_the_service_or_extension_the_panel_says_so(
    tmp_path: Path, artifacts: Path, blank: Page, state: str, panel_text: str
) -> None:
    """A JupyterLab outside the hub (no service), or without the server extension: the
    Jobs panel says which, plainly."""
    with standalone_lab(tmp_path, extension=state != "no-extension") as lab:
        page = blank
        page.goto(lab)
        page.locator(".lm-MenuBar-itemLabel", has_text="View").click(timeout=60000)
        page.locator(".lm-Menu-itemLabel", has_text="Show GPU jobs (gpuhub)").click()
        panel = page.locator(".jp-gpuhub-jobs")
        expect(panel).to_contain_text(panel_text, timeout=30000)
        page.screenshot(path=str(artifacts / f"jobs-panel-{state}.png"))


def _answers(url: str) -> bool:
    try:
        return http.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

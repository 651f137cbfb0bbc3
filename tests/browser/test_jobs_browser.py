"""One click turns a notebook into a batch GPU job, in a real browser.

A real hub (local-process spawner, simulated pool, the embedded default's local-process job
executor) spawns a person's JupyterLab; they open a notebook with a ``parameters`` cell,
click "Run as GPU job" in its toolbar, change a parameter in the dialog (a wrong value is
refused in place first), submit, watch the job reach "succeeded" in the Jobs panel with its
log, and open the executed notebook. Debian's chromium driven by Playwright (never
``playwright install``); screenshots go to ``$GPUHUB_TEST_ARTIFACTS`` (default: the test's
temporary folder) for CI to keep.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import chromium, log_in, new_page, standalone_lab
from tests.support.hub import Hub, put_notebook

pytestmark = [pytest.mark.hub, pytest.mark.timeout(420)]

USER = f"jb{secrets.token_hex(3)}-hopper"
PARAMETERS = "epochs = 2  # passes\nmessage = 'hello'\nuse_amp = False\n"
BODY = "print(f'epochs={epochs} message={message} use_amp={use_amp}')"
#: Two GPUs: the server holds one, a job runs on the other, a second job queues; the quota
#: lets one person hold a server, a running job and a queued one.
QUOTA = """
c.GpuhubService.default_user_quota = {"max_units": 4, "gpu_hours": 40, "period": "week"}
c.JobManager.default_max_runtime = 2 * 3600 + 30 * 60
c.JobManager.max_runtime = 12 * 3600
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A running hub on a simulated pool with the local-process spawner."""
    h = Hub(
        tmp_path_factory.mktemp("jobs-browser"),
        env={"GPUHUB_SPAWNER": "local", "GPUHUB_POLL_INTERVAL": "0.2",
             "GPUHUB_SIMULATED_SPEC": "sim-node-1: 2xH100-80GB[nvlink]"},
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
def page(hub: Hub) -> Iterator[Page]:
    """A chromium page logged in to the hub as USER (its login form, the user password)."""
    with chromium() as browser:
        yield log_in(new_page(browser), hub, USER)


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
    panel.locator(".jp-gpuhub-job-cancel").click()  # a running one: once confirmed
    confirm = page.locator(".jp-Dialog", has_text="Stop job")
    expect(confirm).to_contain_text("what it wrote so far stays in its folder")
    confirm.locator(".jp-Dialog-button.jp-mod-warn").click()
    expect(rows["running"]).to_have_attribute("data-status", "cancelled", timeout=90000)
    page.screenshot(path=str(artifacts / "jobs-cancelled.png"))


@pytest.mark.parametrize(
    "state, panel_text",
    [
        ("no-service", "This server does not know the gpuhub service"),
        ("no-extension", "The gpuhub server extension (jupyter_gpuhub) is not installed"),
    ],
)
def test_without_the_service_or_extension_the_panel_says_so(
    tmp_path: Path, artifacts: Path, state: str, panel_text: str
) -> None:
    """A JupyterLab outside the hub (no service), or without the server extension: the
    Jobs panel says which, plainly."""
    with standalone_lab(tmp_path, extension=state != "no-extension") as lab, chromium() as b:
        page = new_page(b)
        page.goto(lab)
        page.locator(".lm-MenuBar-itemLabel", has_text="View").click(timeout=60000)
        page.locator(".lm-Menu-itemLabel", has_text="Show GPU jobs (gpuhub)").click()
        panel = page.locator(".jp-gpuhub-jobs")
        expect(panel).to_contain_text(panel_text, timeout=30000)
        page.screenshot(path=str(artifacts / f"jobs-panel-{state}.png"))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

"""The GPU status bar item and panel in a real browser, in a real JupyterLab spawned by a
real hub on a simulated pool: once with the local-process spawner (the embedded default),
once in a Docker container of ``gpuhub/base`` (built from ``images/`` by the first Docker
test of the run; ``GPUHUB_TEST_NO_DOCKER=1`` leaves that one out).

A person logs in with the generated user password, opens their server's JupyterLab, reads
their leased device and quota in the status bar, opens the panel and sees its charts. Debian's
chromium driven by Playwright (never ``playwright install``); screenshots go to
``$GPUHUB_TEST_ARTIFACTS`` (default: the test's temporary folder) for CI to keep.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import http
from tests.support.browser import log_in, standalone_lab
from tests.support.docker import engine_client
from tests.support.hub import Hub, put_notebook

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

RUN = secrets.token_hex(3)
USER = f"lb{RUN}-grace"  # its Docker home volume: gpuhub-home-{USER}
SHARER = f"lb{RUN}-ada"  # on a shared GPU seat
CPU_USER = f"lb{RUN}-lovelace"  # on the CPU-only profile
PREFIX = f"gpuhublb{RUN}"  # this module's container names: {PREFIX}-{user}
IMAGE = "gpuhub/base:latest"
DOCKER_CONFIG = f"""
c.DockerSpawner.image = {IMAGE!r}
c.DockerSpawner.allowed_images = [{IMAGE!r}]
c.DockerSpawner.prefix = {PREFIX!r}
c.GPUSpawnerMixin.profiles = [
    {{"name": "gpu-1", "display_name": "1 GPU", "default": True,
      "shape": {{"kind": "gpu", "count": 1}}, "image": {IMAGE!r}, "mem_limit": "1G"}},
    {{"name": "shared", "display_name": "A shared seat",
      "shape": {{"kind": "shared"}}, "image": {IMAGE!r}, "mem_limit": "1G"}},
    {{"name": "cpu", "display_name": "No GPU (CPU only)",
      "shape": None, "image": {IMAGE!r}, "mem_limit": "1G"}},
]
"""


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def _remove_docker_leftovers() -> None:
    """Remove this module's containers and its user's home volume, one by one."""
    for cid in _docker("ps", "-aq", "--filter", f"name=^{PREFIX}-").stdout.split():
        _docker("rm", "-f", cid)
    for user in (USER, SHARER, CPU_USER):
        _docker("volume", "rm", "-f", f"gpuhub-home-{user}")


@pytest.fixture(scope="module", params=["local", "docker"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub on a simulated pool spawning local servers or containers; stopped at the end."""
    env = {"GPUHUB_SPAWNER": request.param, "GPUHUB_POLL_INTERVAL": "0.2"}
    extra = ""
    if request.param == "docker":
        engine_client(IMAGE).close()  # the images built, the engine answering
        env["GPUHUB_DOCKER_NETWORK"] = "host"
        extra = DOCKER_CONFIG
    h = Hub(tmp_path_factory.mktemp(f"labext-{request.param}"), env=env, extra_config=extra)
    try:
        h.start()
        yield h
    finally:
        try:
            for user in (USER, SHARER, CPU_USER):  # (a user whose test did not run is not there)
                known = h.proc is not None and h.hub_api("GET", f"users/{user}").status_code == 200
                if known and h.server(user) is not None:
                    h.stop_server(user)
        finally:
            h.stop()
            if request.param == "docker":
                _remove_docker_leftovers()


@pytest.fixture
def page(hub: Hub, blank: Page) -> Page:
    """A page logged in to the hub as USER."""
    return log_in(blank, hub, USER)


def _running(hub: Hub, user: str, profile: str) -> str:
    """Start `user`'s server with `profile` unless it runs; the user's API token."""
    token = hub.add_user(user)
    if hub.server(user) is None:
        r = hub.spawn(user, {"profile": profile})
        assert r.status_code in (201, 202), r.text
    hub.wait_ready(user, timeout=60)
    return token


def test_status_bar_and_panel_show_the_leased_gpu_and_quota_and_move_when_a_cell_runs(
    hub: Hub, page: Page, artifacts: Path
) -> None:
    """The status bar shows the leased device, the panel its charts, lease and quota; a
    busy cell moves the (simulated) utilization they show."""
    token = _running(hub, USER, "gpu-1")
    # busy a quarter of the time (the figures move all the same, and the CPU is the other
    # tests' too) until the test has seen it (a file in the home says so), at most a minute
    busy = (
        "import os, time\nt = time.time()\n"
        "while not os.path.exists('busy.stop') and time.time() - t < 60:\n"
        "    s = time.time()\n    while time.time() - s < 0.02:\n        pass\n"
        "    time.sleep(0.06)\n'done'"
    )
    put_notebook(hub, USER, token, "busy.ipynb", busy)
    contents = f"{hub.url}/user/{USER}/api/contents/busy.stop"
    auth = {"Authorization": f"token {token}"}
    http.delete(contents, headers=auth, timeout=30)  # (left by an earlier run: not there)
    mode = hub.env["GPUHUB_SPAWNER"]

    page.goto(f"{hub.url}/user/{USER}/lab/tree/busy.ipynb")
    status = page.locator(".jp-gpuhub-status[data-state=ok]")
    expect(status).to_be_visible(timeout=60000)
    # "H100 · 0% · 1/80 GB | ... (simulated)": the device, utilization and memory
    expect(status).to_contain_text(" GB", timeout=60000)
    expect(status).to_contain_text("%")
    expect(status).to_contain_text("(simulated)")
    status.click()
    panel = page.locator(".jp-gpuhub-panel")
    expect(panel.locator(".jp-gpuhub-device canvas").first).to_be_visible(timeout=20000)
    expect(panel).to_contain_text("Lease")
    expect(panel).to_contain_text("GPU-hours so far")
    expect(panel).to_contain_text("Quota")
    expect(panel).to_contain_text("Simulated devices")
    page.wait_for_timeout(2000)  # a few samples on the charts
    page.screenshot(path=str(artifacts / f"labextension-panel-{mode}.png"))

    # the status bar's kernel item reads "Python 3 (ipykernel) | Idle" once a kernel is
    # connected (the toolbar's execution indicator says "idle" before there is any kernel,
    # and a run asked then opens JupyterLab's "Select Kernel" dialog)
    kernel = page.locator('[title^="Change kernel for"]')
    expect(kernel).to_have_text(re.compile(r"Python 3.*\| Idle"), timeout=60000)
    # the kernel's start-up moves the simulated figures too: wait until they settle
    expect(status).to_contain_text(" · 0% ·", timeout=60000)
    first = page.locator(".jp-Cell").first
    first.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    # JupyterLab may drop a run asked while its kernel connection settles (the cell keeps
    # "[ ]:"); a person would run it again, and so does the test, once
    prompt = first.locator(".jp-InputPrompt")
    try:
        expect(prompt).not_to_have_text("[ ]:", timeout=15000)
    except AssertionError:
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # say which one, then answer it as a person would
            page.screenshot(path=str(artifacts / "labextension-busy-dialog.png"))
            print("JupyterLab asked:", dialog.first.inner_text())
            dialog.locator(".jp-mod-accept").first.click()
        first.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")  # run this cell, in place
        expect(prompt).not_to_have_text("[ ]:", timeout=30000)
    expect(status).not_to_contain_text(" · 0% ·", timeout=20000)
    expect(panel.locator(".jp-gpuhub-device canvas").first).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / f"labextension-busy-{mode}.png"))
    stop = {"type": "file", "format": "text", "content": ""}
    assert http.put(contents, json=stop, headers=auth, timeout=30).status_code in (200, 201)
    # and it was the cell: it ran to its end
    expect(page.locator(".jp-OutputArea-output").first).to_contain_text("done", timeout=30000)


def test_notebook_7_shows_the_gpu_in_its_top_bar(hub: Hub, page: Page, artifacts: Path) -> None:
    """Notebook 7 has no status bar: the same item sits in its top bar and opens the panel,
    and "GPU" in the View menu opens it too."""
    if hub.env["GPUHUB_SPAWNER"] == "docker":
        pytest.skip("the same front end as on a local server, where it is checked")
    token = _running(hub, USER, "gpu-1")
    put_notebook(hub, USER, token, "classic.ipynb", "1 + 1")
    page.goto(f"{hub.url}/user/{USER}/tree")
    status = page.locator(".jp-gpuhub-status-top[data-state=ok]")
    expect(status).to_contain_text(" GB", timeout=60000)
    expect(status).to_contain_text("(simulated)")
    status.click()
    panel = page.locator(".jp-gpuhub-panel")
    expect(panel.locator(".jp-gpuhub-device canvas").first).to_be_visible(timeout=20000)
    expect(panel).to_contain_text("Quota")

    page.goto(f"{hub.url}/user/{USER}/notebooks/classic.ipynb")
    expect(page.locator(".jp-gpuhub-status-top[data-state=ok]")).to_contain_text(
        " GB", timeout=60000
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-itemLabel", has_text="Show GPUs (gpuhub)").click()
    expect(panel.locator(".jp-gpuhub-device canvas").first).to_be_visible(timeout=20000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts / f"notebook7-{hub.env['GPUHUB_SPAWNER']}.png"))


def test_a_shared_seat_reads_as_your_own_processes(hub: Hub, blank: Page, artifacts: Path) -> None:
    """On a shared GPU the figures are the server's own processes, and the UI says so."""
    _running(hub, SHARER, "shared")
    page = log_in(blank, hub, SHARER)
    page.goto(f"{hub.url}/user/{SHARER}/lab")
    status = page.locator(".jp-gpuhub-status[data-state=ok]")
    expect(status).to_contain_text("· yours", timeout=60000)
    status.click()
    panel = page.locator(".jp-gpuhub-panel")
    expect(panel).to_contain_text(
        "Shared GPU: utilization and memory are those of your processes", timeout=20000
    )
    page.screenshot(path=str(artifacts / f"labextension-shared-{hub.env['GPUHUB_SPAWNER']}.png"))
    hub.stop_server(SHARER)


def test_a_cpu_only_server_says_no_gpu_and_its_jobs_go_to_a_gpu_profile(
    hub: Hub, blank: Page, artifacts: Path
) -> None:
    """A person picks "No GPU (CPU only)" in the spawn form; JupyterLab says "No GPU" (not
    an error, not a missing lease), and "Run as GPU job" sends the notebook to the pool on
    the default GPU profile. Its schedule field takes what the service takes."""
    mode = hub.env["GPUHUB_SPAWNER"]
    token = hub.add_user(CPU_USER)
    page = log_in(blank, hub, CPU_USER)
    page.goto(f"{hub.url}/hub/spawn")
    choice = page.locator(".gpuhub-profile", has=page.locator("#profile-cpu"))
    expect(choice).to_contain_text("No GPU (CPU only)", timeout=30000)
    expect(choice).to_contain_text("No GPU · quota-free")
    page.locator("#profile-cpu").check()
    page.screenshot(path=str(artifacts / f"spawn-form-cpu-{mode}.png"), full_page=True)
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"**/user/{CPU_USER}/lab**", timeout=90000)
    hub.wait_ready(CPU_USER, timeout=60)
    if mode == "docker":  # a container with no device, no GPU to see, no lease label
        name = f"name=^{PREFIX}-"
        [cid] = _docker(
            "ps", "-q", "--filter", name, "--filter", f"label=gpuhub.user={CPU_USER}"
        ).stdout.split()
        info = json.loads(_docker("inspect", cid).stdout)[0]
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == ("", "void")
        assert env["GPUHUB_NO_GPU"] == "1" and "NVIDIA_DRIVER_CAPABILITIES" not in env
        assert not info["HostConfig"].get("DeviceRequests")
        assert "gpuhub.lease" not in info["Config"]["Labels"]

    status = page.locator(".jp-gpuhub-status")
    expect(status).to_have_text("No GPU (CPU-only server)", timeout=60000)
    expect(status).to_have_attribute("data-state", "no-gpu")
    page.screenshot(path=str(artifacts / f"labextension-no-gpu-{mode}.png"))
    status.click()
    panel = page.locator(".jp-gpuhub-panel")
    expect(panel).to_contain_text("No GPU: this server was started CPU only (profile cpu).")
    expect(panel).to_contain_text("Run as GPU job")
    expect(panel).to_contain_text("Quota", timeout=20000)
    expect(page.locator(".jp-gpuhub-device")).to_have_count(0)
    page.screenshot(path=str(artifacts / f"labextension-no-gpu-panel-{mode}.png"))

    put_notebook(hub, CPU_USER, token, "train.ipynb", "print(epochs)", parameters="epochs = 1")
    page.goto(f"{hub.url}/user/{CPU_USER}/lab/tree/train.ipynb")
    button = page.locator(".jp-NotebookPanel-toolbar [data-command='gpuhub:run-as-job']")
    expect(button).to_be_visible(timeout=60000)
    button.click()
    dialog = page.locator(".jp-gpuhub-job-dialog")
    expect(dialog.locator(".jp-gpuhub-job-profile")).to_have_text(
        "Profile gpu-1 (this server has no GPU; the job gets one)", timeout=30000
    )
    expect(dialog.locator(".jp-gpuhub-job-shape option").first).to_contain_text(
        "As profile gpu-1 (1 whole GPU"
    )
    # the schedule is the service's to check: macros, names and a zone are not refused here
    dialog.locator("#gpuhub-job-recurring").check()
    schedule = dialog.locator(".jp-gpuhub-job-schedule")
    submit = dialog.locator(".jp-Dialog-button.jp-mod-accept")
    for text in ("@daily", "CRON_TZ=Europe/Berlin 30 7 * * MON-FRI", "0 2 * * *"):
        schedule.fill(text)
        expect(schedule).not_to_have_class(re.compile("jp-mod-error"))
        expect(submit).to_be_enabled()
    # ...and its refusal is shown under the field, the dialog staying open
    schedule.fill("61 * * * *")
    submit.click()
    expect(schedule).to_have_class(re.compile("jp-mod-error"), timeout=30000)
    expect(dialog.locator(".jp-gpuhub-job-field-error").last).to_contain_text("minute")
    # said once, under the field; the dialog's own line points there
    expect(dialog.locator(".jp-gpuhub-job-error")).to_have_text(
        "Not submitted: see the field marked above."
    )
    expect(dialog).to_be_visible()
    page.screenshot(path=str(artifacts / f"jobs-dialog-no-gpu-{mode}.png"))
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    with hub.client(token) as client:
        assert client.get("/job-definitions").json()["definitions"] == []
    hub.stop_server(CPU_USER)


@pytest.mark.parametrize(
    "state, status_text, panel_text",
    [
        ("no-lease", "No GPU lease on this server", "No GPU lease on this server."),
        (
            "no-extension",
            "GPU: gpuhub server extension not installed",
            "The gpuhub server extension (jupyter_gpuhub) is not installed or not enabled",
        ),
    ],
)
def test_a_server_without_a_lease_or_extension_says_so_plainly(
    blank: Page, tmp_path: Path, artifacts: Path, state: str, status_text: str, panel_text: str
) -> None:
    """A JupyterLab whose server holds no GPU lease, or lacks the server extension, says
    which in the status bar and the panel, with no device and no zeros."""
    with standalone_lab(tmp_path, extension=state != "no-extension") as lab:
        page = blank
        page.goto(lab)
        status = page.locator(".jp-gpuhub-status")
        expect(status).to_have_text(status_text, timeout=60000)
        status.click()
        expect(page.locator(".jp-gpuhub-panel")).to_contain_text(panel_text)
        expect(page.locator(".jp-gpuhub-device")).to_have_count(0)
        page.screenshot(path=str(artifacts / f"labextension-{state}.png"))

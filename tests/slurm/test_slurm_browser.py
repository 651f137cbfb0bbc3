"""The GPU status bar and "Run as GPU job" in a real browser, in a JupyterLab that runs
as a Slurm job on the local cluster (``scripts/slurm``), spawned through the hub's form by
``GPUSlurmSpawner``.

A person logs in, chooses the one-H100 profile on the spawn form, waits through the spawn
page (which names the Slurm job), and JupyterLab's status bar shows the leased device of
the node gpuhub placed the server on. From that JupyterLab, the job dialog runs a notebook
on two nodes (the profile allows two): Slurm runs it with ``srun`` and ``torchrun`` on
both, and the Jobs panel shows each rank's all-reduce. Debian's chromium driven by
Playwright; screenshots go to ``$GPUHUB_TEST_ARTIFACTS``.

It lives with the Slurm tier (one worker runs every module that uses the local cluster,
which each starts and cleans up) and is marked ``browser`` as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

from tests.slurm.slurm_hub import slurm_hub
from tests.support.browser import log_in
from tests.support.hub import put_notebook, unique
from tests.support.torch_env import python_with_torch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


#: Jobs run in a Python with PyTorch; the one-H100 profile's jobs may span two nodes.
JOBS = """
c.SlurmExecutor.python = {python!r}
c.GPUSpawnerMixin.profiles = [
    {{"name": "h100", "display_name": "1 H100", "default": True, "max_nodes": 2,
      "shape": {{"kind": "gpu", "count": 1, "model": "H100"}}, "cpu_limit": 1, "mem_limit": "256M"}},
    {{"name": "cpu", "display_name": "No GPU", "shape": None, "cpu_limit": 1}},
]
"""
ALL_REDUCE = """import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
total = torch.tensor([float(rank + 1)])
dist.all_reduce(total)
print(f"rank {rank} of {world} on {os.environ['SLURMD_NODENAME']}: sum {total.item():.0f}")
dist.destroy_process_group()"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    work = tmp_path_factory.mktemp("slurm-browser")
    python = python_with_torch(work)
    with slurm_hub(work, JOBS.format(python=str(python))) as site:
        yield site


def test_the_status_bar_shows_the_lease_of_a_server_on_slurm(
    site: SimpleNamespace, blank: Page, artifacts: Path
) -> None:
    hub, user = site.hub, unique("slurm-grace")
    token = hub.add_user(user)
    page = log_in(blank, hub, user)
    page.goto(f"{hub.url}/hub/spawn")
    page.locator("input[name=profile][value=h100]").check()
    page.locator("form [type=submit]").click()
    # the spawn page follows the Slurm job, then JupyterLab opens
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=90000)
    status = page.locator(".jp-gpuhub-status[data-state=ok]")
    expect(status).to_be_visible(timeout=60000)
    expect(status).to_contain_text("H100", timeout=20000)
    expect(status).to_contain_text("(simulated)")

    state = hub.server(user)["state"]
    lease = site.admin.get(f"/leases/{state['lease_id']}").json()
    assert lease["node"] == state["slurm_node"] and lease["status"] == "active"
    status.click()
    panel = page.locator(".jp-gpuhub-panel")
    expect(panel).to_contain_text("Lease")
    expect(panel).to_contain_text(str(state["lease_id"]))
    page.screenshot(path=str(artifacts / "labextension-slurm.png"))

    # a notebook on two nodes, from the job dialog
    put_notebook(hub, user, token, "ddp.ipynb", ALL_REDUCE)
    page.goto(f"{hub.url}/user/{user}/lab/tree/ddp.ipynb")
    button = page.locator(".jp-NotebookPanel-toolbar [data-command='gpuhub:run-as-job']")
    expect(button).to_be_visible(timeout=60000)
    button.click()
    dialog = page.locator(".jp-gpuhub-job-dialog")
    expect(dialog).to_contain_text("ddp.ipynb", timeout=30000)
    nodes = dialog.locator("#gpuhub-job-nodes")
    expect(nodes).to_be_visible()
    expect(dialog.locator("label[for=gpuhub-job-nodes]")).to_have_text("Nodes (each with 1 GPU)")
    expect(nodes).to_have_attribute("max", "2")
    nodes.fill("3")  # more than the profile allows: refused in place
    expect(dialog).to_contain_text("Nodes: a whole number from 1 to 2.")
    nodes.fill("2")
    expect(dialog.locator(".jp-gpuhub-job-queue")).to_contain_text(
        "All 2 nodes are granted at once"
    )
    page.screenshot(path=str(artifacts / "jobs-dialog-nodes.png"))
    submit = dialog.locator(".jp-Dialog-button.jp-mod-accept")
    submit.click()  # 2 GPU units, while the server holds 1 of the 2 the user may hold
    expect(dialog.locator("[role=alert]")).to_contain_text("this request needs 2", timeout=30000)
    r = site.admin.put(f"/quotas/users/{user}", json={"max_units": 3})
    assert r.status_code == 200, r.text
    submit.click()  # the dialog kept everything: the same request, now within the quota
    expect(dialog).to_be_hidden(timeout=30000)
    panel = page.locator(".jp-gpuhub-jobs")
    row = panel.locator(".jp-gpuhub-job").first
    expect(row).to_contain_text("ddp")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=120000)
    log = panel.locator(".jp-gpuhub-job-log")
    for rank in (0, 1):
        expect(log).to_contain_text(f"rank {rank} of 2 on gpu", timeout=30000)
    expect(log).to_contain_text("sum 3")
    expect(row).to_contain_text("2 nodes")
    expect(panel.locator(".jp-gpuhub-job-open")).to_have_count(0)  # no executed notebook
    page.screenshot(path=str(artifacts / "jobs-panel-two-nodes.png"))
    jobs = site.admin.get("/jobs", params={"user": user}).json()["jobs"]
    assert jobs[0]["shape"] == {"kind": "gpu", "count": 1, "model": "H100", "nodes": 2}
    lease = site.admin.get(f"/leases/{jobs[0]['lease_id']}").json()
    assert lease["status"] == "released" and sorted(lease["node"].split(",")) == ["gpu1", "gpu2"]
    hub.stop_server(user)

"""The GPU status bar in a real browser, in a JupyterLab that runs as a Slurm job on the
local cluster (``scripts/slurm``), spawned through the hub's form by ``GPUSlurmSpawner``.

A person logs in, chooses the one-H100 profile on the spawn form, waits through the spawn
page (which names the Slurm job), and JupyterLab's status bar shows the leased device of
the node gpuhub placed the server on. Debian's chromium driven by Playwright; screenshots
go to ``$GPUHUB_TEST_ARTIFACTS``.

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
from tests.support.hub import unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with slurm_hub(tmp_path_factory.mktemp("slurm-browser")) as site:
        yield site


def test_the_status_bar_shows_the_lease_of_a_server_on_slurm(
    site: SimpleNamespace, blank: Page, artifacts: Path
) -> None:
    hub, user = site.hub, unique("slurm-grace")
    hub.add_user(user)
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
    hub.stop_server(user)

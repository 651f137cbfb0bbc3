"""Shared test fixtures, and the tiers.

The tests live in folders by what they need, and each folder is a marker:

* ``unit``: nothing but this Python (and PostgreSQL): the inner loop, ``scripts/test tests/unit``
* ``packaging``: builds of the docs and the wheel
* ``hub``: a real JupyterHub subprocess
* ``browser``: Debian's chromium against a real hub
* ``docker``: a real Docker engine and gpuhub's images
* ``slurm``: a real multi-node Slurm cluster on this machine (``scripts/slurm``)

Under pytest-xdist (``scripts/test`` runs ``-n 4``) a module's tests stay on one worker,
so its module-scoped hub starts once, and every test that talks to the Docker engine
shares one worker, so containers never race for the engine's CPUs or names.
Helpers are imported from ``tests.support``; fixtures below are in sections:

* tiers and workers: ``pytest_collection_modifyitems``, ``pytest_xdist_make_scheduler``
* databases and time: ``postgres``, ``db_url``, ``clock``, ``engine``, ``make`` (scheduler tests)
* hubs: ``shared_hub`` (the default configuration, for ``SHARED_HUB_MODULES``)
* browsers: ``artifacts``, ``shoot``, ``blank`` (real-browser tests; see ``support/browser.py``)
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine

from tests.support import pg
from tests.support.clock import FakeClock

# =====================================================================================
# Tiers and workers
# =====================================================================================

TESTS = Path(__file__).parent
TIERS = ("unit", "packaging", "hub", "browser", "docker", "slurm")


#: In a parallel run, the order work is handed out in: the longest groups first (as a
#: run's "workers" summary measured them), then the rest by tier.
LONGEST_FIRST = (
    "docker",
    "slurm",  # mostly waiting on Slurm: it starts first and the others fill its worker
    "shared-hub",
    "tests/hub/test_spawner_local.py",
    "tests/browser/test_labextension_browser.py",
    "tests/hub/test_fuzz_api.py",
    "tests/browser/test_jobs_browser.py",
    "tests/hub/test_reclaim.py",
    "tests/hub/test_service_api.py",
    "tests/hub/test_service_concurrency.py",
)
RUN_ORDER = ("docker", "slurm", "browser", "hub", "packaging", "unit")
#: Within a tier, these modules first (the unit tier's longest, so that the inner loop
#: does not end waiting on one of them).
LONGEST_IN_TIER = (
    "tests/unit/test_scheduler_stateful.py",
    "tests/unit/test_jobs_manager.py",
    "tests/unit/test_scheduler.py",
    "tests/unit/test_reservations.py",
    "tests/unit/test_job_runner.py",
    "tests/unit/test_job_executor_contract.py",
)
#: Within a group, these modules first: the first Docker test of a run builds gpuhub's
#: images (``ensure_images``), and the image tests' time limit (900 s) has room for it,
#: where a browser test's Docker variant (300 s) may not on a busy machine.
FIRST_IN_GROUP = ("tests/docker/test_images.py",)
_DOCKER_PARAM = re.compile(r"\[(?:[^\]]*-)?docker(?:-[^\]]*)?\]$")


#: The modules whose tests share one hub on the default configuration (``shared_hub``),
#: each test with users and groups of its own; one worker runs them all.
SHARED_HUB_MODULES = frozenset(
    f"tests/hub/{name}.py"
    for name in (
        "test_activity",
        "test_cli",
        "test_cli_jobs",
        "test_cli_reservations",
        "test_cohorts",
        "test_extension_jobs",
        "test_fair_share",
        "test_lending",
        "test_prices",
        "test_reservations_service",
        "test_simulate",
        "test_warm_pool",
    )
)


def worker_group(nodeid: str) -> str:
    """The group of tests that one xdist worker runs together: ``docker`` for every test
    that talks to the Docker engine (the docker tier, and the browser tests' Docker
    variants, parametrized ``docker``), ``slurm`` for the Slurm tier (one local cluster),
    ``shared-hub`` for the modules on the shared hub,
    else the test's module, so that a module-scoped hub starts once."""
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/docker/") or _DOCKER_PARAM.search(nodeid):
        return "docker"
    if module.startswith("tests/slurm/"):
        return "slurm"  # one local cluster, started and stopped by one worker
    if module in SHARED_HUB_MODULES:
        return "shared-hub"
    return module


def _tier(item: pytest.Item) -> str:
    tier = item.path.relative_to(TESTS).parts[0]
    if tier not in TIERS:
        raise pytest.UsageError(f"{item.nodeid}: tests live in one of {', '.join(TIERS)}")
    return tier


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier. On an xdist worker, also put the longest
    groups first (``LONGEST_FIRST``, then ``RUN_ORDER``), the order the scheduler below
    hands them out in."""
    for item in items:
        item.add_marker(getattr(pytest.mark, _tier(item)))
        module = item.nodeid.split("::", 1)[0]
        if "shared_hub" in getattr(item, "fixturenames", ()) and module not in SHARED_HUB_MODULES:
            raise pytest.UsageError(
                f"{item.nodeid} uses shared_hub: list {module} in SHARED_HUB_MODULES "
                "(tests/conftest.py), so that its worker runs the other users of that hub"
            )
    if hasattr(config, "workerinput"):

        def rank(item: pytest.Item) -> tuple[int, int]:
            group = worker_group(item.nodeid)
            if group in LONGEST_FIRST:
                module = item.nodeid.split("::", 1)[0]
                return LONGEST_FIRST.index(group), 0 if module in FIRST_IN_GROUP else 1
            within = LONGEST_IN_TIER.index(group) if group in LONGEST_IN_TIER else 99
            return len(LONGEST_FIRST) + RUN_ORDER.index(_tier(item)), within

        items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> object:
    """xdist's load-by-scope scheduling with ``worker_group`` as the scope, the groups
    handed out in collection order (see ``pytest_collection_modifyitems``)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

        def _assign_work_unit(self, node) -> None:
            scope = next(iter(self.workqueue))
            _TIMELINE.setdefault(node.gateway.id, []).append((scope, time.monotonic()))
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False
    return ByGroup(config, log)


#: worker -> [(group, when it was handed out)], and worker -> when it finished
_TIMELINE: dict[str, list[tuple[str, float]]] = {}
_FINISHED: dict[str, float] = {}
_STARTED = time.monotonic()


def pytest_testnodedown(node, error) -> None:
    """Note when each xdist worker finished (for the summary below)."""
    _FINISHED[node.gateway.id] = time.monotonic()


def pytest_terminal_summary(terminalreporter) -> None:
    """In a parallel run: each worker's groups, when each began, and when it finished,
    in seconds since the session began (where the long pole is)."""
    if not _TIMELINE:
        return
    terminalreporter.section("workers: groups handed out (s since start)")
    for worker in sorted(_TIMELINE):
        groups = ", ".join(
            f"{Path(g).stem if g.endswith('.py') else g}@{t - _STARTED:.0f}"
            for g, t in _TIMELINE[worker]
        )
        done = _FINISHED.get(worker)
        end = f"done at {done - _STARTED:.0f} s" if done else "not finished"
        terminalreporter.write_line(f"{worker} ({end}): {groups}")


# =====================================================================================
# Databases and time (scheduler tests)
# =====================================================================================

NO_POSTGRES = os.environ.get("GPUHUB_TEST_NO_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the whole session (``create_database()`` per test),
    with a template database at the newest schema."""
    if NO_POSTGRES:
        pytest.skip("GPUHUB_TEST_NO_POSTGRES=1: PostgreSQL tests are off")
    if not pg.available():
        pytest.fail(
            "PostgreSQL is not installed, and the scheduler tests run against it too. "
            "Install it (apt-get install postgresql) or set GPUHUB_TEST_NO_POSTGRES=1 "
            "to leave the PostgreSQL tests out.",
            pytrace=False,
        )
    server = pg.TemporaryPostgres(fsync=False).start()
    try:
        open_engine(server.create_database(pg.TEMPLATE)).dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite scheduler database at the newest schema, for tests to copy."""
    path = tmp_path_factory.mktemp("template") / "gpuhub.sqlite"
    open_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gpuhub.sqlite'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh scheduler database at the newest schema, with nothing in it: a SQLite
    file, then a PostgreSQL database, each a copy of a template, not a migration run
    (tests/unit/test_migrations.py migrates empty ones: ``empty_db_url``)."""
    if request.param == "sqlite":
        path = tmp_path / "gpuhub.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres").create_database(template=pg.TEMPLATE)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at Monday 2026-11-23 09:00 UTC."""
    return FakeClock()


@pytest.fixture
def engine(db_url):
    """An engine on the test database (``db_url``), disposed at the end. The database is
    a copy of a template at the newest schema: no migration to look for."""
    eng = open_engine(db_url, upgrade=False)
    yield eng
    eng.dispose()


@pytest.fixture
def make(engine, clock):
    """``make(spec, **kwargs)``: a Scheduler over a simulated pool on the test database."""

    def make(spec: str, **kwargs) -> Scheduler:
        return Scheduler(engine, parse_spec(spec), clock=clock, **kwargs)

    return make


def pytest_report_header(config) -> str:
    """Say which databases the scheduler tests use."""
    if NO_POSTGRES:
        return "gpuhub: scheduler tests on SQLite only (GPUHUB_TEST_NO_POSTGRES=1)"
    where = "found" if pg.available() else "NOT installed (postgres tests will fail)"
    return f"gpuhub: scheduler tests on SQLite and PostgreSQL ({where})"


# =====================================================================================
# Real JupyterHub subprocesses (tests/hub.py)
# =====================================================================================


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the hub's log tail to the report of a failing test that used a hub."""
    from tests.support.hub import Hub

    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            hub = value if isinstance(value, Hub) else getattr(value, "hub", None)
            if isinstance(hub, Hub):
                report.sections.append((f"hub log ({hub.dir.name})", hub.log_tail(150)))
    return report


@pytest.fixture(scope="session")
def shared_hub(tmp_path_factory):
    """One hub on the default configuration for the modules in ``SHARED_HUB_MODULES``
    (a parallel run gives them one worker, so it starts once). Its tests must not meet:
    each uses users and groups of its own (``tests.support.hub.unique``)."""
    from tests.support.hub import Hub

    # the embedded default's warm pool of one server and its idle culler too (the other
    # test hubs have neither)
    hub = Hub(
        tmp_path_factory.mktemp("shared-hub"),
        env={"GPUHUB_WARM_POOL": "1", "GPUHUB_CULL_IDLE_TIMEOUT": "3600"},
    ).start()
    _SHARED_HUBS.append(hub)
    try:
        yield hub
    finally:
        hub.stop()


#: The shared hub, once this process has started it
_SHARED_HUBS: list = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """On an xdist worker, stop the shared hub once the last test of its group is done
    (the group's tests run one after another there), rather than at the end of the
    session: an idle hub and its service spend CPU the other workers' tests wait for."""
    result = yield
    last = nextitem is None or worker_group(nextitem.nodeid) != "shared-hub"
    if _SHARED_HUBS and hasattr(item.config, "workerinput") and last:
        if worker_group(item.nodeid) == "shared-hub":
            _SHARED_HUBS.pop().stop()
    return result


# =====================================================================================
# Browsers (real-browser tests; helpers in browser.py)
# =====================================================================================


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$GPUHUB_TEST_ARTIFACTS`` (CI keeps it), else a temporary folder."""
    where = os.environ.get("GPUHUB_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shoot(artifacts: Path):
    """``shoot(page, NAME)``: a full-page screenshot ``NAME.png`` in ``artifacts``, copied
    to the docs' images when ``GPUHUB_DOC_SCREENSHOTS=1``."""
    from tests.support.browser import DOCS_IMAGES

    def save(page, name: str) -> None:
        page.wait_for_timeout(300)  # charts and fonts settle
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        if os.environ.get("GPUHUB_DOC_SCREENSHOTS") == "1":
            shutil.copy(artifacts / f"{name}.png", DOCS_IMAGES / f"{name}.png")

    return save


@pytest.fixture(scope="module")
def module_browser():
    """One chromium (and one Playwright driver) for a module's tests: starting them costs
    more CPU than most of a test's page does."""
    from tests.support.browser import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def chromium_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The profile folder of this worker's ``blank`` browsers: their caches of scripts."""
    return tmp_path_factory.mktemp("chromium-profile")


@pytest.fixture(scope="module")
def cached_browser(chromium_profile: Path):
    """One chromium on this worker's profile for a module's ``blank`` pages."""
    from tests.support.browser import cached_chromium

    with cached_chromium(chromium_profile) as context:
        yield context


@pytest.fixture
def blank(cached_browser):
    """A blank chromium page (1400 x 900) that starts with no cookies and no storage, as
    a browser context of its own would (``fresh_page``); cleared again at the end."""
    from tests.support.browser import fresh_page

    with fresh_page(cached_browser) as page:
        yield page

"""Shared test fixtures.

Sections are kept apart so that several people can add to this file:

* databases and time: ``postgres``, ``db_url``, ``clock`` (scheduler tests)
* browsers: ``artifacts``, ``shoot``, ``blank`` (real-browser tests; see ``browser.py``)
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import pg`

import pg

# =====================================================================================
# Databases and time (scheduler tests)
# =====================================================================================

#: Monday 2026-11-23 09:00 UTC, where every fake clock starts.
CLOCK_START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC).timestamp()

NO_POSTGRES = os.environ.get("GPUHUB_TEST_NO_POSTGRES") == "1"


class FakeClock:
    """A clock the test moves by hand; pass it as ``Scheduler(clock=...)``."""

    def __init__(self, now: float = CLOCK_START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds``; returns the new time."""
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock({dt.datetime.fromtimestamp(self.now, dt.UTC).isoformat()})"


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the whole session (``create_database()`` per test)."""
    if NO_POSTGRES:
        pytest.skip("GPUHUB_TEST_NO_POSTGRES=1: PostgreSQL tests are off")
    if not pg.available():
        pytest.fail(
            "PostgreSQL is not installed, and the scheduler tests run against it too. "
            "Install it (apt-get install postgresql) or set GPUHUB_TEST_NO_POSTGRES=1 "
            "to leave the PostgreSQL tests out.",
            pytrace=False,
        )
    server = pg.TemporaryPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty scheduler database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gpuhub.sqlite'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at Monday 2026-11-23 09:00 UTC."""
    return FakeClock()


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
    from hub import Hub

    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            hub = value if isinstance(value, Hub) else getattr(value, "hub", None)
            if isinstance(hub, Hub):
                report.sections.append((f"hub log ({hub.dir.name})", hub.log_tail(150)))
    return report


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
    from browser import DOCS_IMAGES

    def save(page, name: str) -> None:
        page.wait_for_timeout(300)  # charts and fonts settle
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        if os.environ.get("GPUHUB_DOC_SCREENSHOTS") == "1":
            shutil.copy(artifacts / f"{name}.png", DOCS_IMAGES / f"{name}.png")

    return save


@pytest.fixture
def blank():
    """A blank chromium page (1400 x 900)."""
    from browser import chromium, new_page

    with chromium() as browser:
        yield new_page(browser)

"""Fuzzing the REST API against its OpenAPI document (schemathesis), on a real hub.

Schemathesis reads ``docs/reference/openapi.yaml`` and sends the service requests built
from it, valid and invalid (examples, boundary values, random data, sequences that reuse
created leases), once with a gpuhub admin's token and once with a plain user's. Each run
is bounded in examples per operation and in wall time. It fails on any 5xx and on any
answer the document does not describe: an undocumented status, content type or header, a
body that does not match its schema, a request the document calls invalid yet accepted.

Two checks are left out on purpose: ``positive_data_acceptance`` (requests the document
cannot call invalid are refused for reasons a schema cannot state: quotas, a term that
ends before it starts, a GPU model the pool lacks) and ``use_after_free`` (a released
lease stays readable, with its end, by design).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hub import Hub
from tests.support.paths import OPENAPI

pytestmark = [pytest.mark.hub, pytest.mark.timeout(170)]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]
SERVED = re.compile(r"^\d{3} [A-Z]+ /services/gpuhub/", re.M)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with the embedded default's simulated pool; alice is in group cs101."""
    h = Hub(tmp_path_factory.mktemp("fuzz"))
    try:
        h.start()
        yield h
    finally:
        h.stop()


def fuzz(hub: Hub, token: str, report: Path, seconds: int, examples: int) -> dict:
    """One schemathesis run; its JSON report, with what the service logged it served."""
    served_before = len(SERVED.findall(hub.log_path.read_text(errors="replace")))
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", str(OPENAPI),
        "--url", f"{hub.url}/services/gpuhub",
        "--header", f"Authorization: token {token}",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(examples),
        "--max-time", str(seconds),
        "--workers", "1",  # schemathesis threads can trip a CPython AST bug (3.11)
        "--seed", "7",  # the same requests each run; change it to look elsewhere
        "--request-timeout", "10",
        "--suppress-health-check", "all",
        "--report", "json", "--report-json-path", str(report),
        "--output-truncate", "true",
    ]  # fmt: skip
    proc = subprocess.run(  # in the test's folder: schemathesis keeps a cache where it runs
        cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=report.parent
    )
    result = json.loads(report.read_text())
    served = len(SERVED.findall(hub.log_path.read_text(errors="replace"))) - served_before
    result["served"] = served
    print(
        f"schemathesis: {result['test_cases']['generated']} test cases, {served} requests "
        f"served, {len(result['failures'])} kinds of failure, {len(result['errors'])} errors"
    )
    assert proc.returncode == 0 and not result["failures"] and not result["errors"], (
        f"schemathesis found problems (exit {proc.returncode}):\n{proc.stdout[-12000:]}"
        f"\n{proc.stderr[-3000:]}"
    )
    return result


def test_fuzzing_as_admin_and_as_user_finds_no_5xx_and_nothing_undocumented(hub, tmp_path):
    admin = hub.add_user(hub.credentials()["admin_user"])
    user = hub.add_user("alice", groups=["cs101"])
    as_admin = fuzz(hub, admin, tmp_path / "admin.json", seconds=20, examples=40)
    as_user = fuzz(hub, user, tmp_path / "user.json", seconds=14, examples=25)
    for result in (as_admin, as_user):
        assert result["operations"]["tested"] == result["operations"]["total"] >= 18
        # it really ran: a few requests per operation at least (how many fit in the time
        # depends on the machine's load, so no more than that is asked)
        assert result["served"] >= 3 * result["operations"]["total"], result["served"]
    assert "Uncaught exception" not in hub.log_path.read_text(errors="replace")

"""The shape of the code: modules that read top to bottom, one writer with a read API.

Two rules the design keeps (docs/explanation/architecture.md): no module of the package
grows past 600 lines, and nothing outside ``gpuhub.scheduler`` reaches into the
scheduler's in-memory picture (its pool, live leases, quotas, a device's holders); other
parts ask it for views.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import PACKAGE

MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 600

# the scheduler's in-memory picture and its parts, which only scheduler/ reads (the views
# its read API hands out are copies and may be read anywhere)
INTERNALS = {"pool", "live", "quotas", "accounting", "store"}


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_the_package_has_modules():
    assert len(MODULES) > 20, MODULES


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_is_over_600_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; split it by role"


def _scheduler(node: ast.expr) -> bool:
    """Whether an expression names the scheduler (``scheduler``, ``self.scheduler``, ``s``)."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in ("scheduler", "sched", "s")


OUTSIDE = [p for p in MODULES if "scheduler" not in p.relative_to(PACKAGE).parts]


@pytest.mark.parametrize("path", OUTSIDE, ids=_rel)
def test_nothing_outside_the_scheduler_reads_its_internals(path):
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (node.attr in INTERNALS or (node.attr.startswith("_") and _scheduler(node.value)))
    ]
    assert not found, f"{_rel(path)} reads scheduler internals ({', '.join(found)}); " + (
        "use the scheduler's read API (pool_view, quota, live_leases, ...)"
    )

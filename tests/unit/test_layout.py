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


def _imports(path: Path) -> list[tuple[int, str]]:
    """The modules (and names) ``path`` imports, as absolute names: ``gpuhub.spawners.x``."""
    package = ["gpuhub", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "jobs").rglob("*.py")), ids=_rel)
def test_jobs_import_nothing_from_the_spawners(path):
    """Jobs and servers share their containers' parts and the Docker engine through
    ``gpuhub.containers`` (and other neutral modules), never through the spawners."""
    lines: dict[int, str] = {}
    for line, name in _imports(path):
        if name == "gpuhub.spawners" or name.startswith("gpuhub.spawners."):
            lines[line] = min(lines.get(line, name), name, key=len)
    found = [f"line {line}: {name}" for line, name in sorted(lines.items())]
    assert not found, (
        f"{_rel(path)} imports from gpuhub.spawners ({', '.join(found)}); move what jobs and "
        "servers share to a neutral module (gpuhub.containers for containers and the engine)"
    )


# -- the scheduler's parts are owned objects, not mixins (docs/explanation/architecture.md) --

SCHEDULER_MODULES = sorted((PACKAGE / "scheduler").rglob("*.py"))
#: Names with a leading underscore that are public by convention (namedtuples, SQLAlchemy rows).
PUBLIC_UNDERSCORED = {"_asdict", "_fields", "_make", "_mapping", "_replace"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_here(tree: ast.Module) -> set[str]:
    """Names a module defines: functions and classes, names it assigns (a class attribute
    with a value included) and attributes it assigns on ``self`` or ``cls``. A bare
    annotation (``_name: T`` in a class body) only declares, and so defines nothing."""
    declared_only = {
        id(node.target)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and node.value is None
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if id(node) not in declared_only:
                out.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
            and id(node) not in declared_only
        ):
            out.add(node.attr)
    return out


def _reaches_elsewhere(source: str) -> list[str]:
    """Where a module of the scheduler uses a private name it does not define itself:
    ``x._name`` (through ``self`` too) or ``from .other import _name``."""
    tree = ast.parse(source)
    own = _defined_here(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr not in own and node.attr not in PUBLIC_UNDERSCORED:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            where = "." * node.level + (node.module or "")
            found += [
                (node.lineno, f"from {where} import {a.name}")
                for a in node.names
                if _private(a.name)
            ]
    return [f"line {line}: {what}" for line, what in sorted(found)]


@pytest.mark.parametrize("path", SCHEDULER_MODULES, ids=_rel)
def test_no_scheduler_module_reaches_into_another(path):
    """Habit 22: the scheduler *owns* its parts (the reservation book, the read API, the
    why-waiting explainer) and hands each what it needs; no module of ``gpuhub.scheduler``
    touches another module's private (underscore) methods or attributes.

    The rule, on each module's syntax tree: an attribute ``x._name`` (one leading underscore;
    dunders are Python's) may be used, through ``self`` or anything else, only when that
    module itself defines ``_name`` (a function, a class, an assigned name or class
    attribute, or ``self._name = ...``); and no module imports another's ``_name``. A bare
    class annotation (``_name: T``) does not count as defining it, which is how a mixin
    used to declare a sibling's private method and call it through ``self``. Two classes
    of one module may share their privates (``twin._slots`` in ``Pool.copy``): a module
    is one unit. The namedtuple and SQLAlchemy row names (``_asdict``, ``_mapping``, ...)
    are public by convention and allowed.
    """
    found = _reaches_elsewhere(path.read_text())
    assert not found, (
        f"{_rel(path)} reaches another module's private names ({'; '.join(found)}): give that "
        "part a public method, or pass what it needs when it is made"
    )


def test_the_rule_catches_a_mixin_calling_a_siblings_private_method():
    mixin = (
        "class Waiting:\n"
        "    _place_lease: object  # declared here, defined in another module\n"
        "    def waiting(self, lease):\n"
        "        return self._place_lease(lease)\n"
    )
    assert _reaches_elsewhere(mixin) == ["line 4: self._place_lease"]
    reaching = "def f(scheduler):\n    return scheduler._buckets\n"
    assert _reaches_elsewhere(reaching) == ["line 2: scheduler._buckets"]
    assert _reaches_elsewhere("from .waiting import _History\n") == [
        "line 1: from .waiting import _History"
    ]
    owned = (
        "class Book:\n"
        "    _cache = None\n"
        "    def __init__(self):\n"
        "        self._open = set()\n"
        "    def same(self, other):\n"
        "        return self._open == other._open and self._cache is None\n"
    )
    assert _reaches_elsewhere(owned) == []
    assert _reaches_elsewhere("def rows(r):\n    return r._asdict()\n") == []

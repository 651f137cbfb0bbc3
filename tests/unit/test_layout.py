"""The shape of the code: modules that read top to bottom, one writer with a read API.

Rules the design keeps (docs/explanation/architecture.md): no module of the hub-side
package or of the notebook extension grows past 600 lines; nothing outside
``gpuhub.scheduler`` reaches into the scheduler's in-memory picture (its pool, live
leases, quotas, a device's holders); jobs share nothing with the spawners but neutral
modules; the scheduler's parts do not reach into each other; the notebook extension,
which runs in users' images, uses of the hub side only its client and the job snapshot;
and the service's routes come from its route modules, one per resource, each ending in
its ``default_handlers``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import EXTENSION, PACKAGE

MODULES = sorted(PACKAGE.rglob("*.py"))
EXTENSION_MODULES = sorted(p for p in EXTENSION.glob("*.py"))
MAX_LINES = 600

# the scheduler's in-memory picture and its parts, which only scheduler/ reads (the views
# its read API hands out are copies and may be read anywhere)
INTERNALS = {"pool", "live", "quotas", "accounting", "store"}


def _rel(path: Path) -> str:
    root = PACKAGE if path.is_relative_to(PACKAGE) else EXTENSION
    return str(path.relative_to(root.parent))


def test_the_package_has_modules():
    assert len(MODULES) > 20, MODULES


def test_the_extension_has_modules():
    assert len(EXTENSION_MODULES) > 5, EXTENSION_MODULES


@pytest.mark.parametrize("path", MODULES + EXTENSION_MODULES, ids=_rel)
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


#: What the notebook extension may use of the hub side: the REST client and the job
#: snapshot (shared with the CLI); the hub's own parts stay out of users' images.
EXTENSION_MAY_USE = ("gpuhub", "gpuhub.client", "gpuhub.jobs", "gpuhub.jobs.snapshot")


@pytest.mark.parametrize("path", EXTENSION_MODULES, ids=_rel)
def test_the_extension_uses_only_the_client_and_the_snapshot(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "gpuhub" else []
            names += [f"{node.module}.{a.name}" for a in node.names if node.module == "gpuhub"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if (name == "gpuhub" or name.startswith("gpuhub.")) and not (
                name in EXTENSION_MAY_USE or name == "gpuhub.__version__"
            ):
                found.append(f"line {node.lineno}: {name}")
    assert not found, (
        f"{_rel(path)} imports hub-side parts ({', '.join(found)}); the extension talks to "
        "the service through gpuhub.client"
    )


#: What the CLI may import of the package: it speaks REST (the client), with the shared
#: words and names, reads a job's file as the extension does (the snapshot), and
#: ``gpuhub inventory`` reads this machine's GPUs itself (no service involved).
CLI_MAY_USE = (
    "gpuhub", "gpuhub.__version__", "gpuhub.terms", "gpuhub.client", "gpuhub.names",
    "gpuhub.jobs", "gpuhub.jobs.snapshot", "gpuhub.inventory",
)  # fmt: skip


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=_rel)
def test_the_cli_speaks_rest_only(path):
    found = sorted(
        {
            f"line {line}: {name}"
            for line, name in _imports(path)
            if name.startswith("gpuhub.")
            and not name.startswith("gpuhub.cli")
            and name not in CLI_MAY_USE  # packages exactly; modules and what is in them
            and not any(
                name.startswith(m + ".") for m in CLI_MAY_USE if m.count(".") and m != "gpuhub.jobs"
            )
        }
    )
    assert not found, (
        f"{_rel(path)} imports the service's or the scheduler's parts ({', '.join(found)}); "
        "the CLI asks the service over REST"
    )


# -- the service's routes: a module per resource, each ending in its default_handlers ------

SERVICE_MODULES = sorted((PACKAGE / "service").glob("*.py"))
#: Modules of the service with request handlers but no ``api/v1`` routes: the base class and
#: the catch-all 404, the web console's HTML pages, and ``/metrics`` (outside ``api/v1``).
NOT_ROUTE_MODULES = {"base.py", "console.py", "metrics.py"}
#: The only routes ``make_app`` names itself; every other is a route module's.
ROUTED_BY_HAND = {"HubOAuthCallbackHandler", "MetricsHandler", "NotFoundHandler"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _serving_handlers(tree: ast.Module) -> list[str]:
    """The classes of a module that answer an HTTP method themselves (not mere bases)."""
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in HTTP_METHODS
            for item in node.body
        )
    ]


def _route_modules() -> list[Path]:
    return [
        p
        for p in SERVICE_MODULES
        if p.name not in NOT_ROUTE_MODULES and _serving_handlers(ast.parse(p.read_text()))
    ]


def test_the_service_has_route_modules():
    names = {p.stem for p in _route_modules()}
    assert {"pool", "me", "options", "leases", "quotas", "usage", "jobs"} <= names, names


@pytest.mark.parametrize("path", _route_modules(), ids=_rel)
def test_each_route_module_ends_in_default_handlers_routing_its_handlers(path):
    """Habit 24: handlers grouped by resource, each module ending in its
    ``default_handlers`` (paths relative to ``api/v1``), as JupyterHub's apihandlers."""
    tree = ast.parse(path.read_text(), str(path))
    last = tree.body[-1]
    assert isinstance(last, ast.Assign) and [ast.unparse(t) for t in last.targets] == [
        "default_handlers"
    ], f"{_rel(path)} does not end in default_handlers = [(path, Handler), ...]"
    routed = {ast.unparse(item.elts[1]) for item in last.value.elts}
    unrouted = set(_serving_handlers(tree)) - routed
    assert not unrouted, f"{_rel(path)}: {sorted(unrouted)} not in its default_handlers"


def test_the_app_gathers_every_route_module_and_routes_nothing_else_by_hand():
    from gpuhub.service import app

    gathered = {m.__name__.rsplit(".", 1)[-1] for m in app.API_MODULES}
    assert gathered == {p.stem for p in _route_modules()}, "add the module to API_MODULES"
    tree = ast.parse((PACKAGE / "service" / "app.py").read_text())
    lists = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and [ast.unparse(t) for t in node.targets] == ["routes"]
        and isinstance(node.value, ast.List)
    ]
    assert len(lists) == 1, "make_app builds one route list"
    by_hand = {
        node.id
        for node in ast.walk(lists[0])
        if isinstance(node, ast.Name) and node.id.endswith("Handler")
    }
    assert by_hand == ROUTED_BY_HAND, (
        f"make_app routes {sorted(by_hand - ROUTED_BY_HAND)} by hand; list them in their "
        "module's default_handlers"
    )

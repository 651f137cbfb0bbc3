"""A real JupyterHub subprocess running hub_config/jupyterhub_config.py, for tests.

The test config loads the real one with ``load_subconfig`` and adds a ``test-admin``
service with a known token, then any ``extra_config`` lines a test module needs (its own
profiles, a shorter poll interval...). Everything listens on 127.0.0.1 on free ports;
``stop()`` terminates the hub, its proxy and the gpuhub service, and the log is kept for
failures. The server helpers (``spawn``, ``wait_ready``, ``progress_events``...) drive
users' servers through JupyterHub's REST API as the test-admin service.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx

from tests.support import http
from tests.support.paths import REPO
from tests.support.ports import free_port

HUB_CONFIG = REPO / "hub_config" / "jupyterhub_config.py"

TEST_CONFIG = """
c = get_config()  # noqa
load_subconfig({hub_config!r})
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{
        "name": "test-admin",
        "scopes": ["admin:users", "admin:groups", "tokens", "admin:servers",
                   "custom:gpuhub:admin", "access:services"],
        "services": ["test-admin"],
    }}
)
"""


def unique(name: str) -> str:
    """``name`` with a random suffix (``alice-3f9a1c``): a user or group of one test only,
    for the tests that share one hub (``shared_hub`` in tests/conftest.py)."""
    return f"{name}-{secrets.token_hex(3)}"


def pauses(first: float = 0.1, longest: float = 0.5) -> Iterator[float]:
    """The pauses between polls: ``first``, then half as long again each time, up to
    ``longest``. What is quick is seen quickly, and what takes seconds costs a few polls,
    not dozens: each one is a request some hub or service spends CPU on, the CPU that the
    other workers' tests wait for."""
    pause = first
    while True:
        yield pause
        pause = min(longest, pause * 1.5)


def wait_for(what: Callable[[], object], timeout: float = 30.0, step: float = 0.1):
    """Call ``what()`` until it returns something true; that value. Fails after ``timeout`` s.
    The polls start ``step`` apart and slow down (:func:`pauses`)."""
    deadline = time.monotonic() + timeout
    for pause in pauses(step, max(step, 0.5)):
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting after {timeout} s"
        time.sleep(pause)


def descendants(root: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the live processes below ``root`` (Linux /proc); JupyterHub starts
    its services in sessions of their own, so the process group does not find them."""
    parents: dict[int, int] = {}
    argvs: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:  # zombies have an empty command line
            pid = int(entry.name)
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            argvs[pid] = raw.rstrip(b"\0").decode(errors="replace").split("\0")
    out, todo = [], [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                out.append((pid, argvs[pid]))
                todo.append(pid)
    return out


class PortTaken(RuntimeError):
    """The hub could not bind a port it was given: another process took it meanwhile."""


class Hub:
    """One JupyterHub with the gpuhub service, and clients that talk to both."""

    def __init__(
        self, workdir: Path, *, env: dict[str, str] | None = None, extra_config: str = ""
    ) -> None:
        self.dir = workdir
        self.extra_config = extra_config
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.admin_token = secrets.token_hex(24)
        self.log_path = self.dir / "hub.log"
        self.env = {
            **os.environ,
            "GPUHUB_STATE_DIR": str(self.state),
            "GPUHUB_QUIET": "1",
            # no warm servers (gpuhub.spawners.warm) but where a test asks: each one is a
            # server start's CPU, which the other workers' tests wait for
            "GPUHUB_WARM_POOL": "0",
            # nor the idle culler (a Python process of its own): the shared hub runs both
            "GPUHUB_CULL_IDLE_TIMEOUT": "0",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            **(env or {}),
        }
        self._choose_ports()
        self.proc: subprocess.Popen | None = None

    def _choose_ports(self) -> None:
        """The hub's four ports: the public URL's, the hub's, the proxy API's, the service's."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for name in ("GPUHUB_HUB_PORT", "GPUHUB_PROXY_API_PORT", "GPUHUB_SERVICE_PORT"):
            self.env[name] = str(free_port())
        self.env["GPUHUB_BIND_URL"] = self.url

    @property
    def api(self) -> str:
        """The gpuhub REST API root, through the hub's proxy."""
        return f"{self.url}/services/gpuhub/api/v1"

    def start(self, timeout: float = 60) -> Hub:
        """Start the hub and wait until the gpuhub service answers through the proxy.

        A first start whose port another process took meanwhile is tried again on new
        ports; a restart keeps its ports (servers and clients know them).
        """
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if attempt == 2 or self._started_once:
                    raise
                self._choose_ports()
        raise AssertionError("unreachable")

    _started_once = False

    def _start(self, timeout: float) -> Hub:
        config = self.dir / "test_jupyterhub_config.py"
        text = TEST_CONFIG.format(hub_config=str(HUB_CONFIG), token=self.admin_token)
        config.write_text(text + self.extra_config)
        log = open(self.log_path, "ab")
        self._log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.dir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() signals the whole group: hub, proxy, service
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                code = self.proc.returncode
                self.stop()
                error = PortTaken if "Address already in use" in tail else RuntimeError
                raise error(f"JupyterHub exited with {code}:\n{tail}")
            try:
                r = http.get(self.api, timeout=2)
                if r.status_code == 200:
                    self._started_once = True
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterHub did not come up in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the hub, its proxy and its services."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:  # the proxy and service share the process group; make sure none outlives us
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        self._log.close()

    def restart(self) -> None:
        """Stop and start again on the same state (databases, secrets, ports)."""
        self.stop()
        self.start()

    def service_pids(self) -> tuple[int | None, int | None]:
        """(supervisor pid, gpuhub service pid) among the hub's processes; None if absent."""
        assert self.proc is not None, "the hub is not running"
        supervisor = service = None
        for pid, argv in descendants(self.proc.pid):
            if "gpuhub.service.supervisor" in argv:
                supervisor = pid
            elif "gpuhub.service" in argv:
                service = pid
        return supervisor, service

    def kill_service(self, sig: int = signal.SIGKILL) -> int:
        """Kill the gpuhub service process itself (not its supervisor); its pid."""
        _, pid = self.service_pids()
        assert pid is not None, f"no gpuhub service process:\n{self.log_tail()}"
        os.kill(pid, sig)
        return pid

    def log_tail(self, n: int = 80) -> str:
        """The last lines of the hub's log (hub, proxy and service together)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # -- clients ---------------------------------------------------------------------

    def hub_api(self, method: str, path: str, **kw) -> httpx.Response:
        """Call the JupyterHub REST API as the test-admin service."""
        headers = {"Authorization": f"token {self.admin_token}"}
        return http.request(
            method, f"{self.url}/hub/api/{path.lstrip('/')}", headers=headers, timeout=30, **kw
        )

    def add_user(self, name: str, *, groups: list[str] = ()) -> str:
        """Create a user (and groups), return an API token for them."""
        r = self.hub_api("POST", f"users/{name}")
        assert r.status_code in (201, 409), r.text
        for g in groups:
            r = self.hub_api("POST", f"groups/{g}")
            assert r.status_code in (201, 409), r.text
            r = self.hub_api("POST", f"groups/{g}/users", json={"users": [name]})
            assert r.status_code == 200, r.text
        r = self.hub_api("POST", f"users/{name}/tokens", json={"note": "test"})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def client(self, token: str) -> httpx.Client:
        """An httpx client for the gpuhub API authenticated with ``token``."""
        return http.client(
            base_url=self.api, headers={"Authorization": f"token {token}"}, timeout=30
        )

    def credentials(self) -> dict:
        """The generated login credentials of the embedded default."""
        return json.loads((self.state / "credentials.json").read_text())

    # -- users' servers (JupyterHub REST API as test-admin) -----------------------------

    def spawn(self, user: str, options: dict | None = None, **kw) -> httpx.Response:
        """``POST /users/NAME/server`` with ``user_options``; 201 ready, 202 pending."""
        body = {"user_options": options} if options is not None else None
        return self.hub_api("POST", f"users/{user}/server", json=body, **kw)

    def server(self, user: str) -> dict | None:
        """The user's default server model (with ``state``), or None when there is none."""
        r = self.hub_api("GET", f"users/{user}")
        assert r.status_code == 200, r.text
        return r.json()["servers"].get("")

    def wait_server(
        self, user: str, what: Callable[[dict | None], bool], timeout: float = 30
    ) -> dict | None:
        """Poll the user's server model until ``what(model)``; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        for pause in pauses():
            server = self.server(user)
            if what(server):
                return server
            if time.monotonic() > deadline:
                raise AssertionError(f"{user}'s server did not get there in {timeout}s: {server}")
            time.sleep(pause)
        raise AssertionError("unreachable")

    def wait_ready(self, user: str, timeout: float = 30) -> dict:
        """Wait until the user's server is ready; its model."""
        return self.wait_server(user, lambda s: bool(s and s["ready"]), timeout)

    def stop_server(self, user: str, timeout: float = 60) -> None:
        """``DELETE /users/NAME/server`` and wait until the server is gone (a local server
        on a loaded machine may take the spawner's interrupt, terminate and kill steps)."""
        r = self.hub_api("DELETE", f"users/{user}/server")
        assert r.status_code in (202, 204), r.text
        self.wait_server(user, lambda s: s is None, timeout)

    def progress_events(
        self, user: str, until: Callable[[dict], bool], timeout: float = 30
    ) -> list[dict]:
        """Read the spawn's progress event stream until an event satisfies ``until``."""
        events: list[dict] = []
        url = f"{self.url}/hub/api/users/{user}/server/progress"
        headers = {"Authorization": f"token {self.admin_token}"}
        deadline = time.monotonic() + timeout
        with http.stream("GET", url, headers=headers, timeout=timeout) as r:
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if until(events[-1]):
                        return events
                assert time.monotonic() < deadline, f"no such event in {events}"
        raise AssertionError(f"the progress stream ended without such an event: {events}")


@contextmanager
def hub_with_users(
    workdir: Path, *, env: dict[str, str] | None = None, groups: list[str] = ()
) -> Iterator[SimpleNamespace]:
    """A started hub with users alice and bob (in ``groups``) and the generated admin.

    Yields a namespace with ``hub``, ``admin_name``, ``names`` (role → user name, here the
    plain ``alice`` and ``bob``), ``tokens`` (role → token) and an API client per role
    (``alice``, ``bob``, ``admin``). At the end the users' servers are stopped, the clients
    closed and the hub stopped. On the shared hub (``shared_hub``) use :func:`users_on`.
    """
    hub = Hub(workdir, env=env)
    clients: list[httpx.Client] = []
    try:
        hub.start()
        names = {"alice": "alice", "bob": "bob", "admin": hub.credentials()["admin_user"]}
        yield _users(hub, names, groups, clients)
    finally:
        for client in clients:
            client.close()
        r = hub.hub_api("GET", "users") if hub.proc else None
        for user in r.json() if r is not None and r.status_code == 200 else ():
            if user["servers"]:
                hub.hub_api("DELETE", f"users/{quote(user['name'], safe='')}/server")
        hub.stop()


@contextmanager
def users_on(hub: Hub, *, groups: list[str] = ()) -> Iterator[SimpleNamespace]:
    """:func:`hub_with_users`'s namespace on a hub that is already running (``shared_hub``):
    alice and bob get names of their own (``unique``: ``names["alice"]`` is the user name),
    in ``groups``; the admin is the generated one. At the end alice's and bob's servers
    are stopped and the clients closed; the hub keeps running.
    """
    clients: list[httpx.Client] = []
    names = {
        "alice": unique("alice"),
        "bob": unique("bob"),
        "admin": hub.credentials()["admin_user"],
    }
    try:
        yield _users(hub, names, groups, clients)
    finally:
        for client in clients:
            client.close()
        for name in (names["alice"], names["bob"]):
            r = hub.hub_api("GET", f"users/{name}") if hub.proc else None
            if r is not None and r.status_code == 200 and r.json()["servers"]:
                hub.stop_server(name)


def _users(
    hub: Hub, names: dict[str, str], groups: list[str], clients: list[httpx.Client]
) -> SimpleNamespace:
    """Add the users ``names`` (role → name; all but the admin in ``groups``) to ``hub``:
    the namespace of :func:`hub_with_users`, its clients also appended to ``clients``."""
    tokens = {
        role: hub.add_user(name, groups=[] if role == "admin" else list(groups))
        for role, name in names.items()
    }
    ns = SimpleNamespace(hub=hub, admin_name=names["admin"], names=names, tokens=tokens)
    for role, token in tokens.items():
        clients.append(hub.client(token))
        setattr(ns, role, clients[-1])
    return ns


def put_notebook(
    hub: Hub, user: str, token: str, name: str, *sources: str, parameters: str | None = None
) -> None:
    """Save a Python notebook ``name`` in ``user``'s home through the server's contents API:
    a cell tagged ``parameters`` when given, then one code cell per source. Its kernelspec
    is set, so JupyterLab opens it without a "Select Kernel" dialog."""
    cells = []
    if parameters is not None:
        cells.append({"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
                      "execution_count": None, "source": parameters})  # fmt: skip
    cells += [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
               "source": source} for source in sources]  # fmt: skip
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = {"type": "notebook", "content": {"cells": cells, "metadata": {"kernelspec": kernelspec},
                                         "nbformat": 4, "nbformat_minor": 5}}  # fmt: skip
    r = http.put(
        f"{hub.url}/user/{user}/api/contents/{name}",
        json=nb,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text


_LOAD_CONFIG = """
import json, sys
from traitlets.config.loader import PyFileConfigLoader
c = PyFileConfigLoader(sys.argv[1]).load_config()
print(json.dumps({"services": c.JupyterHub.services, "roles": c.JupyterHub.load_roles}))
"""


def hub_config_with(state: Path, **switches: str) -> dict:
    """hub_config's services and roles (by name) under the given GPUHUB_* switches, loaded
    in a fresh interpreter as JupyterHub loads it."""
    env = {**os.environ, "GPUHUB_STATE_DIR": str(state), "GPUHUB_QUIET": "1", **switches}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_CONFIG, str(HUB_CONFIG)],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return {kind: {x["name"]: x for x in items} for kind, items in loaded.items()}

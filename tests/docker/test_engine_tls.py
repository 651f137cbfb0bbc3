"""Servers and jobs on a Docker engine reached over TCP with TLS, configured once.

The test puts a TLS front on this machine's Docker engine: a forwarder on
127.0.0.1:<free port> that requires a client certificate of a CA made here, and passes
the bytes on to ``/var/run/docker.sock``. The hub's GPU spawner and the service's job
executor are configured as an admin configures DockerSpawner (``tls_config`` and
``client_kwargs``, or ``DOCKER_HOST``, ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH``);
a server container starts and stops through the spawner's own ``start``/``poll``/``stop``
(its lease granted by a stand-in for the gpuhub service), and a job runs to its end
through ``DockerExecutor``, both on one engine whose every request the forwarder saw.
Clients without a certificate of that CA are refused.

Containers are named ``gpuhubtls<run>-*`` and belong to users ``tls<run>-*``; a module
fixture removes them and their home volumes whatever happens. ``GPUHUB_TEST_NO_DOCKER=1``
leaves these tests out.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.request import urlopen

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from gpuhub.containers.engine import Engine, EngineSettings
from gpuhub.containers.spec import build_env
from gpuhub.jobs.docker import DockerExecutor
from gpuhub.jobs.executor import JobSpec
from gpuhub.spawners.docker import GPUDockerSpawner
from jupyterhub.httpclient import JupyterHubHTTPClient
from jupyterhub.objects import Hub as HubAddress
from traitlets.config import Config

from tests.support.docker import engine_client, remove_leftovers
from tests.support.hub import wait_for

pytestmark = pytest.mark.timeout(300)

SOCKET = "/var/run/docker.sock"
SERVER_IMAGE = "gpuhub/base:latest"
JOB_IMAGE = "gpuhub/pytorch:latest"  # has gpuhub's job runner
RUN = secrets.token_hex(3)
PREFIX = f"gpuhubtls{RUN}"  # container names: {PREFIX}-{user} and {PREFIX}-job-{id}
USERS = f"tls{RUN}"  # user names {USERS}-{name}; home volumes gpuhub-home-{USERS}-{name}
HUB_CN = "gpuhub hub"  # the client certificate's subject
#: The server: answers HTTP where JupyterHub told it to listen (a small stand-in for
#: jupyterhub-singleuser, which would also need a hub to talk to).
SERVE = (
    "import http.server, os, urllib.parse\n"
    "url = urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL'])\n"
    "http.server.ThreadingHTTPServer((url.hostname, url.port),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


def user(name: str) -> str:
    return f"{USERS}-{name}"


# -- certificates ------------------------------------------------------------------------------


class Authority:
    """A certificate authority of the test, and the certificates it signs."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            self._builder(subject, self.key.public_key(), subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )  # fmt: skip
            .sign(self.key, hashes.SHA256())
        )

    def _builder(
        self, subject: x509.Name, public_key, issuer: x509.Name
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def issue(self, folder: Path, stem: str, name: str, *, server: bool) -> tuple[str, str]:
        """A certificate for ``name`` (a server's for 127.0.0.1, or a client's), as files
        ``<stem>cert.pem`` and ``<stem>key.pem`` in ``folder``; their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(subject, key.public_key(), self.cert.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = folder / f"{stem}cert.pem", folder / f"{stem}key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )  # fmt: skip
        )
        return str(cert_path), str(key_path)

    def write(self, path: Path) -> str:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


# -- the TLS front of the engine ------------------------------------------------------------------

_REQUEST = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (/[^ \r\n]*) HTTP/1\.[01]\r\n")


class Forwarder:
    """A TLS front of the local Docker engine on 127.0.0.1:``port`` (a free port).

    It requires a client certificate of the test's CA, passes the bytes on to the
    engine's socket, and notes what it saw: the subject of each accepted client, each
    refused handshake, and each request line (``POST /v1.47/containers/create?...``).
    Runs its own event loop in a thread.
    """

    def __init__(self, context: ssl.SSLContext, target: str = SOCKET) -> None:
        self.context, self.target = context, target
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        self.clients: list[str] = []
        self.refused: list[str] = []
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self._thread.start()
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)

    def stop(self) -> None:
        async def close() -> None:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.2)  # the transports' sockets close in the next turns

        self._serving.cancel()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self.listener.close()

    def seen(self, pattern: str) -> list[str]:
        """The request lines seen so far that match ``pattern``."""
        return [r for r in list(self.requests) if re.search(pattern, r)]

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.listener)
            task = loop.create_task(self._forward(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forward(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:  # the handshake is over when this returns: a refused client raises here
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self.context, ssl_handshake_timeout=10
            )
        except OSError as e:  # ssl.SSLError, a reset, or the handshake timed out
            self.refused.append(f"{type(e).__name__}: {e}")
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            peer = writer.get_extra_info("peercert") or {}
            self.clients.append(dict(x[0] for x in peer.get("subject", ())).get("commonName", ""))
            engine_reader, engine_writer = await asyncio.open_unix_connection(self.target)
            try:
                await asyncio.gather(
                    self._pipe(reader, engine_writer, requests=True),
                    self._pipe(engine_reader, writer, requests=False),
                )
            finally:
                engine_writer.close()
        except OSError:
            pass
        finally:
            writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, requests: bool
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                if requests:
                    self.requests += [
                        f"{m.decode()} {p.decode()}" for m, p in _REQUEST.findall(data)
                    ]
                writer.write(data)
                await writer.drain()
        finally:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[docker.APIClient]:
    """The engine on its own socket, with both images on it; cleans up this module's
    containers and volumes at the end, whatever happens."""
    client = engine_client(SERVER_IMAGE, JOB_IMAGE, base_url=f"unix://{SOCKET}", timeout=60)
    try:
        yield client
    finally:
        remove_leftovers(client, filters={"name": f"^/{PREFIX}-"}, volumes=f"gpuhub-home-{USERS}-")
        client.close()


@pytest.fixture(scope="module")
def tls(local, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The forwarder, and the certificates: ``ca``, ``cert``/``key`` (the hub's client
    certificate), ``stranger`` (a client certificate of another CA), ``folder`` (as
    ``DOCKER_CERT_PATH`` wants it: ca.pem, cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("docker-tls")
    ca = Authority("gpuhub test CA")
    server_cert, server_key = ca.issue(folder, "server-", "docker engine", server=True)
    cert, key = ca.issue(folder, "", HUB_CN, server=False)
    stranger = Authority("another CA").issue(folder, "stranger-", "stranger", server=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(ca.write(folder / "ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    forwarder = Forwarder(context)
    forwarder.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1")  # the engine's client never goes through a proxy
        mp.setenv("no_proxy", "127.0.0.1")
        try:
            yield SimpleNamespace(
                forwarder=forwarder, url=f"tcp://127.0.0.1:{forwarder.port}",
                ca=str(folder / "ca.pem"), cert=cert, key=key, stranger=stranger, folder=folder,
            )  # fmt: skip
        finally:
            forwarder.stop()


class StandInService:
    """The gpuhub service's lease API as a spawner uses it: every request granted at once
    on a simulated GPU; releases noted."""

    def __init__(self) -> None:
        self.granted: dict[int, dict] = {}
        self.released: list[int] = []

    async def request_lease(self, body: dict) -> dict:
        lease_id = 9100 + len(self.granted)
        self.granted[lease_id] = {
            "id": lease_id, "status": "active", "user": body["user"], "node": "n1",
            "profile": body.get("profile"),
            "devices": [{"uuid": "GPU-sim-n1-0", "index": 0, "simulated": True}],
        }  # fmt: skip
        return self.granted[lease_id]

    async def lease(self, lease_id: int) -> dict:
        return self.granted[lease_id]

    async def release(self, lease_id: int) -> dict:
        self.released.append(lease_id)
        return {**self.granted[lease_id], "status": "released"}


class LeasedSpawner(GPUDockerSpawner):
    """The GPU Docker spawner, its leases granted by a stand-in for the gpuhub service."""

    service: StandInService

    @property
    def gpuhub(self) -> StandInService:
        return self.service

    async def reconcile(self) -> None:
        """No service database to compare the engine's containers with."""


def admin_config(tls: SimpleNamespace) -> Config:
    """The hub's configuration, as an admin writes it for a TLS-protected engine."""
    c = Config()
    c.DockerSpawner.tls_config = {"client_cert": (tls.cert, tls.key), "ca_cert": tls.ca,
                                  "verify": True}  # fmt: skip
    c.DockerSpawner.client_kwargs = {"base_url": tls.url}
    c.DockerSpawner.network_name = "host"
    c.DockerSpawner.prefix = PREFIX
    c.Spawner.cmd = ["python3", "-c", SERVE]
    c.Spawner.http_timeout = 60
    c.GPUSpawnerMixin.profiles = [
        {"name": "tls", "image": SERVER_IMAGE, "shape": {"kind": "gpu", "count": 1},
         "cpu_limit": 1, "mem_limit": "512M", "default": True}
    ]  # fmt: skip
    return c


def spawner(name: str, config: Config) -> LeasedSpawner:
    owner = SimpleNamespace(name=name, groups=[], url=f"/user/{name}/", escaped_name=name)
    hub = HubAddress(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = LeasedSpawner(user=owner, hub=hub, config=config)
    s.service = StandInService()
    s.server = SimpleNamespace(base_url=f"/user/{name}/")
    s.user_options = {"profile": "tls"}
    return s


def job(executor: DockerExecutor, job_id: int, name: str) -> JobSpec:
    """A script job on a simulated GPU lease, in the PyTorch image."""
    lease = {"id": 9200 + job_id, "node": "n1", "profile": "tls",
             "devices": [{"uuid": f"GPU-sim-{job_id}", "simulated": True}]}  # fmt: skip
    return JobSpec(
        id=job_id, user=user(name), name="tls", kind="script", path="work/tls.py",
        folder=f"gpuhub-jobs/{job_id}-tls",
        source="import os\nprint('job', os.environ['GPUHUB_JOB_ID'], 'ran over TLS')\n",
        lease=lease, env={**build_env(lease, service_url="http://127.0.0.1:9"),
                          "GPUHUB_JOB_ID": str(job_id)},
        image=JOB_IMAGE, image_digest=executor.resolve_image(JOB_IMAGE),
        cpu_limit=1.0, mem_limit=1 << 30, shm_size=64 << 20,
    )  # fmt: skip


# -- the tests ---------------------------------------------------------------------------------


async def test_a_server_and_a_job_run_on_one_engine_over_tls(tls, local):
    c = admin_config(tls)
    s = spawner(user("ada"), c)
    executor = DockerExecutor(config=c, prefix=f"{PREFIX}-job")
    engine = s.engine
    assert executor.engine is engine  # one engine of this process, configured once
    assert engine.settings == EngineSettings.from_config(c)
    try:
        # the server, through the spawner's start, poll and stop
        ip, port = await asyncio.wait_for(s.start(), 120)
        assert (ip, port) == ("127.0.0.1", s.port)
        with await asyncio.to_thread(urlopen, f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200  # the server in the container answers
        assert engine.client.base_url == f"https://127.0.0.1:{tls.forwarder.port}"
        container = local.inspect_container(s.container_id)
        assert container["Name"] == f"/{s.container_name}" and container["State"]["Running"]
        assert s.container_name.startswith(f"{PREFIX}-")
        assert container["Config"]["Labels"]["gpuhub.lease"] == str(s.lease_id) == "9100"
        assert container["Config"]["Env"].count("CUDA_VISIBLE_DEVICES=GPU-sim-n1-0") == 1
        assert await asyncio.wait_for(s.poll(), 30) is None
        await asyncio.wait_for(s.stop(), 60)
        assert s.service.released == [9100] and s.lease_id is None
        with pytest.raises(docker.errors.NotFound):
            local.inspect_container(container["Id"])
        name = re.escape(s.container_name)
        assert tls.forwarder.seen(rf"^POST /v[\d.]+/containers/create\?name={name}$")
        assert tls.forwarder.seen(rf"^POST /v[\d.]+/containers/{container['Id']}/start$")
        assert tls.forwarder.seen(rf"^DELETE /v[\d.]+/containers/{container['Id']}")

        # the job, through the executor's hooks (the service calls them in threads)
        spec = await asyncio.to_thread(job, executor, 1, "ada")

        def run() -> str:
            executor.before_start(spec)
            state = executor.start(spec)
            end = wait_for(lambda: executor.poll(spec, state), timeout=120, step=0.2)
            log = executor.read_log(spec, state, 0, 1 << 20).decode()
            executor.cleanup(spec, state)
            assert end.outcome == "succeeded", (end, log)
            return log

        log = await asyncio.to_thread(run)
        assert "job 1 ran over TLS" in log
        jobname = re.escape(f"{PREFIX}-job-1")
        assert tls.forwarder.seen(rf"^POST /v[\d.]+/containers/create\?name={jobname}$")
        assert tls.forwarder.seen(r"^PUT /v[\d.]+/containers/\w+/archive\?path=")
        assert tls.forwarder.seen(r"^GET /v[\d.]+/containers/\w+/archive\?path=.*job\.log")
        assert not local.containers(all=True, filters={"name": f"^/{PREFIX}-job-1$"})
        # every connection was the hub's, with its certificate
        assert tls.forwarder.clients and set(tls.forwarder.clients) == {HUB_CN}
    finally:
        engine.close()
        # the spawner asked the server's API with JupyterHub's client of this event loop
        await JupyterHubHTTPClient.loop_instance().close()


def test_the_docker_environment_reaches_the_engine_the_same_way(tls, local, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", tls.url)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tls.folder))
    c = Config()
    c.DockerSpawner.prefix = PREFIX
    s, executor = spawner(user("env"), c), DockerExecutor(config=c, prefix=f"{PREFIX}-job")
    assert executor.engine is s.engine and s.engine.settings.environment["DOCKER_HOST"] == tls.url
    try:
        before = len(tls.forwarder.requests)
        assert executor.resolve_image(SERVER_IMAGE) == local.inspect_image(SERVER_IMAGE)["Id"]
        assert s.engine.host_cpus() == local.info()["NCPU"]
        seen = tls.forwarder.requests[before:]
        assert any(re.search(r"^GET /v[\d.]+/images/.+/json$", r) for r in seen), seen
        assert any(re.search(r"^GET /v[\d.]+/info$", r) for r in seen), seen
    finally:
        s.engine.close()


@pytest.mark.parametrize("client", ["no certificate", "another CA's certificate", "no TLS"])
def test_a_client_without_the_hubs_certificate_is_refused(tls, client):
    tls_config = {
        "no certificate": {"ca_cert": tls.ca, "verify": True},
        "another CA's certificate": {
            "client_cert": tls.stranger,
            "ca_cert": tls.ca,
            "verify": True,
        },
        "no TLS": {},
    }[client]
    engine = Engine(EngineSettings(tls_config=tls_config, client_kwargs={"base_url": tls.url},
                                   timeout=10, environment={}))  # fmt: skip
    refused, requests = len(tls.forwarder.refused), len(tls.forwarder.requests)
    try:
        with pytest.raises(docker.errors.DockerException):
            engine.client.info()
    finally:
        engine.close()
    wait_for(lambda: len(tls.forwarder.refused) > refused, timeout=10)
    assert len(tls.forwarder.requests) == requests  # nothing reached the engine

"""gpuhub's container images and its docker-compose deployment, on a real Docker engine.

The images are built by ``scripts/images`` FROM the local debootstrap base, as CI builds
them: by the first Docker test of the run (``tests.support.docker.ensure_images``; a
second or two when nothing changed).
Each image is checked from the inside: who it runs as, what it can run, and that the CA
bundle handed to the build as a secret left no trace in any layer. Then
``docker-compose.yml`` comes up as a project of its own, a person logs in through the real
authenticator, gets an API token and a GPU server in a container started by the hub, and
the project goes down again with its volumes.

Everything stays on this machine: ports are published on 127.0.0.1 only, containers of
this module are named ``gpuhubtest-*`` or belong to the compose project ``gpuhubtest``,
and finalizers remove them whatever happens. ``GPUHUB_TEST_NO_DOCKER=1`` leaves the
Docker tests out.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import http
from tests.support.docker import DEBIAN_BASE, ensure_images
from tests.support.paths import REPO
from tests.support.ports import free_port

IMAGES = ("base", "pytorch", "hub", "postgres")
TAG = os.environ.get("GPUHUB_IMAGE_TAG", "latest")
BUILD_CA = Path(os.environ.get("GPUHUB_BUILD_CA", "/etc/ssl/certs/ca-certificates.crt"))

PREFIX = "gpuhubtest"  # containers' names, the compose project, the user's name
TEST_LABEL = "gpuhub.test"
PROJECT = PREFIX
USER = f"{PREFIX}-alice"
HOME_VOLUME = f"gpuhub-home-{USER}"  # the GPU Docker spawner's per-user home volume

# building from nothing: debootstrap ~45 s, the four images ~2 min on 2 cores
pytestmark = pytest.mark.timeout(900)


def image(name: str) -> str:
    """The full name of one of gpuhub's images."""
    return f"gpuhub/{name}:{TAG}"


# -- Docker helpers --------------------------------------------------------------------


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run the docker CLI; on failure the error names the command and its output."""
    r = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and r.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args)} exited with {r.returncode}:\n{r.stdout}\n{r.stderr}",
            pytrace=False,
        )
    return r


def run_in(ref: str, *command: str, entrypoint: str | None = None) -> str:
    """Run ``command`` in a throwaway container of image ``ref`` without a network."""
    args = ["run", "--rm", "--network", "none", "--label", f"{TEST_LABEL}=1"]
    args += ["--name", f"{PREFIX}-{secrets.token_hex(4)}"]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    return docker(*args, ref, *command).stdout


def remove_test_containers() -> None:
    """Remove every container this module started directly (labelled, one by one)."""
    ids = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}=1", check=False).stdout.split()
    for cid in ids:
        docker("rm", "-f", cid, check=False)


@pytest.fixture(scope="session")
def images() -> Iterator[dict[str, str]]:
    """gpuhub's four images, built (or found up to date) FROM the local debootstrap base."""
    ensure_images()  # a second or two when nothing changed, never a stale image
    try:
        yield {n: image(n) for n in IMAGES}
    finally:
        remove_test_containers()


def inspect(name: str) -> dict:
    """``docker image inspect`` of one of gpuhub's images."""
    return json.loads(docker("image", "inspect", image(name)).stdout)[0]


# -- the user images -------------------------------------------------------------------


def test_base_image_runs_jupyter_as_jovyan(images):
    config = inspect("base")["Config"]
    assert config["User"] in ("1000:100", "1000"), config["User"]
    assert config["WorkingDir"] == "/home/jovyan"
    assert config["Cmd"] == ["jupyterhub-singleuser"]

    out = run_in(
        image("base"), "sh", "-c", 'id -u; id -g; id -un; echo "$HOME"; pwd; ls -ld "$HOME"'
    )
    uid, gid, name, home, cwd, listing = out.splitlines()
    assert (uid, gid, name, home, cwd) == ("1000", "100", "jovyan", "/home/jovyan", "/home/jovyan")
    assert listing.split()[2] == "jovyan", f"jovyan owns its home: {listing}"


def nothing_unneeded(*apps: str) -> str:
    """Python that imports ``apps`` and fails if a package that images/requirements.py
    lists as unneeded is installed (rfc3987-syntax: 0.8 CPU-s per process start)."""
    return (
        f"import importlib.util, sys; import {', '.join(apps)}; "
        "left = [m for m in ('rfc3987_syntax',) if importlib.util.find_spec(m)]; "
        "assert not left, left; assert 'jsonschema' in sys.modules"
    )


def test_base_image_has_singleuser_lab_and_gpuhub(images):
    assert re.search(r"\d+\.\d+", run_in(image("base"), "jupyterhub-singleuser", "--version"))
    lab = run_in(image("base"), "jupyter", "lab", "--version").strip()
    assert int(lab.split(".")[0]) >= 4, lab
    out = run_in(
        image("base"),
        "python",
        "-c",
        "import sys, jupyter_server, jupyterlab, gpuhub; print(sys.prefix)",
    )
    assert out.strip() == "/opt/gpuhub/venv"
    # nothing that only slows every server start is left (images/requirements.py --unneeded)
    run_in(image("base"), "python", "-c", nothing_unneeded("jupyter_server.serverapp"))
    # jovyan owns the environment: `pip install` works in a running server
    assert (
        run_in(image("base"), "sh", "-c", "test -w /opt/gpuhub/venv/bin && echo ok").strip() == "ok"
    )


def test_base_image_has_gpuhub_jupyter_extensions_enabled_and_ok(images):
    """The image's JupyterLab lists gpuhub's prebuilt labextension and server extension."""
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    lab = ansi.sub("", run_in(image("base"), "sh", "-c", "jupyter labextension list 2>&1"))
    assert re.search(r"@gpuhub/jupyterlab-gpuhub v\S+ enabled OK \(python, gpuhub\)", lab), lab
    server = ansi.sub("", run_in(image("base"), "sh", "-c", "jupyter server extension list 2>&1"))
    assert re.search(r"jupyter_gpuhub\s+enabled", server), server
    assert re.search(r"jupyter_gpuhub \S+ OK", server), server


def test_pytorch_image_computes_with_torch(images):
    out = run_in(
        image("pytorch"),
        "python",
        "-c",
        "import torch; x = torch.ones(2, 2); print(torch.__version__); print((x @ x).sum().item())",
    )
    version, total = out.split()
    assert version.startswith("2."), version
    assert float(total) == 8.0
    assert inspect("pytorch")["Config"]["User"] == inspect("base")["Config"]["User"]


def test_hub_image_runs_jupyterhub_and_the_proxy(images):
    config = inspect("hub")["Config"]
    assert config["Cmd"] == ["jupyterhub", "-f", "/srv/gpuhub/hub_config/jupyterhub_config.py"]
    assert re.match(r"[5-9]\.", run_in(image("hub"), "jupyterhub", "--version").strip())
    assert re.match(r"4\.", run_in(image("hub"), "configurable-http-proxy", "--version").strip())
    run_in(
        image("hub"), "python", "-c", "import gpuhub.service, dockerspawner, psycopg, sqlalchemy"
    )
    run_in(image("hub"), "python", "-c", nothing_unneeded("jupyterhub.app"))
    # the service's web console bundle is in the image (nothing is fetched at run time)
    run_in(
        image("hub"), "python", "-c",
        "import importlib.resources as r; "
        "assert (r.files('gpuhub.service') / 'static' / 'console.js').is_file()",
    )  # fmt: skip
    config_file = run_in(image("hub"), "cat", "/srv/gpuhub/hub_config/jupyterhub_config.py")
    assert config_file == (REPO / "hub_config" / "jupyterhub_config.py").read_text()


def pem_certificates(text: str) -> list[str]:
    """The PEM certificates in a bundle, as their base64 lines (no BEGIN/END)."""
    return [
        "\n".join(line.strip() for line in block.strip().splitlines())
        for block in re.findall(
            r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S
        )
    ]


def image_contains(name: str, needles: list[bytes]) -> set[bytes]:
    """Which ``needles`` occur anywhere in an image: every layer's files (also ones a later
    layer deletes), its config and its history.

    The layers are read where the engine keeps them (overlay2's folders, with grep), which
    is several times cheaper than streaming ``docker save``; where they cannot be read
    (another storage driver, no permission), ``docker save`` is searched instead.
    """
    meta = json.loads(subprocess.run(
        ["docker", "image", "inspect", image(name)], capture_output=True, check=True
    ).stdout)[0]  # fmt: skip
    driver = meta.get("GraphDriver") or {}
    data = driver.get("Data") or {}
    layers = [d for key in ("LowerDir", "UpperDir") for d in (data.get(key) or "").split(":") if d]
    if (
        driver.get("Name") != "overlay2"
        or not layers
        or not all(os.access(d, os.R_OK | os.X_OK) for d in layers)
    ):
        return saved_image_contains(name, needles)
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image(name)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    config = json.dumps(meta).encode() + history
    found = {n for n in needles if n in config or n.replace(b"\n", b"\\n") in config}
    # grep matches lines: a needle's first base64 line (64 characters) stands for it
    first = {n.split(b"\n", 1)[0]: n for n in needles}
    proc = subprocess.run(
        ["grep", "-r", "-a", "-h", "-o", "-F", *(a for line in first for a in ("-e", line)),
         "--", *layers],
        capture_output=True,
    )  # fmt: skip
    assert proc.returncode in (0, 1), f"grep failed: {proc.stderr.decode(errors='replace')}"
    found.update(first[line] for line in set(proc.stdout.split(b"\n")) if line in first)
    return found


def saved_image_contains(name: str, needles: list[bytes]) -> set[bytes]:
    """Which ``needles`` occur anywhere in ``docker save`` of an image: every layer's files
    (also ones a later layer deletes), its config and its history."""
    longest = max(len(n) for n in needles)
    found: set[bytes] = set()
    with subprocess.Popen(["docker", "save", image(name)], stdout=subprocess.PIPE) as p:
        tail = b""
        while chunk := p.stdout.read(1 << 22):
            data = tail + chunk
            found.update(n for n in needles if n in data)
            tail = data[-longest:]
    assert p.returncode == 0, f"docker save {image(name)} failed"
    return found


@pytest.mark.parametrize("name", ["base", "pytorch", "hub"])
def test_build_ca_is_not_in_the_image(images, name):
    """The CA handed to pip/npm as a build secret is in no layer; the image's CA bundle is
    the distribution's own (the one in the debootstrap base)."""
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    run_in(image(name), "sh", "-c", "! test -e /run/secrets/ca.crt")
    image_bundle = run_in(image(name), bundle, entrypoint="cat")
    base_bundle = run_in(DEBIAN_BASE, bundle, entrypoint="cat")
    assert image_bundle == base_bundle, "the image's CA bundle is not the distribution's"

    in_image = set(pem_certificates(image_bundle))
    # certificates only the build host trusts (a TLS-intercepting proxy's CA, say)
    host_certs = pem_certificates(BUILD_CA.read_text()) if BUILD_CA.exists() else []
    host_only = [c for c in host_certs if c not in in_image]
    # two base64 lines of each: long enough to be unique, short enough to sit in one chunk
    needles = [
        "\n".join(c.splitlines()[2:4]).encode() for c in host_only if len(c.splitlines()) > 4
    ]
    # a control the search must find, or it cannot see into the layers (compressed, say)
    control = "\n".join(pem_certificates(base_bundle)[0].splitlines()[2:4]).encode()
    found = image_contains(name, [control, *needles])
    assert control in found, "no layer content was read; the check cannot run here"
    leaked = found - {control}
    assert not leaked, f"{len(leaked)} build-host CA certificate(s) found in {image(name)}"


# -- PostgreSQL ------------------------------------------------------------------------


def wait_healthy(container: str, timeout: float) -> float:
    """Wait until a container's health check passes; returns the seconds it took."""
    start = time.monotonic()
    status = "?"
    while time.monotonic() - start < timeout:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
        status = (state.get("Health") or {}).get("Status", "none")
        if status == "healthy":
            return time.monotonic() - start
        if not state["Running"]:
            break
        time.sleep(0.5)
    logs = docker("logs", "--tail", "60", container, check=False)
    pytest.fail(f"{container} is {status}, not healthy:\n{logs.stdout}{logs.stderr}")


def test_postgres_image_initializes_and_accepts_passwords(images):
    password = secrets.token_hex(16)
    name = f"{PREFIX}-postgres-{secrets.token_hex(4)}"
    docker("run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1", "--network", "none",
           "--env", f"POSTGRES_PASSWORD={password}", image("postgres"))  # fmt: skip
    try:
        wait_healthy(name, 90)
        psql = ["exec", "--env", f"PGPASSWORD={password}", name, "psql", "-h", "127.0.0.1",
                "-U", "gpuhub", "-d", "gpuhub", "-Atc"]  # fmt: skip
        dbs = docker(*psql, "select datname from pg_database order by 1").stdout.split()
        assert {"gpuhub", "jupyterhub"} <= set(dbs)
        method = docker(*psql, "select auth_method from pg_hba_file_rules where address = "
                        "'0.0.0.0'").stdout.strip()  # fmt: skip
        assert method == "scram-sha-256"
        wrong = ["exec", "--env", "PGPASSWORD=wrong", name, "psql", "-h", "127.0.0.1",
                 "-U", "gpuhub", "-d", "gpuhub", "-c", "select 1"]  # fmt: skip
        r = docker(*wrong, check=False)
        assert r.returncode != 0 and "password authentication failed" in r.stderr
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_postgres_image_refuses_to_start_without_a_password(images):
    r = docker("run", "--rm", "--network", "none", "--label", f"{TEST_LABEL}=1",
               image("postgres"), check=False)  # fmt: skip
    assert r.returncode != 0
    assert "set POSTGRES_PASSWORD" in r.stderr


# -- docker-compose.yml ------------------------------------------------------------------


def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_keeps_secrets_out_of_the_repository():
    spec = compose_file()
    assert "version" not in spec, "the Compose Specification has no version key (v1.29 and v2)"
    assert set(spec["services"]) == {"hub", "postgres"}
    assert set(spec["volumes"]) == {"gpuhub-db", "gpuhub-state"}
    for service in spec["services"].values():
        assert "healthcheck" in service
        assert "image" in service and "build" in service
    text = (REPO / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text, "the password comes from .env and is required"
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()
    example = (REPO / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M), "the example has no secret"


def compose_command() -> list[str]:
    """docker-compose (v1, Debian's package) or `docker compose` (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is installed", pytrace=False)


class Deployment:
    """docker-compose.yml brought up as project ``gpuhubtest`` with a generated .env."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env_file = workdir / "gpuhub.env"
        self.env_file.write_text(
            "\n".join(
                [
                    f"POSTGRES_PASSWORD={secrets.token_hex(24)}",
                    "GPUHUB_HTTP_ADDR=127.0.0.1",  # this machine only
                    f"GPUHUB_HTTP_PORT={self.port}",
                    "GPUHUB_INVENTORY=simulated",  # no GPU here: the pool says it is simulated
                    "GPUHUB_HUB_RUNTIME=runc",
                    f"GPUHUB_DOCKER_NETWORK={PREFIX}",
                    f"GPUHUB_IMAGE_TAG={TAG}",
                    "",
                ]
            )
        )
        self.env_file.chmod(0o600)
        self.base = [
            *compose_command(),
            "--project-name", PROJECT,
            "--project-directory", str(REPO),
            "--file", str(REPO / "docker-compose.yml"),
            "--env-file", str(self.env_file),
        ]  # fmt: skip

    def compose(self, *args: str, timeout: float = 180, check: bool = True):
        r = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and r.returncode:
            pytest.fail(f"compose {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}\n{self.logs()}")
        return r

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def logs(self, tail: int = 80) -> str:
        r = subprocess.run(
            [*self.base, "logs", "--no-color", "--tail", str(tail)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return f"--- compose logs ---\n{r.stdout}{r.stderr}"

    def explain(self, r: httpx.Response) -> str:
        """A failed request, what it answered, and the deployment's logs."""
        request = f"{r.request.method} {r.request.url} -> {r.status_code}"
        return f"{request}\n{r.text[:2000]}\n{self.logs()}"

    def credentials(self) -> dict:
        out = self.compose("exec", "-T", "hub", "cat", "/srv/gpuhub/state/credentials.json")
        return json.loads(out.stdout)

    def down(self) -> None:
        """Remove the user's containers, then the project with its volumes and network."""
        servers = docker("ps", "-aq", "--filter", f"label=gpuhub.user={USER}", check=False)
        for cid in servers.stdout.split():
            docker("rm", "-f", "-v", cid, check=False)
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        docker("volume", "rm", "-f", HOME_VOLUME, check=False)


@pytest.fixture(scope="module")
def deployment(images, tmp_path_factory) -> Iterator[Deployment]:
    """The compose deployment, up and healthy; down with its volumes afterwards, always."""
    d = Deployment(tmp_path_factory.mktemp("compose"))
    d.down()  # what an interrupted earlier run may have left
    try:
        start = time.monotonic()
        d.compose("up", "-d", "--no-build", timeout=300)
        wait_healthy(d.container("postgres"), 120)
        wait_healthy(d.container("hub"), 180)
        d.up_seconds = time.monotonic() - start
        print(f"compose up to healthy: {d.up_seconds:.1f} s")
        yield d
    finally:
        d.down()


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Submit the login form as a browser does."""
    page = client.get("/hub/login")
    assert page.status_code == 200, page.text
    m = re.search(r'name="_xsrf"\s+value="([^"]*)"', page.text)
    assert m, page.text[:2000]
    return client.post(
        "/hub/login",
        data={"username": username, "password": password, "_xsrf": html.unescape(m.group(1))},
    )


def api_token(client: httpx.Client, username: str) -> str:
    """A token for ``username`` made with the browser's session, as /hub/token does."""
    r = client.post(
        f"/hub/api/users/{username}/tokens",
        json={"note": "gpuhub compose test", "expires_in": 3600},
        headers={"X-XSRFToken": client.cookies.get("_xsrf", "")},
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_compose_deployment_logs_in_with_postgres(deployment):
    creds = deployment.credentials()
    with http.client(base_url=deployment.url, headers=BROWSER, timeout=30) as browser:
        r = log_in(browser, creds["admin_user"], "not the password")
        assert r.status_code == 403, deployment.explain(r)
        r = log_in(browser, creds["admin_user"], creds["admin_password"])
        assert r.status_code == 302, deployment.explain(r)
        token = api_token(browser, creds["admin_user"])
    r = http.get(f"{deployment.url}/hub/api/user", headers={"Authorization": f"token {token}"})
    assert r.status_code == 200 and r.json()["admin"], deployment.explain(r)
    r = http.get(
        f"{deployment.url}/services/gpuhub/api/v1/pool",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, deployment.explain(r)
    # both databases live in the compose PostgreSQL, not in SQLite files on the volume
    ls = deployment.compose("exec", "-T", "hub", "ls", "/srv/gpuhub/state").stdout.split()
    assert not [f for f in ls if f.endswith(".sqlite")], ls
    tables = deployment.compose(
        "exec", "-T", "postgres", "psql", "-U", "gpuhub", "-d", "jupyterhub", "-Atc",
        "select count(*) from users",
    ).stdout.strip()  # fmt: skip
    assert int(tables) >= 1


def test_compose_deployment_spawns_a_gpu_server_in_a_container(deployment):
    if importlib.util.find_spec("gpuhub.spawners.docker") is None:
        pytest.fail(
            "gpuhub.spawners.docker (the GPU Docker spawner, GPUHUB_SPAWNER=docker) does not "
            "exist yet, so the compose deployment cannot start user containers",
            pytrace=False,
        )
    creds = deployment.credentials()
    with http.client(base_url=deployment.url, headers=BROWSER, timeout=30) as browser:
        r = log_in(browser, USER, creds["user_password"])
        assert r.status_code == 302, deployment.explain(r)
        token = api_token(browser, USER)
    auth = {"Authorization": f"token {token}"}
    with http.client(base_url=deployment.url, headers=auth, timeout=60) as api:
        # "shared" (a time-sliced GPU seat) asks for 2 CPUs: it fits a 2-core CI machine
        r = api.post(f"/hub/api/users/{USER}/server", json={"profile": "shared"})
        assert r.status_code in (201, 202), deployment.explain(r)
        deadline = time.monotonic() + 180
        server = {}
        while time.monotonic() < deadline:
            server = api.get(f"/hub/api/users/{USER}").json()["servers"].get("", {})
            if server.get("ready") or not server:
                break
            time.sleep(1)
        if not server.get("ready"):
            what = "the spawn failed" if not server else f"not ready after 180 s: {server}"
            pytest.fail(f"{what}\n{deployment.logs(200)}")

        # the proxy in the hub container reaches the user's container on the compose network
        r = api.get(f"/user/{USER}/api/status")
        assert r.status_code == 200, deployment.explain(r)

        (cid,) = docker(
            "ps", "-q", "--filter", f"label=gpuhub.user={USER}", check=True
        ).stdout.split()  # fmt: skip
        info = json.loads(docker("inspect", cid).stdout)[0]
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        assert info["Config"]["User"].split(":")[0] == "1000"
        assert PREFIX in info["NetworkSettings"]["Networks"], "on the compose network"
        assert env.get("CUDA_VISIBLE_DEVICES"), "the lease's devices are in the environment"
        assert env.get("GPUHUB_SIMULATED") == "1"
        me = api.get("/services/gpuhub/api/v1/me").json()
        assert [x["id"] for x in me["leases"]] == [int(env["GPUHUB_LEASE_ID"])], me

        r = api.delete(f"/hub/api/users/{USER}/server")
        assert r.status_code in (202, 204), deployment.explain(r)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not api.get(f"/hub/api/users/{USER}").json()["servers"]:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the server did not stop\n{deployment.logs()}")
        assert not docker("ps", "-aq", "--filter", f"label=gpuhub.user={USER}").stdout.split()
        assert api.get("/services/gpuhub/api/v1/me").json()["leases"] == [], "lease released"

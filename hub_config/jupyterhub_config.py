# gpuhub: the one JupyterHub configuration.
#
# Out of the box it is the *embedded default*: everything on this machine, SQLite, a
# simulated GPU pool (every simulated device says so), and JupyterHub's shared-password
# authenticator with passwords generated at first start and printed. Switches are
# environment variables, documented in docs/reference/configuration.md:
#
#   GPUHUB_STATE_DIR        where databases, secrets and credentials live   (./.state)
#   GPUHUB_BIND_URL         public URL to bind                             (http://127.0.0.1:8000)
#   GPUHUB_HUB_PORT, GPUHUB_PROXY_API_PORT, GPUHUB_SERVICE_PORT  internal ports (8081, 8001, 10101)
#   GPUHUB_HUB_BIND_URL, GPUHUB_HUB_CONNECT_URL  where the hub API listens / how user
#                           containers reach it (http://127.0.0.1:8081 / the same)
#   GPUHUB_NOTEBOOK_SERVICE_URL  how user servers reach the gpuhub service
#   GPUHUB_DB_URL           scheduler database (sqlite:///<state>/gpuhub.sqlite; postgresql://...)
#   GPUHUB_HUB_DB_URL       JupyterHub's database (sqlite:///<state>/jupyterhub.sqlite)
#   GPUHUB_INVENTORY        simulated | nvml | files | slurm    (simulated; slurm mode: slurm)
#   GPUHUB_SIMULATED_SPEC   the simulated pool, e.g. "node-1: 8xH100-80GB[nvlink]"
#   GPUHUB_ADMIN            admin user name                                 (admin)
#   GPUHUB_KEEP_SERVERS     1: servers and their leases outlive a hub stop; 0: stopping the
#                           hub stops them and releases their leases (docker, slurm: 1; local: 0)
#   GPUHUB_RECONCILE_INTERVAL, GPUHUB_RECONCILE_GRACE  release leases of servers gone
#                           from the hub: check every N s, leases older than M s (60, 120)
#   GPUHUB_CULL_IDLE_TIMEOUT  stop servers without kernel/terminal/browser activity for
#                           N s (jupyterhub-idle-culler); 0 turns it off            (3600)
#   GPUHUB_GPU_IDLE_TIMEOUT, GPUHUB_GPU_IDLE_WARN  GPU-idle reclaim: stop servers whose
#                           GPUs were idle N s, warning M s before; 0 turns it off (7200, 1800)
#   GPUHUB_COHORT_CREATE_USERS  1: cohorts may create the roster's users the hub lacks
#                           (the gpuhub service's role gets admin:users); 0: they may not (1)
#
# Anything here can be overridden the JupyterHub way: a config file that calls
# load_subconfig() on this one and then sets what it needs.
import json
import os
import secrets
import sys
from pathlib import Path

c = get_config()

env = os.environ.get
IN_SERVICE = env("JUPYTERHUB_SERVICE_NAME") == "gpuhub"  # the gpuhub service reads this file too

state = Path(env("GPUHUB_STATE_DIR", ".state")).resolve()
state.mkdir(parents=True, exist_ok=True, mode=0o700)

bind_url = env("GPUHUB_BIND_URL", "http://127.0.0.1:8000")
hub_port = int(env("GPUHUB_HUB_PORT", "8081"))
proxy_api_port = int(env("GPUHUB_PROXY_API_PORT", "8001"))
service_port = int(env("GPUHUB_SERVICE_PORT", "10101"))
admin = env("GPUHUB_ADMIN", "admin")

# -- JupyterHub ------------------------------------------------------------------------
c.JupyterHub.bind_url = bind_url
c.JupyterHub.hub_bind_url = env("GPUHUB_HUB_BIND_URL", f"http://127.0.0.1:{hub_port}")
if env("GPUHUB_HUB_CONNECT_URL"):  # how user containers reach the hub (compose: http://hub:8081)
    c.JupyterHub.hub_connect_url = env("GPUHUB_HUB_CONNECT_URL")
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
# scripts/setup installs the proxy next to this Python; else it is found on $PATH
_chp = Path(sys.executable).parent / "configurable-http-proxy"
if _chp.exists():
    c.ConfigurableHTTPProxy.command = [str(_chp)]
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = env("GPUHUB_HUB_DB_URL", f"sqlite:///{state / 'jupyterhub.sqlite'}")
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")

# -- Login: a real authenticator with generated passwords ------------------------------
# Switch to OAuth (oauthenticator), LDAP (ldapauthenticator) or LTI (ltiauthenticator)
# by setting c.JupyterHub.authenticator_class; see docs/how-to/authentication.md.
credentials_file = state / "credentials.json"


def _secret(path: Path, make) -> str:
    """Read a secret from the state dir, creating it (mode 0600) on first start."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
    return path.read_text()


credentials = json.loads(
    _secret(
        credentials_file,
        lambda: json.dumps(
            {
                "admin_user": admin,
                "admin_password": secrets.token_urlsafe(32),
                "user_password": secrets.token_urlsafe(12),
            }
        ),
    )
)
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.admin_password = credentials["admin_password"]
c.SharedPasswordAuthenticator.user_password = credentials["user_password"]
c.Authenticator.admin_users = {credentials["admin_user"]}
c.Authenticator.allow_all = True

# -- Single-user servers ---------------------------------------------------------------
#   GPUHUB_SPAWNER          local | docker | slurm: GPU servers as local processes (the
#                           embedded default; no isolation, limits not enforced), Docker
#                           containers, or Slurm jobs on the cluster SLURM_CONF names
#   GPUHUB_SLURM_HOMES      slurm mode: the users' homes on the file system the nodes
#                           share, e.g. /shared/home/{username}   (<state>/homes/{username})
#   GPUHUB_SLURM_LOCAL      slurm mode: 1 when the cluster is scripts/slurm's local one
#                           (fake GPUs, shown as simulated; scripts/run sets it)
#   GPUHUB_DOCKER_NETWORK   docker mode: host (default: the hub's 127.0.0.1 ports are
#                           reachable), bridge, or a user-defined network
#   GPUHUB_POLL_INTERVAL    seconds between checks of a queued GPU request        (2)
#   GPUHUB_WARM_POOL        local mode: warm servers kept ready to claim, for any profile
#                           (1; 0: none). Per profile, day and hour: c.GPULocalProcessSpawner.warm_pool
spawner_mode = env("GPUHUB_SPAWNER", "local")
if spawner_mode == "docker":
    c.JupyterHub.spawner_class = "gpu-docker"
    c.DockerSpawner.network_name = env("GPUHUB_DOCKER_NETWORK", "host")
    # on a user-defined network the hub reaches containers by their address there
    c.DockerSpawner.use_internal_ip = c.DockerSpawner.network_name not in ("host", "bridge")
    c.Spawner.http_timeout = 120  # a cold image takes a while to start JupyterLab
    # batch jobs: containers of the user's image with their home volume (no network)
    c.GpuhubService.job_executor_class = "gpuhub.jobs.docker.DockerExecutor"
elif spawner_mode == "local":
    c.JupyterHub.spawner_class = "gpu-local"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
    # batch jobs: local processes, in the same homes as the servers
    c.GpuhubService.job_executor_class = "gpuhub.jobs.local.LocalProcessExecutor"
    c.LocalProcessExecutor.home_dir_template = str(state / "homes" / "{username}")
    # containers and CI run as root; Jupyter refuses that unless told
    c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
    # servers started ahead of demand, claimed by a spawn (gpuhub.spawners.warm)
    warm_pool = int(env("GPUHUB_WARM_POOL", "1"))
    c.GPULocalProcessSpawner.warm_pool = [{"size": warm_pool}] if warm_pool > 0 else []
elif spawner_mode == "slurm":
    # cluster mode: servers and jobs are Slurm jobs pinned to the node and GPUs gpuhub
    # granted; the pool is the cluster's (scontrol), refreshed while the service runs.
    # SLURM_CONF names the cluster (scripts/run starts a local one when it is unset).
    c.JupyterHub.spawner_class = "gpu-slurm"
    # a server on its node reports the port it bound through the hub's API, with its own
    # token (gpuhub.spawners.slurm_port): no file, no world-readable port
    from gpuhub.spawners.slurm_port import slurm_port_handlers

    c.JupyterHub.extra_handlers = slurm_port_handlers
    c.GpuhubService.job_executor_class = "gpuhub.jobs.slurm.SlurmExecutor"
    # the users' homes: a file system the hub, the service and every node share
    homes = env("GPUHUB_SLURM_HOMES") or str(state / "homes" / "{username}")
    c.GPUSlurmSpawner.home_dir_template = homes
    c.SlurmExecutor.home_dir_template = homes
    # the nodes' Python for jobs (default: this one); a multi-node job needs PyTorch in it
    if env("GPUHUB_SLURM_PYTHON"):
        c.SlurmExecutor.python = env("GPUHUB_SLURM_PYTHON")
    # the local cluster's GPUs are fake device files: every answer says "simulated"
    c.SlurmInventory.simulated = env("GPUHUB_SLURM_LOCAL") == "1"
    c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
else:
    raise ValueError(f"GPUHUB_SPAWNER must be 'local', 'docker' or 'slurm', not {spawner_mode!r}")
# What users choose from: image x GPU shape x limits (x groups), matching the default
# simulated pool. In local mode the image is ignored and limits are not enforced.
# "cpu" has no GPU shape: its servers hold no GPU and use no quota (open to everyone);
# "Run as GPU job" there sends a notebook to the GPU pool. "gpu-1" stays the default; a
# teaching site whose students mostly edit and read can make "cpu" the default instead.
c.GPUSpawnerMixin.profiles = [
    {"name": "gpu-1", "display_name": "1 GPU", "default": True,
     "description": "A whole GPU for training and inference.",
     "image": "gpuhub/pytorch:latest", "shape": {"kind": "gpu", "count": 1},
     "cpu_limit": 8, "mem_limit": "64G", "shm_size": "8G"},
    {"name": "gpu-2", "display_name": "2 NVLinked GPUs",
     "description": "Two whole GPUs, NVLink-connected where the node has it.",
     "image": "gpuhub/pytorch:latest", "shape": {"kind": "gpu", "count": 2},
     "cpu_limit": 16, "mem_limit": "128G", "shm_size": "16G"},
    {"name": "mig-1g.5gb", "display_name": "A MIG 1g.5gb slice",
     "description": "A hardware-isolated seventh of a GPU: enough for teaching and notebooks.",
     "image": "gpuhub/pytorch:latest", "shape": {"kind": "mig", "profile": "1g.5gb"},
     "cpu_limit": 2, "mem_limit": "16G", "shm_size": "2G"},
    {"name": "shared", "display_name": "A shared L4 seat",
     "description": "A time-sliced GPU shared with up to three others.",
     "image": "gpuhub/pytorch:latest", "shape": {"kind": "shared"},
     "cpu_limit": 2, "mem_limit": "16G", "shm_size": "2G"},
    {"name": "cpu", "display_name": "No GPU (CPU only)",
     "description": "For editing code, reading data and teaching. To train on a GPU, "
                    "\"Run as GPU job\" sends a notebook to the GPU pool.",
     "image": "gpuhub/pytorch:latest", "shape": None,
     "cpu_limit": 2, "mem_limit": "8G", "shm_size": "1G"},
]  # fmt: skip
if spawner_mode == "slurm":
    # what a Slurm cluster offers: whole GPUs by GRES type (no MIG slices or shared seats);
    # the names match the local cluster's (scripts/slurm: H100s and L4s)
    c.GPUSpawnerMixin.profiles = [
        {"name": "gpu-1", "display_name": "1 H100", "default": True,
         "description": "A whole H100 on a cluster node, for training and inference.",
         "shape": {"kind": "gpu", "count": 1, "model": "H100"}},
        {"name": "gpu-2", "display_name": "2 H100s",
         "description": "Two whole H100s on one cluster node; its jobs may span two "
                        "nodes (torchrun on each).",
         "shape": {"kind": "gpu", "count": 2, "model": "H100"},
         "max_nodes": 2},
        {"name": "l4", "display_name": "1 L4",
         "description": "A whole L4: enough for notebooks, teaching and inference.",
         "shape": {"kind": "gpu", "count": 1, "model": "L4"}},
        {"name": "cpu", "display_name": "No GPU (CPU only)",
         "description": "For editing code and reading data; \"Run as GPU job\" sends a "
                        "notebook to the GPU pool.",
         "shape": None},
    ]  # fmt: skip
c.GPUSpawnerMixin.lease_poll_interval = float(env("GPUHUB_POLL_INTERVAL", "2"))
# A spawn may wait in the GPU queue: allow an hour before JupyterHub gives up (the queued
# request is then cancelled). The queue position is shown as spawn progress meanwhile.
c.Spawner.start_timeout = 3600
# Docker and Slurm modes (and the compose deployment): stopping or restarting the hub
# leaves servers and their GPU leases running; the restarted hub re-adopts them from the
# spawners' saved state. The embedded default (local processes): stopping the hub (Ctrl-C) stops its
# servers and releases their leases. GPUHUB_KEEP_SERVERS=1 or 0 chooses in either mode.
keep_servers = env("GPUHUB_KEEP_SERVERS", "0" if spawner_mode == "local" else "1") == "1"
c.JupyterHub.cleanup_servers = not keep_servers
if not IN_SERVICE:
    from jupyterhub.app import JupyterHub

    if JupyterHub.initialized():
        # JupyterHub stops its services before its servers: stop the servers (where they
        # stop with the hub) first, so that their lease releases still reach the gpuhub
        # service; and stop the hub's periodic checks, which fail on stopped services
        from gpuhub.spawners.local import fill_warm_pool_at_start, stop_servers_before_services

        stop_servers_before_services(JupyterHub.instance())
        # the warm pool fills once the hub is up, not at the first spawn
        fill_warm_pool_at_start(JupyterHub.instance())
c.Spawner.default_url = "/lab"
# the server's own token reaches the gpuhub service as its user (least privilege:
# JupyterHub's server-role scopes plus access to this one service)
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=gpuhub",
]

# -- The gpuhub service (scheduler + REST API) -----------------------------------------
c.JupyterHub.custom_scopes = {
    "custom:gpuhub:admin": {
        "description": "Administer gpuhub: quotas, everyone's leases, queue and usage.",
    },
}


def _top_config_file() -> str:
    """The file JupyterHub was started with, which may be an override that
    load_subconfig()s this one: the gpuhub service reads the same settings."""
    if IN_SERVICE:  # the service reads this file without JupyterHub: no need to import it
        return __file__
    from jupyterhub.app import JupyterHub

    if JupyterHub.initialized() and JupyterHub.instance().config_file:
        return os.path.abspath(JupyterHub.instance().config_file)
    return __file__


# The service's token: the gpuhub service uses it towards the hub, and the hub's GPU
# spawners use it towards the service (admin scope). It never enters a user container.
gpuhub_token = _secret(state / "gpuhub_service_token", lambda: secrets.token_hex(32))
c.JupyterHub.services = [
    {
        "name": "gpuhub",
        "api_token": gpuhub_token,
        "url": f"http://127.0.0.1:{service_port}",
        # the supervisor starts the service again at once if it dies (JupyterHub would
        # notice only at its 30 s poll; see docs/explanation/architecture.md)
        "command": [
            sys.executable,
            "-m",
            "gpuhub.service.supervisor",
            "--",
            sys.executable,
            "-m",
            "gpuhub.service",
            "--config",
            _top_config_file(),
        ],
        "display": True,
        "oauth_no_confirm": True,  # the hub's own service: no "Authorize access" page
        "oauth_client_allowed_scopes": ["custom:gpuhub:admin"],
        # the service runs jobs on the engine the spawner uses: the same DOCKER_* settings,
        # the same cluster (SLURM_CONF)
        "environment": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("GPUHUB_", "DOCKER_", "SLURM_")) or k in ("PATH", "HOME")
        },
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=gpuhub"]},
    {
        "name": "gpuhub-admin",
        "description": "gpuhub administrators",
        "scopes": ["custom:gpuhub:admin", "access:services!service=gpuhub"],
        "users": [credentials["admin_user"]],
    },
    {
        "name": "gpuhub-service",
        "description": "the gpuhub service reads users' groups and servers, and sets up "
        "cohorts (creates groups and users, changes members); the hub's spawners use its "
        "token to ask it for leases on users' behalf",
        "scopes": [
            "read:users",
            "list:users",
            "read:groups",
            "list:groups",
            # cohorts and `quota set --create` (docs/how-to/cohorts.md): create groups and
            # change their members; create the users of a roster the hub lacks (unless
            # GPUHUB_COHORT_CREATE_USERS=0: admin:users is a broad scope)
            "admin:groups",
            *(["admin:users"] if env("GPUHUB_COHORT_CREATE_USERS", "1") != "0" else []),
            "read:servers",
            # GPU-idle reclaim stops the servers of leases it reclaims (gpuhub.service.reclaim)
            "delete:servers",
            "custom:gpuhub:admin",
            "access:services!service=gpuhub",
        ],
        "services": ["gpuhub"],
    },
]

c.GPUSpawnerMixin.gpuhub_url = f"http://127.0.0.1:{service_port}/services/gpuhub/"
c.GPUSpawnerMixin.gpuhub_api_token = gpuhub_token
c.GpuhubService.cookie_secret_file = str(state / "gpuhub_cookie_secret")
c.GpuhubService.reconcile_interval = float(env("GPUHUB_RECONCILE_INTERVAL", "60"))
c.GpuhubService.reconcile_grace = float(env("GPUHUB_RECONCILE_GRACE", "120"))
c.GpuhubService.db_url = env("GPUHUB_DB_URL", f"sqlite:///{state / 'gpuhub.sqlite'}")
c.GpuhubService.inventory_class = env(
    "GPUHUB_INVENTORY", "slurm" if spawner_mode == "slurm" else "simulated"
)
c.SimulatedInventory.spec = env("GPUHUB_SIMULATED_SPEC") or (
    "sim-node-1: 4xH100-80GB[nvlink], 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=4];"
    " sim-node-2: 4xA100-80GB[nvlink]"
)
if env("GPUHUB_NOTEBOOK_SERVICE_URL"):  # how user servers reach the gpuhub service
    c.GPUSpawnerMixin.notebook_service_url = env("GPUHUB_NOTEBOOK_SERVICE_URL")
c.GpuhubService.default_user_quota = {"max_units": 2, "gpu_hours": 40, "period": "week"}
# Credits per GPU-hour by model (docs/how-to/prices.md); a MIG slice or shared seat costs
# its share. Admins change them at run time with `gpuhub rates set MODEL RATE`.
c.GpuhubService.rates = {"H100": 2.0, "A100": 1.5, "L4": 0.5}
# Fair share over time (docs/how-to/quotas.md): the queue is served by priority, then by
# the groups' and users' GPU-hours decayed with this half-life against their shares.
# GPUHUB_FAIR_SHARE_HALF_LIFE_DAYS=0: first come, first served.
_half_life = float(env("GPUHUB_FAIR_SHARE_HALF_LIFE_DAYS", "7"))
c.GpuhubService.fair_share_half_life_days = _half_life or None
# Spot capacity (docs/how-to/spot.md): jobs may run preemptible on idle GPUs at 0.3x the
# rate; guaranteed requests take the GPUs back after a notice and a grace to checkpoint.
c.GpuhubService.spot = {
    "enabled": True,
    "discount": 0.3,
    "grace_s": float(env("GPUHUB_SPOT_GRACE_S", "120")),
    "min_runtime_s": float(env("GPUHUB_SPOT_MIN_RUNTIME_S", "300")),
}

# -- Idle reclaim (docs/how-to/idle-reclaim.md) -----------------------------------------
# GPU-idle reclaim, in the gpuhub service: warn, then stop servers whose GPUs stay idle.
# Per group or profile: c.Reclaimer.group_rules / c.Reclaimer.profile_rules.
c.Reclaimer.default_rule = {
    "idle_s": float(env("GPUHUB_GPU_IDLE_TIMEOUT", "7200")),
    "warn_s": float(env("GPUHUB_GPU_IDLE_WARN", "1800")),
}
# Kernel-activity culling: jupyterhub-idle-culler stops servers whose kernels, terminals
# and browser tabs have been quiet for the timeout (JupyterHub's last_activity).
cull_timeout = int(env("GPUHUB_CULL_IDLE_TIMEOUT", "3600"))
if cull_timeout > 0:
    c.JupyterHub.services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={cull_timeout}", f"--cull-every={max(10, min(300, cull_timeout // 2))}",
            ],
        }
    )  # fmt: skip
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "description": "jupyterhub-idle-culler: find idle servers and stop them",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )

# -- Tell the person at the terminal how to log in ------------------------------------
if not IN_SERVICE and not env("GPUHUB_QUIET"):
    public = bind_url.rstrip("/") + "/hub/login"
    simulated_note = (
        "\n  The GPU pool is simulated."
        if env("GPUHUB_INVENTORY", "simulated") == "simulated" and spawner_mode != "slurm"
        else ""
    )
    stop_note = (
        "Ctrl-C stops the hub; users' servers keep running with their GPU leases."
        if keep_servers
        else "Ctrl-C stops the hub and users' servers, and releases their GPU leases."
    )
    print(
        f"""
  gpuhub is starting on {public}
    admin:  user '{credentials["admin_user"]}', password {credentials["admin_password"]}
    users:  any user name, password {credentials["user_password"]}
  (credentials are kept in {credentials_file}){simulated_note}
  {stop_note}
""",
        file=sys.stderr,
        flush=True,
    )

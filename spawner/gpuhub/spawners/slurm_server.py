"""A notebook server as a Slurm batch job: :class:`SlurmSpawner` (no GPU knowledge).

:class:`~gpuhub.spawners.slurm.GPUSlurmSpawner` puts gpuhub's profiles and leases on top
(the placement hook :meth:`SlurmSpawner.slurm_placement`). What ``sbatch`` gets and what
the batch script says are plain functions of :mod:`.slurm_batch`; how the port comes
back is :mod:`.slurm_node` (on the node) and :mod:`.slurm_port` (in the hub).

* **Environment.** ``sbatch --export=ALL`` from a clean environment (``env -i`` with
  ``PATH`` and ``SLURM_CONF`` only): nothing of the hub's own environment reaches the job,
  and no node starts a login shell for it. The server's environment (``get_env()``: its
  JupyterHub token, the lease's ``GPUHUB_*`` variables) is written to a file of mode 0600 (from its creation on) in the
  user's log folder, which the batch script reads and deletes before it becomes the
  server. The token is never on a command line, in the batch script (Slurm keeps a copy
  that ``scontrol write batch_script`` shows) or in Slurm's record of the job's
  environment. The file is on the file system the hub and the nodes share (the homes).
* **Port.** The server picks a free port on its node and reports it with its own token
  (:mod:`.slurm_node`, to :mod:`.slurm_port`'s handler); ``start()`` waits for that report while it follows the job in
  Slurm (its pending reason as spawn progress; a job that ends fails the spawn with its
  reason and the end of its output). The address is the node's ``NodeAddr`` from Slurm.
* **Polling.** A Slurm command that fails is not a server that ended: ``poll()`` counts
  the server as running, and logs, until errors go on for :attr:`~SlurmSpawner.poll_error_limit_s`.
  A job Slurm says ended (or no longer knows) is a stopped server, with the reason logged
  (for a job whose node failed: the node, and Slurm's reason for it). Server jobs are
  submitted ``--no-requeue``: Slurm never starts one again behind the hub's back.
* **State** ``{"slurm_job": "ID", "slurm_node": "NODE"}``, so a restarted hub
  (``cleanup_servers = False``) re-adopts running servers; a start first cancels any job
  still running under the server's job name, so a server never has two.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Float, Integer, Unicode, default

from ..inventory.slurm import SlurmError, parse_records
from ..inventory.slurm_submit import (
    NODE_FAIL,
    SlurmSubmission,
    already_ended,
    clean_submit,
    controller_unreachable,
    file_tail,
    give_to,
    host_account,
    is_unknown_job,
    node_failure,
    owner_options,
    submitted_job,
)
from ..names import home_from_template
from .errors import GPUSpawnError
from .slurm_batch import (
    BatchRequest,
    JobStatus,
    batch_script,
    ended_why,
    env_file_text,
    file_stem,
    job_environment,
    job_name,
    job_status,
    minutes_of,
    sbatch_argv,
    status_message,
)
from .slurm_port import PortRefused, SlurmPortHandler


class SlurmSpawner(SlurmSubmission, Spawner):
    """``jupyterhub-singleuser`` as a Slurm batch job (see the module's documentation).

    The ``sbatch`` settings (partition, account, ``sbatch_args``, ``comment_prefix``,
    ``unix_user``, ``submit_as_user``) are the Slurm executor's too
    (:class:`~gpuhub.inventory.slurm_submit.SlurmSubmission`). The Slurm commands run
    through :attr:`runner` (``slurm_conf``, ``command_timeout``);
    the hub needs ``c.JupyterHub.extra_handlers = slurm_port_handlers`` (from
    :mod:`gpuhub.spawners.slurm_port`) for servers to report their port.
    """

    home_dir_template = Unicode(
        "~{username}",
        config=True,
        help="""A user's home as the hub and the nodes both see it (a shared file system);
        ``{username}`` is the Unix account (:attr:`unix_user`), e.g. ``"/shared/home/{username}"``.
        The server starts there.""",
    )
    log_dir = Unicode(
        ".gpuhub/servers",
        config=True,
        help="""The folder, relative to the home, of each server's batch script, its
        environment file (mode 0600, deleted once the job has read it) and Slurm's output
        (``jupyter.log``, ``jupyter.NAME.log`` for a named server).""",
    )
    python = Unicode(
        config=True,
        help="""The nodes' Python with gpuhub and jupyterhub installed; its ``bin`` comes
        first on the server's ``PATH`` (so ``jupyterhub-singleuser`` is that one's), e.g.
        ``/opt/gpuhub/bin/python``. Default: the hub's own (``sys.executable``).""",
    )
    max_runtime_s = Integer(
        None,
        allow_none=True,
        min=60,
        config=True,
        help="""The longest a server may run, as Slurm's ``--time`` (rounded up to
        minutes), e.g. ``86400`` (a day); Slurm then ends it (the log says "reached its
        Slurm time limit"). None: no ``--time`` (the partition's default time).""",
    )
    job_name_prefix = Unicode(
        "jupyter-",
        config=True,
        help="""The start of the servers' Slurm job names (``jupyter-alice``,
        ``jupyter-alice.NAME``); a start cancels a job of its server's name still running.
        Give each hub sharing one cluster its own.""",
    )
    status_interval = Float(
        2.0,
        min=0.05,
        config=True,
        help="Seconds between looks at the job in Slurm while a server starts or stops.",
    )
    controller_wait_s = Float(
        120.0,
        min=0.0,
        config=True,
        help="""Seconds a start tries again while Slurm's controller does not answer (it
        is restarting) before submitting; the spawn page says so meanwhile. 0: fail at once.""",
    )
    poll_error_limit_s = Float(
        300.0,
        min=0.0,
        config=True,
        help="""Seconds ``poll()`` counts a server as running while Slurm does not answer
        about its job (a busy or restarting controller is not a server that ended); past
        that, the server counts as stopped and its job is cancelled if Slurm lets it.""",
    )
    stop_timeout_s = Float(
        60.0,
        min=0.0,
        config=True,
        help="Seconds ``stop()`` waits for Slurm to say the cancelled job has ended.",
    )

    #: the server's Slurm job and its node (in the saved state)
    slurm_job: str | None = None
    slurm_node: str | None = None
    #: the injectable clock of poll's error bound
    clock: Callable[[], float] = staticmethod(time.monotonic)

    _port_wanted: asyncio.Future | None = None
    _waiting_job: str | None = None
    _early_report: tuple[str, int] | None = None  # a report that came before sbatch answered
    _errors_since: float | None = None

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"  # the hub reaches the server on its node's address

    # -- where things are -------------------------------------------------------------

    @property
    def unix_account(self) -> str:
        """The user's Unix account on the cluster."""
        return str(self.unix_user(self.user.name))

    def owner(self) -> pwd.struct_passwd:
        """The user's Unix account on this host (:attr:`unix_account`), which the server
        runs as with :attr:`submit_as_user`; a ``ValueError`` naming it when there is none."""
        return host_account(self.unix_account, self.user.name, type(self).__name__)

    @property
    def home(self) -> Path:
        """The user's home (absolute), as the hub and the nodes see it."""
        return home_from_template(
            self.home_dir_template, self.user.name, self.unix_account, type(self).__name__
        )

    def server_file(self, suffix: str) -> Path:
        """The server's file with ``suffix`` (``.sh``, ``.env``, ``.log``) in the log folder."""
        return self.home / self.log_dir / f"{file_stem(self.name)}{suffix}"

    # -- what is submitted --------------------------------------------------------------

    def slurm_placement(self) -> dict[str, Any]:
        """Hook: ``node``, ``gres``, ``cpus``, ``mem_mb`` and the ``comment`` of the job
        (the GPU spawner's come from the lease and the profile). Default: Slurm decides."""
        return {"comment": f"{self.comment_prefix}server"}

    def batch_request(self) -> BatchRequest:
        """What ``sbatch`` is told about this server's job."""
        return BatchRequest(
            name=job_name(self.job_name_prefix, self.user.name, self.name),
            script=str(self.server_file(".sh")),
            output=str(self.server_file(".log")),
            chdir=str(self.home),
            minutes=minutes_of(self.max_runtime_s),
            partition=self.partition,
            account=self.account,
            owner=tuple(owner_options(self.owner())) if self.submit_as_user else (),
            extra=tuple(self.sbatch_args),
            **self.slurm_placement(),
        )

    def get_env(self) -> dict[str, str]:
        """The spawner's environment with the nodes' Python ``bin`` first on ``PATH`` and
        ``HOME`` set (the job starts with nothing else but ``PATH``, ``SLURM_CONF`` and Slurm's own)."""
        env = super().get_env()
        bin_dir = os.path.dirname(self.python)
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != bin_dir]
        env["PATH"] = os.pathsep.join([bin_dir, *path])
        env["HOME"] = str(self.home)
        return env

    def server_command(self) -> list[str]:
        """The job's command: report the port (:mod:`.slurm_node`), then the server."""
        return [self.python, "-m", "gpuhub.spawners.slurm_node", "--",
                *self.cmd, *self.get_args()]  # fmt: skip

    def spawn_progress(self, message: str, percent: int) -> None:
        """Hook: tell the spawn page ``message`` (the GPU spawner shows it; here: logged)."""
        self.log.info("%s: %s", self._log_name, message)

    # -- Slurm ---------------------------------------------------------------------------

    async def slurm(self, *argv: str) -> str:
        """Run a Slurm command through :attr:`runner` in a thread; its output."""
        return await asyncio.to_thread(self.runner, list(argv))

    async def job_status(self, job: str) -> JobStatus | None:
        """The job as Slurm sees it; None when Slurm no longer knows it. Raises
        :class:`SlurmError` when Slurm does not answer."""
        try:
            text = await self.slurm("scontrol", "show", "job", "-d", "-o", job)
        except SlurmError as e:
            if is_unknown_job(e):
                return None
            raise
        return job_status(text, job)

    async def node_address(self, node: str) -> str:
        """The node's ``NodeAddr``: where the hub reaches servers on it."""
        text = await self.slurm("scontrol", "show", "node", "-o", node)
        for pairs in parse_records(text, "node"):
            rec = dict(pairs)
            if rec.get("NodeName") == node:
                return rec.get("NodeAddr") or node
        raise SlurmError(f"scontrol show node {node} did not describe node {node}")

    async def scancel(self, job: str) -> None:
        """Cancel the job; fine when it has ended."""
        try:
            await self.slurm("scancel", job)
        except SlurmError as e:
            if not already_ended(e):
                raise

    async def wait_ended(self, job: str, timeout: float) -> JobStatus | None:
        """Wait up to ``timeout`` seconds for the job to end; its last status (None: Slurm
        forgot it). Raises TimeoutError when it has not ended by then."""
        deadline = self.clock() + timeout
        while True:
            try:
                status = await self.job_status(job)
                if status is None or status.ended:
                    return status
            except SlurmError as e:
                self.log.warning("%s: checking Slurm job %s: %s", self._log_name, job, e)
            if self.clock() >= deadline:
                raise TimeoutError(f"Slurm job {job} has not ended within {timeout:g} s")
            await asyncio.sleep(self.status_interval)

    async def cancel_earlier_jobs(self, name: str) -> None:
        """Cancel jobs of this server's name that Slurm still has (a hub that stopped
        after submitting, before it saved the job): a server never has two jobs."""
        out = await self.slurm("squeue", "-h", f"--name={name}", "-o", "%i")
        for job in out.split():
            self.log.warning(
                "%s: Slurm job %s of an earlier start still exists; cancelling it",
                self._log_name, job,
            )  # fmt: skip
            await self.scancel(job)

    # -- files ---------------------------------------------------------------------------

    def write_files(self, request: BatchRequest, env: dict[str, str]) -> None:
        """The log folder, the environment file (0600) and the batch script; owned by the
        user's account when submitting as it."""
        folder = self.server_file("").parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        env_file = self.server_file(".env")
        title = f"Jupyter server {self.name or '(default)'} of {self.user.name}"
        script = batch_script(title=title, env_file=str(env_file), command=self.server_command())
        _write_private(env_file, env_file_text(env), 0o600)
        _write_private(Path(request.script), script, 0o700)
        if self.submit_as_user:
            give_to(self.owner(), (folder, env_file, Path(request.script)))

    def remove_env_file(self) -> None:
        """Delete the environment file if the job never read it (it holds the token)."""
        try:
            self.server_file(".env").unlink(missing_ok=True)
        except (OSError, ValueError) as e:
            self.log.warning("%s: cannot remove its environment file: %s", self._log_name, e)

    def output_tail(self, limit: int = 400) -> str:
        """The end of Slurm's output file: why a server failed to start."""
        try:
            return file_tail(self.server_file(".log"), limit)
        except ValueError:  # no home (home_dir_template)
            return ""

    # -- the port report ---------------------------------------------------------------

    def port_reported(self, port: int, slurm_job: str) -> None:
        """The server's report (:class:`~gpuhub.spawners.slurm_port.SlurmPortHandler`):
        taken only while ``start()`` waits for the job that sent it."""
        fut = self._port_wanted
        if fut is None or fut.done():
            raise PortRefused(f"{self._log_name} is not waiting for a port")
        if self._waiting_job is None:  # sbatch has not answered yet: checked once it has
            self._early_report = (slurm_job, port)
            return
        if slurm_job != self._waiting_job:
            raise PortRefused(
                f"{self._log_name} waits for Slurm job {self._waiting_job}, not {slurm_job}"
            )
        fut.set_result(port)

    # -- the spawner interface -------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Submit the job, follow it in Slurm until the server reports its port; the
        node's address and that port. A start that fails cancels its job."""
        check_port_handler()
        request = self.batch_request()
        env = job_environment(self.get_env(), slurm_sets_devices=bool(request.gres))
        self._port_wanted = asyncio.get_running_loop().create_future()
        self._early_report = None
        argv = clean_submit(sbatch_argv(request), self.slurm_conf)

        async def submit() -> str:  # a server never has two jobs, whatever went before
            await self.cancel_earlier_jobs(request.name)
            return await self.slurm(*argv)

        try:
            self.write_files(request, env)
            job = submitted_job(await self._while_controller_away(submit))
        except BaseException:
            self.remove_env_file()
            raise
        self.slurm_job, self.slurm_node, self._waiting_job = job, request.node, job
        early, self._early_report = self._early_report, None
        if early is not None and early[0] == job:
            self._port_wanted.set_result(early[1])
        self.log.info(
            "%s: Slurm job %s submitted (node=%s gres=%s comment=%s)",
            self._log_name, job, request.node or "any", request.gres, request.comment,
        )  # fmt: skip
        self.spawn_progress(f"Submitted Slurm job {job}", 75)
        try:
            port = await self._wait_for_port(job)
            status, ip = await self._running(job)
            await self.check_devices(status)
        except BaseException:
            self.log.warning("%s: start did not finish; cancelling Slurm job %s",
                             self._log_name, job)  # fmt: skip
            await asyncio.shield(self._forget_job(job))
            raise
        finally:
            self._port_wanted, self._waiting_job = None, None
        self.slurm_node, self.port = status.node, port
        self.spawn_progress(f"The server listens on {status.node} ({ip}:{port})", 90)
        self.log.info("%s: Slurm job %s serves on %s (%s:%s)",
                      self._log_name, job, status.node, ip, port)  # fmt: skip
        return ip, port

    async def _while_controller_away(self, step: Callable[[], Any]) -> Any:
        """``await step()``, tried again every 2 s for :attr:`controller_wait_s` while
        Slurm's controller does not answer. A submit that timed out may have reached it:
        the step cancels the jobs of this server's name before it submits."""
        deadline = time.monotonic() + self.controller_wait_s
        while True:
            try:
                return await step()
            except SlurmError as e:
                if not controller_unreachable(e) or time.monotonic() >= deadline:
                    raise
                self.log.warning("%s: Slurm's controller does not answer; trying again: %s",
                                 self._log_name, e)  # fmt: skip
                self.spawn_progress("Slurm's controller does not answer; trying again", 60)
                await asyncio.sleep(2)

    async def _wait_for_port(self, job: str) -> int:
        """The reported port; meanwhile Slurm's view of the job as progress. A job that
        ends first fails the spawn with why, and the end of its output."""
        assert self._port_wanted is not None
        last = None
        while True:
            done, _ = await asyncio.wait({self._port_wanted}, timeout=self.status_interval)
            if done:
                return self._port_wanted.result()
            try:
                status = await self.job_status(job)
            except SlurmError as e:
                self.log.warning("%s: Slurm did not answer about job %s: %s",
                                 self._log_name, job, e)  # fmt: skip
                continue
            if status is None or status.ended:
                tail = self.output_tail()
                raise GPUSpawnError(
                    500,
                    f"Slurm job {job} {ended_why(status)} before the server reported its port"
                    + (f"; its output ends: {tail}" if tail else ""),
                )
            message = status_message(status)
            if message != last:
                self.spawn_progress(message, 80)
                last = message

    async def _running(self, job: str) -> tuple[JobStatus, str]:
        """The job's status once Slurm says where it runs, and that node's address; a
        Slurm error (a restarting controller) is retried, bounded by the hub's start_timeout."""
        while True:
            try:
                status = await self.job_status(job)
                if status is not None and status.node:
                    return status, await self.node_address(status.node)
            except SlurmError as e:
                self.log.warning("%s: %s", self._log_name, e)
            await asyncio.sleep(self.status_interval)

    async def _forget_job(self, job: str) -> None:
        try:
            await self.scancel(job)
        except SlurmError as e:
            self.log.error("%s: cannot cancel Slurm job %s: %s", self._log_name, job, e)
        self.remove_env_file()
        self.slurm_job = self.slurm_node = None

    async def check_devices(self, status: JobStatus) -> None:
        """Hook, once the job runs: the devices Slurm gave the job, against what gpuhub
        granted."""

    async def poll(self) -> int | None:
        """None while Slurm has the job (or does not answer, up to
        :attr:`poll_error_limit_s`); else an exit status, the reason logged."""
        job = self.slurm_job
        if not job:
            return 0
        try:
            status = await self.job_status(job)
        except SlurmError as e:
            return await self._poll_failed(job, e)
        self._errors_since = None
        if status is not None and not status.ended:
            return None
        why = ended_why(status)
        if status is not None and status.state == NODE_FAIL:  # which node, and why it failed
            node = status.node or self.slurm_node
            why = f"ended because {await asyncio.to_thread(node_failure, self.runner, node)}"
        self.log.warning("%s stopped: Slurm job %s %s", self._log_name, job, why)
        self.slurm_job = self.slurm_node = None
        return status.exit_code if status and status.exit_code is not None else 1

    async def _poll_failed(self, job: str, error: SlurmError) -> int | None:
        now = self.clock()
        if self._errors_since is None:
            self._errors_since = now
        failing = now - self._errors_since
        if failing < self.poll_error_limit_s:
            self.log.warning(
                "%s: Slurm did not answer about job %s (%s); counting the server as running "
                "(for up to %.0f s more)",
                self._log_name, job, error, self.poll_error_limit_s - failing,
            )  # fmt: skip
            return None
        self.log.error(
            "%s: Slurm has not answered about job %s for %.0f s (%s); counting the server "
            "as stopped and cancelling the job", self._log_name, job, failing, error,
        )  # fmt: skip
        self._errors_since = None
        await self._forget_job(job)
        return 1

    async def stop(self, now: bool = False) -> None:
        """``scancel`` the job and wait (up to :attr:`stop_timeout_s`) until Slurm says it
        has ended."""
        job = self.slurm_job
        if not job:
            return
        self.log.info("%s: cancelling Slurm job %s", self._log_name, job)
        try:
            await self.scancel(job)
            await self.wait_ended(job, self.stop_timeout_s)
        except TimeoutError as e:
            self.log.warning("%s: %s after scancel", self._log_name, e)
        finally:
            self.remove_env_file()
        self.slurm_job = self.slurm_node = None

    def get_state(self) -> dict[str, Any]:
        """The parent's state plus ``slurm_job`` and ``slurm_node`` while there is a job."""
        state = super().get_state()
        if self.slurm_job:
            state["slurm_job"] = self.slurm_job
            state["slurm_node"] = self.slurm_node
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Adopt the job of a server started by an earlier hub process."""
        super().load_state(state)
        job, node = state.get("slurm_job"), state.get("slurm_node")
        if isinstance(job, str) and job.isdigit():
            self.slurm_job = job
            self.slurm_node = node if isinstance(node, str) else None
        elif job is not None:
            self.log.warning("%s: unreadable slurm_job %r in its state", self._log_name, job)

    def clear_state(self) -> None:
        """Forget the job."""
        super().clear_state()
        self.slurm_job = self.slurm_node = None


def check_port_handler() -> None:
    """Refuse to start when this hub does not take port reports (a server would start,
    report, be refused and end): the configuration lacks ``slurm_port_handlers``."""
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():  # not inside a hub (tests, tools)
        return
    handlers = JupyterHub.instance().extra_handlers
    if not any(isinstance(h[1], type) and issubclass(h[1], SlurmPortHandler) for h in handlers):
        raise GPUSpawnError(
            500,
            "the hub is not set up for servers on Slurm: an admin must add "
            "c.JupyterHub.extra_handlers = slurm_port_handlers "
            "(from gpuhub.spawners.slurm_port)",
        )


def _write_private(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically; the file has ``mode`` from its creation on
    (never the umask's, even for a moment: the environment file holds a token)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)

"""The Docker executor: each job is a container of the user's image on the user's home.

The default in Docker mode. A job's container ``<prefix>-<id>`` runs the image recorded
by digest at submit, with the home volume ``gpuhub-home-<user>`` at ``home_dir``, and is
built (:func:`gpuhub.containers.job.build_job_spec`) from the same parts as users'
servers, so it keeps their invariants: a non-root user, every capability dropped,
no-new-privileges, an init process, no engine socket, the profile's CPU, memory and shm
limits, GPUs only through ``device_requests`` from the lease (none for simulated
devices). It has no network by default.

Jobs run on the same Docker engine as users' servers, reached with the same settings:
the :class:`gpuhub.containers.engine.Engine` of DockerSpawner's ``tls_config``,
``client_kwargs`` and ``DOCKER_*`` environment, as configured for the hub.

``before_start`` creates the container (or finds the one already made for this job) and
puts the snapshot and ``job.json`` into the volume with ``put_archive``, owned by the
container's user; ``start`` starts it once; the state is ``{"container": id}``. What the
job leaves stays in the volume: ``poll`` and ``read_log`` read it with ``get_archive``,
through a short-lived container when the job's own has been removed. A preemption notice
is put into the job's folder the same way, then SIGUSR1 sent to the container (its init
passes it to the runner). A later attempt of the job gets a new container (the earlier
one is removed by ``cleanup``; its lease label tells them apart).
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from traitlets import Dict, Float, Instance, Unicode, default

from ..containers.engine import DEFAULT_TIMEOUT, Engine, EngineSettings
from ..containers.job import build_job_spec
from ..containers.spec import (
    DEFAULT_CONTAINER_USER,
    DEFAULT_HOME,
    LABEL_JOB,
    LABEL_LEASE,
    LABEL_USER,
    Limits,
    home_binds,
    home_volume_name,
)
from .executor import (
    ARTIFACTS,
    EXIT_FILE,
    JOB_FILE,
    LOG_FILE,
    PREEMPT_FILE,
    JobExecutor,
    JobExit,
    JobSpec,
    notice_text,
)
from .runner import exit_from_status, job_document, job_environment

#: Logs of ended jobs kept in memory until cleanup (the manager reads one in pages).
ENDED_LOGS_KEPT = 8


class DockerExecutor(JobExecutor):
    """Runs each job in a hardened container of its image, on the user's home volume."""

    name = "docker"

    container_user = Unicode(
        DEFAULT_CONTAINER_USER,
        config=True,
        help="""uid:gid the job runs as (never root); its files in the home volume belong
        to it. Jupyter docker stacks' jovyan is ``1000:100``.""",
    )
    home_dir = Unicode(
        DEFAULT_HOME,
        config=True,
        help="""Where the user's home volume is mounted in the job's container; the same as
        ``GPUDockerSpawner.home_dir``, e.g. ``/home/jovyan``.""",
    )
    network_mode = Unicode(
        "none",
        config=True,
        help="""The job container's network: ``none`` (no network at all, the default),
        ``bridge``, ``host`` or a user-defined network, e.g. ``"bridge"`` for jobs that
        download data sets.""",
    )
    prefix = Unicode(
        "gpuhub-job",
        config=True,
        help="""Job containers are named ``<prefix>-<job id>``, e.g. ``gpuhub-job-12``; give
        each deployment sharing a Docker engine a prefix of its own.""",
    )
    extra_labels = Dict(
        {},
        config=True,
        help="""Labels added to every job container, e.g. ``{"team": "ml"}``; gpuhub's own
        (``gpuhub.job``, ``gpuhub.user``, ``gpuhub.lease``) cannot be replaced.""",
    )
    docker_timeout = Float(
        DEFAULT_TIMEOUT,
        config=True,
        help="""Seconds a call to the Docker engine may take, e.g. ``300`` for a slow engine;
        ``stop`` waits the job's grace period on top. Where the hub's spawners run in the
        same process, they share the engine only while this is the default.""",
    )
    engine = Instance(
        Engine,
        help="""The Docker engine jobs run on. By default this process's engine for the GPU
        spawner's settings in the configuration (``c.DockerSpawner.tls_config``,
        ``client_kwargs``, the ``DOCKER_*`` environment): servers and jobs share one engine.""",
    )

    @default("engine")
    def _default_engine(self) -> Engine:
        return Engine.instance(EngineSettings.from_config(self.config, timeout=self.docker_timeout))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # logs of ended containers, read once (a log no longer changes): container -> bytes
        self._ended_logs: dict[str, bytes] = {}

    # -- the engine ------------------------------------------------------------------------

    @property
    def client(self) -> docker.APIClient:
        """The engine's Docker API client (shared by the worker threads the hooks run in)."""
        return self.engine.client

    def container_name(self, job: JobSpec) -> str:
        """``<prefix>-<id>``."""
        return f"{self.prefix}-{job.id}"

    def job_folder(self, job: JobSpec) -> str:
        """The job's folder as the job sees it (absolute)."""
        return posixpath.join(self.home_dir, job.folder)

    def owner(self) -> tuple[int, int]:
        """uid and gid of :attr:`container_user` (numeric ids; 1000:100 for names)."""
        uid, _, gid = self.container_user.partition(":")
        return (
            int(uid) if uid.isdigit() else 1000,
            int(gid) if gid.isdigit() else 100,
        )

    # -- hooks -------------------------------------------------------------------------------

    def resolve_image(self, image: str | None) -> str | None:
        """The image's id on this engine (``sha256:...``)."""
        if not image:
            raise ValueError("a Docker job needs an image, and its profile names none")
        try:
            return self.client.inspect_image(image)["Id"]
        except ImageNotFound:
            raise ValueError(f"image {image} is not on this Docker engine") from None

    def container_spec(self, job: JobSpec) -> dict[str, Any]:
        """The ``create_container`` arguments of ``job``'s container."""
        image = job.image_digest or job.image
        if not image:
            raise ValueError(f"job {job.id} names no image")
        env = job_environment(job.env)
        env.update(
            {
                "GPUHUB_JOB_ID": str(job.id),
                "GPUHUB_OUTPUT_DIR": posixpath.join(self.job_folder(job), ARTIFACTS),
                "GPUHUB_PREEMPT_FILE": posixpath.join(self.job_folder(job), PREEMPT_FILE),
                "HOME": self.home_dir,
            }
        )
        return build_job_spec(
            job_id=job.id,
            image=image,
            lease=job.lease,
            user=job.user,
            name=self.container_name(job),
            env=env,
            command=["python", "-m", "gpuhub.jobs.runner", self.job_folder(job)],
            home_dir=self.home_dir,
            container_user=self.container_user,
            network=self.network_mode,
            limits=Limits(job.cpu_limit, job.mem_limit, job.shm_size),
            host_cpus=self.engine.host_cpus(),
            extra_labels=self.extra_labels,
        )

    def before_start(self, job: JobSpec) -> None:
        """Create the job's container (once) and put its folder into the home volume."""
        container = self._existing(job)
        if container is None:
            spec = self.container_spec(job)
            host_config = self.client.create_host_config(**spec.pop("host_config"))
            self.log.info(
                "job %s of %s: creating container %s image=%s lease=%s devices=%s",
                job.id, job.user, spec["name"], spec["image"], spec["labels"].get(LABEL_LEASE),
                spec["environment"].get("CUDA_VISIBLE_DEVICES", ""),
            )  # fmt: skip
            container = self.client.create_container(host_config=host_config, **spec)["Id"]
        if self._status(container)["Status"] == "created":  # not started: (re)write its inputs
            self.client.put_archive(container, self.home_dir, self._folder_tar(job))

    def start(self, job: JobSpec) -> dict[str, Any]:
        """Start the job's container, unless it has started already (a repeated start)."""
        container = self._existing(job)
        if container is None:
            self.before_start(job)
            container = self._existing(job)
            assert container is not None
        if self._status(container)["Status"] == "created":
            self.client.start(container)
            self.log.info("job %s of %s: started container %s", job.id, job.user, container[:12])
        return {"container": container}

    def poll(self, job: JobSpec, state: dict[str, Any]) -> JobExit | None:
        """None while the container runs; then its ``exit_status.json``."""
        container = self._ref(job, state)
        path = posixpath.join(self.job_folder(job), EXIT_FILE)
        try:
            status = self._status(container)
        except NotFound:  # removed already: what the job left is still in the volume
            with self._reader(job) as reader:
                text = self._read_file(reader, path)
            if text is None:
                return JobExit(None, "lost", f"the job's container {container[:12]} is gone "
                               "and the job left no exit status", time.time())  # fmt: skip
            return exit_from_status(text)
        if status["Status"] in ("created", "running", "restarting", "paused", "removing"):
            return None
        text = self._read_file(container, path)
        end = exit_from_status(text)
        code = status.get("ExitCode")
        if status.get("OOMKilled") and end.outcome != "succeeded":
            error = "the job ran out of memory (the profile's mem_limit)"
            code = end.exit_code if text else code
            return JobExit(code, "failed", error, end.ended_at, out_of_memory=True)
        if text is None:
            error = f"the job's container exited with code {code} without an exit status"
            return JobExit(code, "lost", error, _docker_time(status.get("FinishedAt")))
        return end

    def notify(self, job: JobSpec, state: dict[str, Any], notice: dict[str, Any]) -> None:
        """Put the notice into the job's folder (``preempt.json``), then SIGUSR1 to the
        container; a container no longer running gets neither."""
        container = self._ref(job, state)
        try:
            if self._status(container)["Status"] != "running":
                return
            files = {PREEMPT_FILE: notice_text(notice)}
            self.client.put_archive(container, self.job_folder(job), self._tar(files, dirs=()))
            self.client.kill(container, signal="SIGUSR1")
        except NotFound:
            return

    def stop(self, job: JobSpec, state: dict[str, Any], grace: float) -> None:
        """``docker stop`` with ``grace`` seconds between SIGTERM and SIGKILL."""
        container = self._ref(job, state)
        try:
            if self._status(container)["Status"] not in ("running", "restarting", "paused"):
                return
            self.log.info("job %s of %s: stopping container %s", job.id, job.user, container[:12])
            self.client.stop(container, timeout=max(0, round(grace)))
        except NotFound:
            return
        path = posixpath.join(self.job_folder(job), EXIT_FILE)
        if self._read_file(container, path) is None:  # killed before the runner could write
            status = {
                "exit_code": 137,
                "outcome": "terminated",
                "error": f"the job did not stop within {grace:g} s of SIGTERM and was killed",
                "ended_at": time.time(),
            }
            files = {EXIT_FILE: json.dumps(status) + "\n"}
            self.client.put_archive(container, self.job_folder(job), self._tar(files, dirs=()))

    def read_log(self, job: JobSpec, state: dict[str, Any], offset: int, limit: int) -> bytes:
        """Bytes of the job's ``job.log`` from the home volume."""
        container = self._ref(job, state)
        data = self._ended_logs.get(container)
        if data is None:
            path = posixpath.join(self.job_folder(job), LOG_FILE)
            try:
                ended = self._status(container)["Status"] in ("exited", "dead")
                data = self._read_bytes(container, path) or b""
            except NotFound:
                with self._reader(job) as reader:
                    data = self._read_bytes(reader, path) or b""
                ended = False  # read through a throwaway container: not kept
            if ended:
                while len(self._ended_logs) >= ENDED_LOGS_KEPT:
                    self._ended_logs.pop(next(iter(self._ended_logs)), None)
                self._ended_logs[container] = data
        return data[offset : offset + limit]

    def cleanup(self, job: JobSpec, state: dict[str, Any]) -> None:
        """Remove the job's container; its home volume stays."""
        self._ended_logs.pop(self._ref(job, state), None)
        try:
            self.client.remove_container(self._ref(job, state), force=True)
        except NotFound:
            pass

    # -- helpers ---------------------------------------------------------------------------

    def _existing(self, job: JobSpec) -> str | None:
        """The id of the container made for this job, if there is one. A container of the
        same name left by another job (an old database) is removed when it has stopped."""
        name = self.container_name(job)
        try:
            info = self.client.inspect_container(name)
        except NotFound:
            return None
        labels = info["Config"].get("Labels") or {}
        lease = str(job.lease.get("id", "")) if job.lease else labels.get(LABEL_LEASE)
        if (
            labels.get(LABEL_JOB) == str(job.id)
            and labels.get(LABEL_USER) == job.user
            and labels.get(LABEL_LEASE) == lease
        ):
            return info["Id"]
        if info["State"].get("Running"):
            raise RuntimeError(
                f"container {name} runs another job (user {labels.get(LABEL_USER)}, lease "
                f"{labels.get(LABEL_LEASE)}); set DockerExecutor.prefix or remove it"
            )
        self.log.warning("removing container %s, left by another job", name)
        self.client.remove_container(info["Id"], force=True)
        return None

    def _ref(self, job: JobSpec, state: dict[str, Any]) -> str:
        """The job's container: its id from the state, else its name."""
        return str(state.get("container") or self.container_name(job))

    def _status(self, container: str) -> dict[str, Any]:
        return self.client.inspect_container(container)["State"]

    def _folder_tar(self, job: JobSpec) -> bytes:
        files = {
            job.input_name: job.source,
            JOB_FILE: json.dumps(job_document(job, self.home_dir), indent=1) + "\n",
        }
        parts = job.folder.split("/")
        dirs = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return self._tar(
            {f"{job.folder}/{name}": text for name, text in files.items()},
            dirs=[*dirs, f"{job.folder}/{ARTIFACTS}"],
        )

    def _tar(self, files: dict[str, str], dirs: Iterable[str]) -> bytes:
        uid, gid = self.owner()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in dirs:
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o700, uid, gid
                info.mtime = int(time.time())
                tar.addfile(info)
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.uid, info.gid = len(data), 0o600, uid, gid
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def _read_bytes(self, container: str, path: str) -> bytes | None:
        """A file of the container (or its volumes); None if it does not exist. Raises
        ``NotFound`` when the container does not."""
        try:
            stream, _ = self.client.get_archive(container, path)
        except NotFound as e:
            if "No such container" in str(e):
                raise
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                return None
            f = tar.extractfile(member)
            return f.read() if f else None

    def _read_file(self, container: str, path: str) -> str | None:
        data = self._read_bytes(container, path)
        return data.decode(errors="replace") if data is not None else None

    @contextmanager
    def _reader(self, job: JobSpec) -> Iterator[str]:
        """A container that is never started, only to read the job's home volume."""
        host_config = self.client.create_host_config(
            binds=home_binds(home_volume_name(job.user), self.home_dir, mode="ro"),
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        images = [i for i in (job.image_digest, job.image) if i]
        for i, image in enumerate(images):
            try:
                created = self.client.create_container(
                    image, command=["true"], user=self.container_user, host_config=host_config,
                    labels={LABEL_USER: job.user, LABEL_JOB: str(job.id)},
                )  # fmt: skip
                break
            except ImageNotFound:  # the recorded image was removed since: try its name
                if i == len(images) - 1:
                    raise
        else:
            raise ValueError(f"job {job.id} names no image to read its folder with")
        try:
            yield created["Id"]
        finally:
            try:
                self.client.remove_container(created["Id"], force=True)
            except APIError as e:
                self.log.warning("could not remove reader container %s: %s", created["Id"], e)


def _docker_time(value: str | None) -> float | None:
    """POSIX seconds of a Docker timestamp (``2026-12-01T10:00:00.123456789Z``)."""
    if not value or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None

"""The GPU half of gpuhub's spawners, shared by the Docker and the local-process spawner.

:class:`GPUSpawnerMixin` goes first in a spawner's bases, before a JupyterHub spawner:

* ``user_options`` are validated against the configured profiles in JupyterHub's
  ``apply_user_options`` step (before ``pre_spawn_hook`` and ``start()``), so the form and
  the REST API both get HTTP 400 with a sentence, and nothing is started or leased;
  ``start()`` checks them again in case a deployment replaced that hook.
* ``start()`` asks the gpuhub service for a lease as the user; while the request waits in
  the queue, spawn progress shows the position; a refusal ends the spawn with the
  service's sentence (which names the quota). The granted devices reach the server as
  ``CUDA_VISIBLE_DEVICES``/``NVIDIA_VISIBLE_DEVICES`` (and, in containers, Docker
  ``device_requests``). A CPU-only profile (no shape) asks for nothing: no lease, no
  queue, no quota; its server sees no GPU (:func:`~gpuhub.containers.spec.no_gpu_env`).
* The lease is released exactly once: on ``stop()``, when ``poll()`` finds the server
  dead, when the state is cleared, or when the spawn fails or is cancelled.
* ``get_state()`` keeps ``{"gpuhub_state_version": 1, "lease_id": N}`` next to the parent
  spawner's state, so a restarted hub re-adopts each server and its lease.

The parts live by role: :mod:`.leasing` (asking for, waiting for and releasing the
lease), :mod:`.progress` (what the spawn page shows meanwhile), :mod:`.state` (the saved
state and the accepted ``user_options``); this module holds the configuration and the
spawner interface.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ClassVar
from urllib.parse import urlparse, urlunparse

from traitlets import (
    Callable,
    Dict,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    validate,
)
from traitlets.config import Configurable

from ..client import AsyncGpuhubClient, GpuhubError, RetryPolicy
from ..profiles import (
    Profile,
    ProfileConfigError,
    Selection,
    UserOptionsError,
    load_profiles,
    options_from_form,
    validate_user_options,
)
from ..terms import server_label
from .container import build_env, no_gpu_env
from .errors import GPUSpawnError
from .form import (
    CONTAINER,
    ProfileChoice,
    ServerKind,
    choice_from_preview,
    cpu_choice,
    quota_groups,
    quota_lines,
    render_form,
)
from .leasing import LeaseHolder, background
from .progress import ProgressLog
from .state import (
    STATE_VERSION,
    accepted_options,
    lease_id_from_state,
    remember_accepted_options,
    state_with_lease,
)

__all__ = ["STATE_VERSION", "GPUSpawnError", "GPUSpawnerMixin", "lease_id_from_state"]


async def _options_form(spawner: GPUSpawnerMixin) -> str:
    """``Spawner.options_form`` callable: the live profile form of this spawner."""
    return await spawner.render_options_form()


async def _apply_user_options(spawner: GPUSpawnerMixin, user_options: dict) -> None:
    """``Spawner.apply_user_options``: refuse invalid options before anything starts.

    Before this step runs, JupyterHub saves a request's options as the defaults for the
    next request that sends none; refused options are replaced there by the last accepted
    ones (kept by this hub process; else none: the next request gets the default profile).
    """
    try:
        await spawner.selection_from(user_options)
    except GPUSpawnError:
        spawner.forget_refused_options()
        raise
    spawner.remember_accepted_options(user_options)


class GPUSpawnerMixin(LeaseHolder, Configurable):
    """GPU profiles, leases from the gpuhub service, and GPU plumbing for a JupyterHub spawner.

    Put it first: ``class MySpawner(GPUSpawnerMixin, SomeSpawner)``. Configure it as
    ``c.GPUSpawnerMixin.<trait>`` (applies to every GPU spawner).
    """

    profiles = Union(
        [List(Dict()), Callable()],
        default_value=[],
        config=True,
        help="""The spawn profiles: environment image × GPU shape × limits × groups.

        A list of dicts (see ``gpuhub.profiles.Profile``), or a callable
        ``f(spawner)`` (may be async) returning one, for per-user policy. Example::

            c.GPUSpawnerMixin.profiles = [
                {"name": "gpu1", "display_name": "1 GPU", "default": True,
                 "image": "gpuhub/pytorch:latest", "shape": {"kind": "gpu", "count": 1},
                 "gpu_counts": [1, 2], "cpu_limit": 8, "mem_limit": "64G", "shm_size": "8G"},
                {"name": "mig-small", "display_name": "A MIG 1g.5gb slice",
                 "image": "gpuhub/pytorch:latest",
                 "shape": {"kind": "mig", "profile": "1g.5gb"},
                 "cpu_limit": 2, "mem_limit": "16G", "shm_size": "2G", "groups": ["cs101"]},
            ]

        ``shape`` is the scheduler's shape (``gpu`` with ``count`` and optional ``model``,
        ``mig`` with ``profile``, ``shared``), or None for a CPU-only profile (no GPU, no
        lease, no quota), e.g. ``{"name": "cpu", "display_name": "No GPU (CPU only)",
        "shape": None, "cpu_limit": 2, "mem_limit": "8G"}``; ``groups`` (None: everyone)
        lists the JupyterHub groups that may use the profile. A list is checked when loaded.
        """,
    )

    @validate("profiles")
    def _check_profiles(self, proposal):
        value = proposal.value
        if not callable(value):
            try:
                load_profiles(value)
            except ProfileConfigError as e:
                raise TraitError(f"GPUSpawnerMixin.profiles: {e}") from e
        return value

    gpuhub_url = Unicode(
        "",
        config=True,
        help="""URL of the gpuhub service as the hub reaches it, with the service prefix,
        e.g. ``http://127.0.0.1:10101/services/gpuhub/`` (its REST API is under ``api/v1``).""",
    )
    gpuhub_api_token = Unicode(
        "",
        config=True,
        help="""Token the spawners use towards the gpuhub service; it needs the
        ``custom:gpuhub:admin`` scope (leases are requested on users' behalf). It never
        enters a user's server: servers use their own JupyterHub token.""",
    )
    notebook_service_url = Unicode(
        "",
        config=True,
        help="""The gpuhub service URL as a user's server reaches it (``GPUHUB_SERVICE_URL``
        in the server; the notebook extension calls it with the server's own token).
        Default: ``JupyterHub.public_url`` + the service prefix when a public URL is
        configured, else ``gpuhub_url`` (right for local processes and host networking).
        Set it for containers on a bridge network, e.g. ``http://hub.example.org/services/gpuhub/``.""",
    )
    lease_poll_interval = Float(
        5.0,
        min=0.05,
        config=True,
        help="""Seconds between checks of a queued GPU request while a spawn waits
        (each check updates the queue position shown in spawn progress), e.g. ``2``.""",
    )
    release_wait = Float(
        15.0,
        config=True,
        help="""Seconds ``stop()`` waits for the service to confirm a lease release. If it
        cannot be reached, the release goes on being retried in the background.""",
    )
    gpuhub_retry_time = Float(
        120.0,
        min=0.0,
        config=True,
        help="""Seconds a request to the gpuhub service is retried while the service does
        not answer or answers 502/503/504 (a restart of the service, which JupyterHub notices
        within 30 s), e.g. ``300``. Lease requests carry an idempotency key, so a retried
        request never gets a second lease. ``0``: no retries.""",
    )
    form_timeout = Float(
        5.0,
        config=True,
        help="Seconds the spawn form waits for live availability before showing without it.",
    )

    # the lease of the running (or starting) server; lease_id is in the saved state
    lease_id = Integer(None, allow_none=True)
    lease = Dict(allow_none=True, default_value=None)

    _reconciled: ClassVar[asyncio.Future | None] = None
    _selection: Selection | None = None  # what the running (or starting) server uses
    #: What a server of this spawner is, as the spawn form says (image and limits or not).
    server_kind: ClassVar[ServerKind] = CONTAINER

    @default("options_form")
    def _default_options_form(self):
        return _options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_user_options

    # -- configuration ----------------------------------------------------------------

    @property
    def gpuhub(self) -> AsyncGpuhubClient:
        """The client of the gpuhub service (retrying through a restart of the service)."""
        if not (self.gpuhub_url and self.gpuhub_api_token):
            raise GPUSpawnError(
                500,
                "the GPU service is not configured: set c.GPUSpawnerMixin.gpuhub_url and "
                "c.GPUSpawnerMixin.gpuhub_api_token",
            )
        return AsyncGpuhubClient(
            self.gpuhub_url,
            self.gpuhub_api_token,
            timeout=20.0,
            retry=RetryPolicy(budget=self.gpuhub_retry_time),
            on_retry=self._log_retry,
            trust_env=False,  # the hub reaches its own service directly, never via a proxy
        )

    def _log_retry(self, error: GpuhubError, delay: float, retry: int) -> None:
        self.log.warning(
            "gpuhub service for %s: %s; retry %d in %.1f s", self._log_name, error, retry, delay
        )

    async def get_profiles(self) -> list[Profile]:
        """The profiles that apply to this spawner's user (the callable is called here)."""
        value = self.profiles
        if callable(value):
            value = value(self)
            if inspect.isawaitable(value):
                value = await value
        try:
            profiles = load_profiles(value) or self.derived_profiles()
        except ProfileConfigError as e:
            self.log.error("GPU profiles misconfigured: %s", e)
            raise GPUSpawnError(500, f"the GPU profiles are misconfigured: {e}") from e
        if not profiles:
            raise GPUSpawnError(
                500, "no GPU profiles are configured: an admin must set c.GPUSpawnerMixin.profiles"
            )
        return profiles

    def derived_profiles(self) -> list[Profile]:
        """Hook: the profiles to offer when none are configured (none: spawns are refused).

        May raise :class:`ProfileConfigError`.
        """
        return []

    async def profiles_for(self, user_options: Any) -> list[Profile]:
        """Hook: the profiles ``user_options`` are checked against (:meth:`get_profiles`)."""
        return await self.get_profiles()

    def user_groups(self) -> list[str]:
        """Names of the user's JupyterHub groups."""
        return sorted(g.name for g in getattr(self.user, "groups", None) or ())

    @property
    def lease_label(self) -> str:
        """What the lease is held for: ``server:{user}/{server_name}``."""
        return server_label(self.user.name, self.name)

    def service_url_for_server(self) -> str:
        """``GPUHUB_SERVICE_URL`` for the user's server (see ``notebook_service_url``)."""
        if self.notebook_service_url:
            return self.notebook_service_url
        public = getattr(self, "public_hub_url", "")
        if public and self.gpuhub_url:
            prefix = urlparse(self.gpuhub_url).path or "/services/gpuhub/"
            return urlunparse(urlparse(public)._replace(path=prefix, query="", fragment=""))
        return self.gpuhub_url

    # -- user_options -----------------------------------------------------------------

    async def selection_from(self, user_options: Any) -> Selection:
        """Validate untrusted ``user_options``; HTTP 400 with the reason if they are refused."""
        profiles = await self.profiles_for(user_options)
        try:
            return validate_user_options(user_options, profiles, self.user_groups())
        except UserOptionsError as e:
            self.log.info("refused user_options of %s: %s", self._log_name, e.message)
            raise GPUSpawnError(400, f"Invalid server options: {e.message}") from e

    def remember_accepted_options(self, user_options: dict) -> None:
        """Keep ``user_options`` that passed validation, the defaults to go back to."""
        remember_accepted_options(self.user.name, self.name, user_options)

    def forget_refused_options(self) -> None:
        """Make the last accepted ``user_options`` the saved defaults again (none: ``{}``)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:
            return
        orm_spawner.user_options = accepted_options(self.user.name, self.name)
        db = getattr(self.user, "db", None)  # the hub's session (JupyterHub's User wrapper)
        if db is not None:
            db.commit()

    # -- the form ---------------------------------------------------------------------

    async def render_options_form(self) -> str:
        """The spawn form with each profile's live availability and the user's quota."""
        profiles = await self.get_profiles()
        groups = self.user_groups()
        notice = None
        me: dict | None = None
        previews: dict[str, dict | None] = {}
        offered: dict[str, dict] = {}  # each profile as GET /me/options lists it
        try:
            client = self.gpuhub
            me, options = await asyncio.wait_for(
                asyncio.gather(client.me(self.user.name), client.options(self.user.name)),
                self.form_timeout,
            )
            offered = {p["name"]: p for p in options.get("profiles") or ()}
            charge = quota_groups(me)
            group = charge[0] if len(charge) > 1 else None
            usable = [p for p in profiles if p.has_gpu and p.allows(groups)]  # CPU: no preview
            answers = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.preview(
                            Selection(p, p.default_count, group).lease_body(
                                user=self.user.name, label=self.lease_label
                            )
                        )
                        for p in usable
                    ),
                    return_exceptions=True,
                ),
                self.form_timeout,
            )
            for p, answer in zip(usable, answers, strict=True):
                if isinstance(answer, BaseException):
                    self.log.warning("preview of profile %s failed: %s", p.name, answer)
                    notice = "Live GPU availability could not be fetched for every profile."
                    answer = None
                previews[p.name] = answer
        except (GpuhubError, GPUSpawnError, TimeoutError) as e:
            self.log.warning("spawn form without live availability for %s: %s", self._log_name, e)
            notice = (
                "Live GPU availability is not available right now (the gpuhub service did "
                "not answer); you can still start a server."
            )
        choices = []
        for p in profiles:
            reason = p.unusable_reason(groups)
            if reason:
                choices.append(ProfileChoice(p, reason=reason))
            elif not p.has_gpu:
                choices.append(cpu_choice(p))
            else:
                o = offered.get(p.name) or {}  # an older service says no price: None
                models, price = o.get("models_text"), o.get("credits_text")
                choices.append(choice_from_preview(p, previews.get(p.name), models, price))
        last = self.user_options.get("profile") if isinstance(self.user_options, dict) else None
        return render_form(
            choices,
            quotas=quota_lines(me),
            groups=quota_groups(me),
            selected=last if isinstance(last, str) else None,
            notice=notice,
            kind=self.server_kind,
        )

    # -- the spawner interface ---------------------------------------------------------

    async def progress(self):
        """Spawn progress: the lease request, queue position updates, the grant."""
        if self._progress is None:
            return
        async for event in self._progress.follow():
            yield event

    def gpu_environment(self) -> dict[str, str]:
        """The GPU variables of the server: devices, lease id, service URL (no credentials);
        for a CPU-only profile, no GPU at all (:func:`no_gpu_env`)."""
        if self.lease:
            return build_env(self.lease, service_url=self.service_url_for_server())
        if self._selection is not None and not self._selection.needs_lease:
            return no_gpu_env(
                profile=self._selection.profile.name, service_url=self.service_url_for_server()
            )
        return {}

    def get_env(self) -> dict[str, str]:
        """The parent's environment plus :meth:`gpu_environment`."""
        env = super().get_env()
        env.update(self.gpu_environment())
        return env

    async def prepare_server(self, selection: Selection, lease: dict[str, Any] | None) -> None:
        """Hook: apply the selection before the parent's ``start()`` (image, ports...);
        ``lease`` is None for a CPU-only profile."""

    async def reconcile(self) -> None:
        """Hook: once per hub process, check what outlived the last one (containers...).

        Runs in the background from the first ``start()`` or ``poll()``; it must tolerate
        spawns going on meanwhile.
        """

    def _reconcile_once(self) -> None:
        cls = type(self)
        fut = cls.__dict__.get("_reconciled")
        if fut is None or fut.get_loop() is not asyncio.get_running_loop():
            cls._reconciled = background(self._reconcile_logged())

    async def _reconcile_logged(self) -> None:
        try:
            await self.reconcile()
        except Exception:  # a failed check must not take anything else down
            self.log.exception("start-up reconciliation failed")

    async def start(self):
        """Validate, lease GPUs (waiting in the queue if need be), then start the server.

        A CPU-only profile asks the service for nothing: it starts at once, whatever the
        quotas say and whether or not the service answers.
        """
        self._progress = progress = ProgressLog()
        try:
            selection = await self.selection_from(self.user_options)
            self._reconcile_once()
            self._selection = selection
            lease = None
            if selection.needs_lease:
                lease = await self.acquire_lease(selection)
            else:
                self.log.info(
                    "%s starts without a GPU: profile %s has none (no lease, no quota)",
                    self._log_name, selection.profile.name,
                )  # fmt: skip
                what = f"profile {selection.profile.name} is CPU only; no quota is used"
                progress.add(f"No GPU requested: {what}", 50)
            await self.prepare_server(selection, lease)
            progress.add("Starting the server", 70)
            return await super().start()
        except BaseException:
            if self.lease_id is not None:
                self.log.warning(
                    "start of %s did not finish; giving lease %s back",
                    self._log_name,
                    self.lease_id,
                )
                await self.release_lease()
            raise
        finally:
            progress.close()

    async def poll(self):
        """The parent's poll; a server found dead gives its lease back."""
        self._reconcile_once()
        status = await super().poll()
        if status is not None:
            await self.release_lease()
        return status

    async def stop(self, now: bool = False):
        """Stop the server, then release its lease (also if stopping failed half-way)."""
        try:
            await super().stop(now=now)
        finally:
            await self.release_lease()

    def get_state(self) -> dict[str, Any]:
        """The parent's state plus ``gpuhub_state_version`` and ``lease_id``."""
        return state_with_lease(super().get_state(), self.lease_id)

    def load_state(self, state: dict[str, Any]) -> None:
        """Adopt the lease of a server started by an earlier hub process."""
        super().load_state(state)
        lease_id, warning = lease_id_from_state(state)
        if warning:
            self.log.warning("%s: %s", self._log_name, warning)
        if lease_id is not None:
            self.lease_id = lease_id

    def clear_state(self) -> None:
        """Forget the server; a lease still held is released (never forgotten while live)."""
        super().clear_state()
        if self.lease_id is not None:
            self._forget_lease()

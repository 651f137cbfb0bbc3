"""Quotas of users and groups (``/api/v1/quotas``, ``/quotas/(users|groups)/{name}``).

Everyone may read their own quota and their groups'; listing, setting and removing quotas
needs the ``custom:gpuhub:admin`` scope. What is left of a quota is the scheduler's answer
(``quota_status``), never counted here.
"""

from __future__ import annotations

from ..scheduler.errors import Forbidden, NotFound
from .base import BaseHandler, checked_name
from .errors import ApiError
from .hub_api import HubApi
from .models import QuotaSpec

QUOTA_KINDS = {"users": "user", "groups": "group"}


async def ensure_group(hub: HubApi, name: str, *, create: bool) -> bool:
    """Make sure JupyterHub has group ``name``: create it when ``create``, else refuse (404)
    naming it. True if it was created now."""
    if await hub.group(name) is not None:
        return False
    if not create:
        raise NotFound(
            f"JupyterHub has no group {name}: check the name, or have it created "
            "(create=true; gpuhub quota set --create)",
            field="name",
        )
    return await hub.create_group(name)


class QuotaListHandler(BaseHandler):
    """``GET /api/v1/quotas``: every quota with its current use (admins)."""

    def get(self) -> None:
        self.require_admin("listing quotas")
        s = self.view
        items = [s.quota_status(kind, name, spec) for (kind, name), spec in s.all_quotas().items()]
        default = s.default_user_quota
        self.write_json(
            {
                "quotas": items,
                "default_user_quota": default.model_dump(mode="json") if default else None,
            }
        )


class QuotaHandler(BaseHandler):
    """``GET/PUT/DELETE /api/v1/quotas/(users|groups)/{name}``."""

    def _target(self, kinds: str, name: str) -> tuple[str, str]:
        checked_name(QUOTA_KINDS[kinds], name, "name")
        return QUOTA_KINDS[kinds], name

    def get(self, kinds: str, name: str) -> None:
        kind, name = self._target(kinds, name)
        own = (kind == "user" and name == self.user_name) or (
            kind == "group" and name in (self.current_user.get("groups") or [])
        )
        if not (own or self.is_admin):
            raise Forbidden(
                f"{self.user_name} may read only their own quota and their groups' quotas"
            )
        s = self.view
        spec = s.quota_for_user(name) if kind == "user" else s.quota(kind, name)
        if spec is None and kind == "group":
            raise NotFound(f"group {name} has no quota")
        out = s.quota_status(kind, name, spec)
        out["default"] = kind == "user" and s.quota("user", name) is None
        self.write_json(out)

    async def put(self, kinds: str, name: str) -> None:
        self.require_admin("setting quotas")
        kind, name = self._target(kinds, name)
        create = self.query_default("create", "false")
        if create not in ("true", "false") or (create == "true" and kind != "group"):
            raise ApiError(
                400, "create must be true or false, on group quotas only", field="create"
            )
        spec: QuotaSpec = self.body(QuotaSpec)
        if kind == "user":
            for field in (
                "per_user_max_units",
                "cohort",
                "borrow_limit",
                "lend_limit",
                "fair_share",
            ):
                if getattr(spec, field) is not None:
                    raise ApiError(400, f"{field} applies to group quotas only", field=field)
        if kind == "group":  # a typo'd group would hold a quota nobody is charged to
            await ensure_group(self.settings["hub_api"], name, create=create == "true")
        self.scheduler.set_quota(kind, name, spec, by=self.user_name)
        self.write_json(self.view.quota_status(kind, name, spec))

    def delete(self, kinds: str, name: str) -> None:
        self.require_admin("removing quotas")
        kind, name = self._target(kinds, name)
        self.scheduler.delete_quota(kind, name, by=self.user_name)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"/quotas", QuotaListHandler),
    (r"/quotas/(users|groups)/([^/]+)", QuotaHandler),
]

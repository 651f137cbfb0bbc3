"""Cohorts: a JupyterHub group, its members and its quota, set up in one request (admins).

``PUT /api/v1/cohorts/{name}`` creates the group if the hub lacks it, creates the listed
users the hub lacks (unless ``create_users`` is false: then it refuses, naming them),
adds them to the group and sets the group's quota, in that order, after every check has
passed: a refusal changes nothing. ``POST .../members`` adds users,
``DELETE .../members/{user}`` removes one, ``GET`` shows the members, the quota with
what is in use, and each member's GPU-hours charged to the group this quota period.

The hub is changed with the service's own token (see :mod:`gpuhub.service.hub_api` for
the scopes this needs); the quota is the scheduler's group quota, so ``per_user_max_units``
is the per-member cap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..names import check_name
from ..scheduler.core import iso
from ..scheduler.errors import NotFound
from ..scheduler.quota import QuotaSpec, period_phrase, period_window
from .base import BaseHandler, checked_name
from .errors import ApiError
from .hub_api import HubApi

#: The most users one request may name (a roster of a large class fits).
MAX_MEMBERS = 2000
#: The end of the refusal of unknown users (the CLI says it in its own words).
NO_SUCH_USER_CURE = "; fix the roster, or let them be created (create_users: true)"
#: Hub lookups in flight at once while checking which users exist.
_LOOKUPS = 16


class CohortMembers(BaseModel):
    """Body of ``POST /api/v1/cohorts/{name}/members``."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(min_length=1, max_length=MAX_MEMBERS)
    create_users: bool = Field(
        True, description="Create users JupyterHub does not have; false refuses them, naming them"
    )

    @field_validator("users")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [check_name("user", u) for u in v]


class CohortSpec(BaseModel):
    """Body of ``PUT /api/v1/cohorts/{name}``."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(default_factory=list, max_length=MAX_MEMBERS)
    quota: QuotaSpec | None = Field(None, description="The group's quota; null leaves it as is")
    create_users: bool = True

    @field_validator("members")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [check_name("user", u) for u in v]


async def plan_members(
    hub: HubApi, users: list[str], members: list[str], *, create_users: bool
) -> tuple[list[str], list[str]]:
    """(users to create, members to add): of ``users``, those not yet in ``members``, and
    of these the ones the hub lacks. Refuses, naming them, when users are missing and
    ``create_users`` is false; it changes nothing itself."""
    todo = [u for u in dict.fromkeys(users) if u not in members]
    missing = await missing_users(hub, todo)
    if missing and not create_users:
        raise ApiError(
            400,
            f"JupyterHub has no user{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            + NO_SUCH_USER_CURE,
            code="no_such_user",
            field="create_users",
        )
    return missing, todo


async def missing_users(hub: HubApi, users: list[str]) -> list[str]:
    """The users of ``users`` the hub does not have, in their order."""
    gate = asyncio.Semaphore(_LOOKUPS)

    async def exists(u: str) -> bool:
        async with gate:
            return await hub.user(u) is not None

    found = await asyncio.gather(*(exists(u) for u in users))
    return [u for u, ok in zip(users, found, strict=True) if not ok]


class _CohortBase(BaseHandler):
    @property
    def hub(self) -> HubApi:
        return self.settings["hub_api"]

    def _name(self, name: str) -> str:
        self.require_admin("managing cohorts")
        return checked_name("group", name, "name")

    async def _members(self, name: str) -> list[str]:
        group = await self.hub.group(name)
        if group is None:
            raise NotFound(
                f"JupyterHub has no group {name}; create the cohort first "
                "(PUT /api/v1/cohorts/{name}, gpuhub cohort create)",
                field="name",
            )
        return list(group.get("users") or [])

    async def _change_members(
        self, name: str, users: list[str], members: list[str], *, create_users: bool
    ) -> dict[str, Any]:
        created, added = await plan_members(self.hub, users, members, create_users=create_users)
        await self.hub.create_users(created)
        await self.hub.add_members(name, added)
        return {
            "name": name,
            "users_created": created,
            "members_added": added,
            "members": sorted({*members, *added}),
        }


class CohortListHandler(_CohortBase):
    """``GET /api/v1/cohorts``: every hub group with its members and quota, and groups that
    have a quota but are gone from the hub (``in_hub`` false)."""

    async def get(self) -> None:
        self.require_admin("listing cohorts")
        s = self.view
        groups = {g["name"]: sorted(g.get("users") or []) for g in await self.hub.groups()}
        with_quota = {name for kind, name in s.all_quotas() if kind == "group"}
        out = []
        for name in sorted(groups.keys() | with_quota):
            spec = s.quota("group", name)
            out.append(
                {
                    "name": name,
                    "in_hub": name in groups,
                    "members": groups.get(name, []),
                    "quota": None if spec is None else s.quota_status("group", name, spec),
                }
            )
        self.write_json({"cohorts": out})


class CohortHandler(_CohortBase):
    """``GET/PUT /api/v1/cohorts/{name}``: a cohort's members, quota and usage; set it up."""

    async def get(self, name: str) -> None:
        name = self._name(name)
        members = await self._members(name)
        s = self.view
        spec = s.quota("group", name)
        now = s.clock()
        window = spec if spec is not None else QuotaSpec()  # no quota: this week
        start, _ = period_window(window, now)
        rows = await asyncio.to_thread(
            s.ledger.usage, start, now, now=now, group=name, by=("user",)
        )
        self.write_json(
            {
                "name": name,
                "members": sorted(members),
                "quota": None if spec is None else s.quota_status("group", name, spec),
                "usage": {
                    "start": iso(start),
                    "end": iso(now),
                    "period": period_phrase(window, now),
                    "rows": rows,
                    "total_gpu_hours": round(sum(r["gpu_hours"] for r in rows), 6),
                },
            }
        )

    async def put(self, name: str) -> None:
        name = self._name(name)
        body: CohortSpec = self.body(CohortSpec)
        group = await self.hub.group(name)
        members = list(group.get("users") or []) if group else []
        created, added = await plan_members(
            self.hub, body.members, members, create_users=body.create_users
        )
        group_created = group is None and await self.hub.create_group(name)
        await self.hub.create_users(created)
        await self.hub.add_members(name, added)
        if body.quota is not None:
            self.scheduler.set_quota("group", name, body.quota, by=self.user_name)
        spec = self.view.quota("group", name)
        self.write_json(
            {
                "name": name,
                "group_created": group_created,
                "users_created": created,
                "members_added": added,
                "members": sorted({*members, *added}),
                "quota": None if spec is None else self.view.quota_status("group", name, spec),
            }
        )


class CohortMembersHandler(_CohortBase):
    """``POST /api/v1/cohorts/{name}/members``: add users (created when the hub lacks them)."""

    async def post(self, name: str) -> None:
        name = self._name(name)
        body: CohortMembers = self.body(CohortMembers)
        members = await self._members(name)
        self.write_json(
            await self._change_members(name, body.users, members, create_users=body.create_users)
        )


class CohortMemberHandler(_CohortBase):
    """``DELETE /api/v1/cohorts/{name}/members/{user}``: take a user out of the group."""

    async def delete(self, name: str, user: str) -> None:
        name = self._name(name)
        user = checked_name("user", user, "user")
        members = await self._members(name)
        if user not in members:
            raise NotFound(f"{user} is not a member of group {name}", field="user")
        await self.hub.remove_members(name, [user])
        self.write_json(
            {"name": name, "members_removed": [user], "members": sorted(set(members) - {user})}
        )


default_handlers = [
    (r"/cohorts", CohortListHandler),
    (r"/cohorts/([^/]+)", CohortHandler),
    (r"/cohorts/([^/]+)/members", CohortMembersHandler),
    (r"/cohorts/([^/]+)/members/([^/]+)", CohortMemberHandler),
]

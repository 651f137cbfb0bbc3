"""``GET /api/v1/me``: a person's quotas with what is left, their leases and queued requests.

What they may ask for now is ``GET /api/v1/me/options`` (:mod:`gpuhub.service.options`).
"""

from __future__ import annotations

from .base import BaseHandler


class MeHandler(BaseHandler):
    """``GET /api/v1/me``: my quotas with what is left, my leases and queued requests.

    Admins may add ``?user=NAME`` to see the same for someone else (spawn forms do).
    """

    async def get(self) -> None:
        s = self.view
        name, groups = await self.acting_for(self.query_name("user", "user"))
        groups = sorted(groups)
        quotas = [s.quota_status("user", name, s.quota_for_user(name))]
        quotas += [
            s.quota_status("group", g, spec)
            for g in groups
            if (spec := s.quota("group", g)) is not None
        ]
        leases = self.lease_views(s.leases(user=name))
        self.write_json(
            {
                "name": name,
                "groups": groups,
                "admin": self.is_admin and name == self.user_name,
                "quotas": quotas,
                "leases": [x for x in leases if x["status"] == "active"],
                "queued": [x for x in leases if x["status"] == "queued"],
            }
        )


default_handlers = [(r"/me", MeHandler)]

"""``GET /api/v1/me/options``: what this person may ask for now, in one answer.

The spawn form, the JupyterLab "Run as GPU job" dialog, the CLI (``gpuhub options``) and
the console read it instead of keeping rules of their own: which GPU shapes the pool can
give and which of them the user's quotas allow (the scheduler's own admission, as a
preview: nothing is requested), which models stand behind each shape, what is free of
each now, the spawn profiles open to the user, and the limits of jobs (maximum runtime:
shortest, default, longest; whether recurring schedules are taken). A limit lives in its
one place (the scheduler, ``c.JobManager``, the job request model) and is served here.

A CPU-only profile (no shape) is listed with ``shape: null`` and ``text: "no GPU"``: its
servers ask the scheduler for nothing, so no quota (not even ``allowed_profiles``) and no
preview applies to it.
"""

from __future__ import annotations

from typing import Any

from ..jobs.models import MAX_RUNTIME_CAP_S, MIN_RUNTIME_S
from ..profiles import Profile, check_profile_name
from ..scheduler.shapes import MigSlice, SharedGpu, WholeGpus, describe, model_matches
from .base import BaseHandler
from .errors import ApiError

#: Whole-GPU counts offered (up to the most one node has; that count too).
GPU_COUNTS = (1, 2, 4, 8)


def pool_shapes(view: Any) -> list[WholeGpus | MigSlice | SharedGpu]:
    """Every shape the pool can give: whole GPUs (1, 2, 4, 8 up to the most one node has,
    and that most), each MIG profile it has, and a shared seat where it has a shared GPU.
    ``view`` is the scheduler's ``pool_view()``."""
    largest, migs, shared = 0, set(), False
    for nv in view.nodes:
        whole = 0
        for gs in nv.gpus:
            g = gs.gpu
            if g.mig_enabled:
                migs.update(m.profile for m in g.mig_instances)
            elif g.mode == "shared":
                shared = True
            else:
                whole += 1
        largest = max(largest, whole)
    counts = [n for n in GPU_COUNTS if n <= largest]
    if largest and largest not in counts:
        counts.append(largest)
    out: list[WholeGpus | MigSlice | SharedGpu] = [WholeGpus(count=n) for n in counts]
    out += [MigSlice(kind="mig", profile=p) for p in sorted(migs)]
    if shared:
        out.append(SharedGpu(kind="shared"))
    return out


def shape_models(view: Any, shape: WholeGpus | MigSlice | SharedGpu) -> list[str]:
    """The GPU models that can serve ``shape`` (its model filter applied): for whole GPUs
    those of nodes with enough of them, for a MIG slice those with that profile, for a
    shared seat the shared GPUs'."""
    models: set[str] = set()
    for nv in view.nodes:
        whole: dict[str, int] = {}
        for gs in nv.gpus:
            g = gs.gpu
            if not model_matches(g.model, shape.model):
                continue
            if isinstance(shape, MigSlice):
                if g.mig_enabled and any(m.profile == shape.profile for m in g.mig_instances):
                    models.add(g.model)
            elif isinstance(shape, SharedGpu):
                if not g.mig_enabled and g.mode == "shared":
                    models.add(g.model)
            elif not g.mig_enabled and g.mode != "shared":
                whole[g.model] = whole.get(g.model, 0) + 1
        if isinstance(shape, WholeGpus) and sum(whole.values()) >= shape.count:
            models.update(whole)
    return sorted(models)


def price(rates: Any, models: list[str], units: float) -> dict[str, Any]:
    """What ``units`` GPU units of one of ``models`` cost per hour (the guaranteed tier):
    ``credits_per_hour`` (lowest and highest over the models; None without models or
    rates) and ``credits_text`` ("≈ 2 credits/h", "0.5–2 credits/h")."""
    span = rates.per_hour(models, units) if rates is not None else None
    if span is None:
        return {"credits_per_hour": None, "credits_text": None}
    low, high = (round(x, 4) for x in span)
    # three significant digits for people ("≈ 0.214 credits/h"); the numbers keep four places
    text = f"≈ {low:.3g} credits/h" if low == high else f"{low:.3g}–{high:.3g} credits/h"
    return {"credits_per_hour": {"min": low, "max": high}, "credits_text": text}


def models_text(models: list[str]) -> str:
    """'H100-80GB or A100-80GB' (the last two joined by 'or')."""
    if len(models) <= 2:
        return " or ".join(models)
    return ", ".join(models[:-1]) + " or " + models[-1]


class OptionsHandler(BaseHandler):
    """``GET /api/v1/me/options``: the shapes, profiles and job limits open to me now.

    Admins may add ``?user=NAME`` to see another person's (spawn forms do).
    """

    async def get(self) -> None:
        s = self.view
        name, groups = await self.acting_for(self.query_name("user", "user"))
        profile = self.query("profile")
        if profile is not None:
            try:
                check_profile_name(profile)
            except ValueError as e:
                raise ApiError(400, f"profile {profile!r}: {e}", field="profile") from None
        pool = s.pool_view()
        shapes = []
        for shape in pool_shapes(pool):
            models = shape_models(pool, shape)
            p = s.preview(user=name, user_groups=groups, shape=shape, profile=profile)
            shapes.append(
                {
                    "shape": shape.model_dump(mode="json", exclude_none=True),
                    "label": shape.label,
                    "text": describe(shape),
                    "models": models,
                    "models_text": models_text(models),
                    "outcome": p["outcome"],
                    "message": p.get("message"),
                    "free": p.get("free"),
                    "total": p.get("total"),
                    "ahead": p.get("ahead"),
                    "simulated": p.get("simulated", False),
                    **price(self.scheduler.rates, models, shape_units(pool, shape) or 0.0),
                }
            )
        jobs = self.settings.get("jobs")
        self.write_json(
            {
                "user": name,
                "shapes": shapes,
                "profiles": self._profiles(jobs, pool, name, groups),
                "jobs": {
                    "max_runtime_s": {
                        "min": MIN_RUNTIME_S,
                        "default": jobs.default_max_runtime if jobs else None,
                        "max": min(jobs.max_runtime, MAX_RUNTIME_CAP_S) if jobs else None,
                    },
                    "schedules": bool(jobs is not None and jobs.allow_schedules),
                },
                "queue_length": s.queue_length(),
                "spot": s.spot_policy(),
            }
        )

    def _profiles(self, jobs: Any, pool: Any, user: str, groups: list[str]) -> list[dict[str, Any]]:
        """The spawn profiles open to ``user``: their groups and their quotas allow them
        (a CPU-only profile: its groups only, as no quota applies to it)."""
        if jobs is None:
            return []
        s = self.view
        specs = [s.quota_for_user(user), *(s.quota("group", g) for g in groups)]
        out = []
        for p in jobs.profiles:
            if not p.allows(groups):
                continue
            if p.has_gpu and not all(spec is None or spec.allows_profile(p.name) for spec in specs):
                continue
            out.append(
                profile_option(
                    p, pool, multi_node=jobs.executor.multi_node, rates=self.scheduler.rates
                )
            )
        return out


def profile_option(
    p: Profile, pool: Any, *, multi_node: bool = False, rates: Any = None
) -> dict[str, Any]:
    """A profile as ``GET /me/options`` lists it; a CPU-only one has ``shape`` None, its
    text says "no GPU" and no model stands behind it. ``max_nodes`` is 1 where the job
    executor runs no multi-node jobs (``multi_node`` False). With ``rates`` (the
    scheduler's :class:`~gpuhub.scheduler.pricing.RateCard`), what it costs per hour at
    its default count, and per GPU (``credits_per_gpu_hour``, for other counts)."""
    models = shape_models(pool, p.shape) if p.shape is not None else []
    units = shape_units(pool, p.shape) or 0.0
    # per GPU: one whole GPU, or the slice or seat itself
    per_gpu = price(rates, models, 1.0 if isinstance(p.shape, WholeGpus) else units)
    return {
        "name": p.name,
        "display_name": p.display_name or p.name,
        "description": p.description,
        "image": p.image,
        "shape": p.shape.model_dump(mode="json", exclude_none=True) if p.shape else None,
        "text": describe(p.shape),
        "models": models,
        "models_text": models_text(models),
        "gpu_counts": list(p.choosable_counts),
        "max_nodes": p.max_nodes if multi_node else 1,
        "default": p.default,
        **price(rates, models, units),
        "credits_per_gpu_hour": per_gpu["credits_per_hour"],
    }


def shape_units(pool: Any, shape: WholeGpus | MigSlice | SharedGpu | None) -> float | None:
    """The GPU units a request of ``shape`` costs: whole GPUs their count (times nodes), a
    MIG slice or shared seat its share of its GPU in ``pool`` (the largest among the GPUs
    that have it); None for no shape."""
    if shape is None:
        return None
    if isinstance(shape, WholeGpus):
        return float(shape.units)
    shares = []
    for nv in pool.nodes:
        for gs in nv.gpus:
            g = gs.gpu
            if not model_matches(g.model, shape.model):
                continue
            if isinstance(shape, MigSlice) and g.mig_enabled:
                shares += [m.slices / g.total_slices for m in g.mig_instances
                           if m.profile == shape.profile]  # fmt: skip
            elif isinstance(shape, SharedGpu) and not g.mig_enabled and g.mode == "shared":
                shares.append(1 / g.shares)
    return max(shares, default=None)


default_handlers = [(r"/me/options", OptionsHandler)]

"""The spawn form: one radio button per profile with live availability and the user's quota.

Plain functions returning an HTML string; every value from configuration or from the
service is escaped. A profile the user cannot use now is shown disabled with the reason;
a CPU-only profile says plainly that it has no GPU and uses no quota.
The form's fields (``profile``, ``gpus-<profile>``, ``group``) are turned into
``user_options`` by :func:`gpuhub.profiles.options_from_form`.

The form says what a server of the spawner really is (:class:`ServerKind`): a container
shows each profile's image and limits; a local process has neither, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ..profiles import Profile
from ..terms import describe, fmt_bytes, fmt_gpus, fmt_hours, fmt_units


@dataclass(frozen=True)
class ServerKind:
    """What a server of a spawner really is, as the form tells the person choosing.

    ``images``: whether a profile's image is what the server runs; ``limits``: whether
    its CPU, memory and ``/dev/shm`` limits are enforced; ``note``: a sentence shown above
    the profiles. A spawner says which with its ``server_kind`` attribute.
    """

    images: bool = True
    limits: bool = True
    note: str | None = None


#: A container: the profile's image, with its limits (GPUDockerSpawner).
CONTAINER = ServerKind()


@dataclass(frozen=True)
class ProfileChoice:
    """A profile as this user sees it now.

    ``reason`` says why it is disabled (None: usable); ``availability`` is the service's
    preview sentence ("3 of 8 H100 GPUs free", "2 requests ahead of you; ...");
    ``outcome`` is the preview's ``grant``, ``queue`` or ``refuse`` (None: unknown).
    """

    profile: Profile
    reason: str | None = None
    availability: str | None = None
    outcome: str | None = None
    simulated: bool = False
    models: str | None = None  # "H100-80GB or A100-80GB": the models behind the shape
    price: str | None = None  # "≈ 2 credits/h": what it costs an hour at its default count

    @property
    def usable(self) -> bool:
        """Whether the radio button is enabled."""
        return self.reason is None


def choice_from_preview(
    profile: Profile,
    preview: Mapping[str, Any] | None,
    models: str | None = None,
    price: str | None = None,
) -> ProfileChoice:
    """A :class:`ProfileChoice` from ``POST /leases/preview``'s answer (None: no answer),
    the models behind its shape and its price (``models_text`` and ``credits_text`` of
    ``GET /me/options``; None where the service does not say)."""
    if preview is None:
        return ProfileChoice(profile, models=models, price=price)
    outcome = preview.get("outcome")
    message = str(preview.get("message") or "")
    simulated = bool(preview.get("simulated"))
    if outcome == "refuse":
        return ProfileChoice(profile, reason=message or "not available to you now",
                             outcome=outcome, simulated=simulated, models=models,
                             price=price)  # fmt: skip
    return ProfileChoice(profile, availability=message or None, outcome=outcome,
                         simulated=simulated, models=models, price=price)  # fmt: skip


#: What the form says of a CPU-only profile, where others show what is free.
STARTS_AT_ONCE = "Starts at once: no GPU is requested, so none of your GPU-hours are used"


def cpu_choice(profile: Profile) -> ProfileChoice:
    """A CPU-only profile as the form offers it: always startable, nothing to preview."""
    return ProfileChoice(profile, availability=STARTS_AT_ONCE, outcome="grant")


def quota_lines(me: Mapping[str, Any] | None) -> list[str]:
    """One sentence per quota from ``GET /me``: what is in use and what is left."""
    lines = []
    for q in (me or {}).get("quotas") or ():
        spec = q.get("quota")
        who = "Your quota" if q.get("kind") == "user" else f"Group {q.get('name')}"
        if not spec:
            lines.append(f"{who}: no limit")
            continue
        parts = []
        active = fmt_units(q.get("units_active") or 0)
        if spec.get("max_units") is not None:
            parts.append(f"{active} of {fmt_gpus(spec['max_units'])} in use")
        else:
            parts.append(f"{fmt_gpus(q.get('units_active') or 0)} in use")
        if q.get("units_queued"):
            parts.append(f"{fmt_gpus(q['units_queued'])} queued")
        if q.get("gpu_hours_left") is not None:
            parts.append(
                f"{fmt_hours(q['gpu_hours_left'])} of {fmt_hours(spec['gpu_hours'])} GPU-hours "
                f"left {q.get('period') or ''}".rstrip()
            )
        lines.append(f"{who}: " + "; ".join(parts))
    return lines


def quota_groups(me: Mapping[str, Any] | None) -> list[str]:
    """The user's groups that have quotas (a request must say which one it charges)."""
    return sorted(
        str(q["name"]) for q in (me or {}).get("quotas") or () if q.get("kind") == "group"
    )


def _shape_html(choice: ProfileChoice, kind: ServerKind) -> str:
    """'1 whole GPU · H100-80GB · ≈ 2 credits/h for 1 GPU · 8 CPUs · 64 GB memory', escaped;
    the price says for how many GPUs where the count may be chosen."""
    profile = choice.profile
    text = describe(profile.shape) if profile.has_gpu else "No GPU · quota-free"
    bits = [escape(text[0].upper() + text[1:])]
    if choice.models:
        bits.append(escape(choice.models))
    if choice.price:
        n = profile.default_count
        price = choice.price + (f" for {fmt_gpus(n)}" if len(profile.choosable_counts) > 1 else "")
        bits.append(f'<span class="gpuhub-price">{escape(price)}</span>')
    if kind.limits:
        if profile.cpu_limit:
            bits.append(f"{profile.cpu_limit:g} CPUs")
        if profile.mem_limit:
            bits.append(f"{fmt_bytes(profile.mem_limit)} memory")
        if profile.shm_size:
            bits.append(f"{fmt_bytes(profile.shm_size)} /dev/shm")
    return " · ".join(bits)


def _count_select(profile: Profile, disabled: bool) -> str:
    if len(profile.choosable_counts) < 2:
        return ""
    options = "".join(
        f'<option value="{n}"{" selected" if n == profile.default_count else ""}>'
        f"{n} GPU{'s' if n > 1 else ''}</option>"
        for n in profile.choosable_counts
    )
    pid = escape(profile.name)
    return (
        f'<label class="gpuhub-count">GPUs: <select name="gpus-{pid}" id="gpus-{pid}"'
        f"{' disabled' if disabled else ''}>{options}</select></label>"
    )


def _choice_html(choice: ProfileChoice, checked: bool, kind: ServerKind) -> str:
    p = choice.profile
    pid = escape(p.name)
    disabled = not choice.usable
    notes = []
    if choice.availability:
        cls = "gpuhub-queue" if choice.outcome == "queue" else "gpuhub-free"
        notes.append(f'<span class="{cls}">{escape(choice.availability)}</span>')
    if choice.simulated:
        notes.append('<span class="gpuhub-simulated label label-warning">simulated</span>')
    if disabled:
        notes.append(
            f'<span class="gpuhub-reason text-danger">Not available: {escape(choice.reason or "")}'
            "</span>"
        )
    description = (
        f'<div class="gpuhub-description">{escape(p.description)}</div>' if p.description else ""
    )
    image = f" · <code>{escape(p.image)}</code>" if kind.images and p.image else ""
    return (
        f'<div class="gpuhub-profile radio{" disabled" if disabled else ""}">'
        f'<label for="profile-{pid}">'
        f'<input type="radio" name="profile" id="profile-{pid}" value="{pid}"'
        f"{' checked' if checked else ''}{' disabled' if disabled else ''}> "
        f"<strong>{escape(p.display_name)}</strong></label>"
        f'<div class="gpuhub-shape">{_shape_html(choice, kind)}{image}</div>'
        f"{description}"
        f'<div class="gpuhub-availability">{" · ".join(notes)}</div>'
        f"{_count_select(p, disabled)}"
        "</div>"
    )


def render_form(
    choices: Sequence[ProfileChoice],
    *,
    quotas: Sequence[str] = (),
    groups: Sequence[str] = (),
    selected: str | None = None,
    notice: str | None = None,
    kind: ServerKind = CONTAINER,
) -> str:
    """The form's HTML.

    ``selected`` is the profile to preselect (the last one used, else the default);
    ``groups`` are offered in a select when there are several to charge; ``notice`` is
    a line shown on top (for example when live availability could not be fetched);
    ``kind`` is what a server is (images and limits are shown only where they apply).
    """
    usable = [c for c in choices if c.usable]
    names = {c.profile.name for c in usable}
    if selected not in names:
        selected = next((c.profile.name for c in usable if c.profile.default), None)
    if selected not in names:
        selected = usable[0].profile.name if usable else None
    parts = ['<div class="gpuhub-form">']
    if notice:
        parts.append(f'<p class="gpuhub-notice text-warning">{escape(notice)}</p>')
    if kind.note:
        parts.append(f'<p class="gpuhub-kind text-info">{escape(kind.note)}</p>')
    if quotas:
        parts.append(
            '<ul class="gpuhub-quota">'
            + "".join(f"<li>{escape(line)}</li>" for line in quotas)
            + "</ul>"
        )
    if not usable:
        parts.append(
            '<p class="gpuhub-none text-danger">None of the GPU profiles is available to you '
            "now; the reasons are listed below.</p>"
        )
    legend = "Environment and GPUs" if kind.images else "GPUs"  # no environment to choose
    parts.append(f'<fieldset class="gpuhub-profiles"><legend>{legend}</legend>')
    parts.extend(_choice_html(c, c.profile.name == selected, kind) for c in choices)
    parts.append("</fieldset>")
    if len(groups) > 1:
        options = "".join(f'<option value="{escape(g)}">{escape(g)}</option>' for g in groups)
        parts.append(
            '<label class="gpuhub-group" for="gpuhub-group">Charge to group: '
            f'<select name="group" id="gpuhub-group">{options}</select></label>'
        )
    parts.append("</div>")
    return "\n".join(parts)

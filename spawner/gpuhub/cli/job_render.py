"""What the ``gpuhub job`` commands print for people: job and schedule tables, sentences.

Each function takes the API's Job or Definition views as they come and returns text.
Scripts should use ``--json`` instead of parsing it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..terms import JOB_QUEUED, JOB_RETRY_CLASSES, shape_text
from . import tables as t
from .render import nodes_text
from .tables import duration_text


def elapsed_text(seconds: float | None) -> str | None:
    """A job's running time: ``42s``, ``3m 05s``, ``1h 02m``, ``2d 03h``."""
    if seconds is None:
        return None
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h:02d}h"


def status_text(job: Mapping[str, Any]) -> str:
    """``running``; a queued job with its place in the queue: ``queued (#2)``; one waiting
    to run again: ``queued (attempt 2 at 2026-12-01 10:05 UTC)``."""
    status = str(job.get("status"))
    if status == JOB_QUEUED and job.get("position"):
        return f"{status} (#{job['position']})"
    if status == JOB_QUEUED and job.get("next_attempt_at"):
        return f"{status} (attempt {job.get('attempt')} at {t.fmt_time(job['next_attempt_at'])})"
    return status


def job_shape(job: Mapping[str, Any]) -> str | None:
    """The job's GPU shape for people: ``1x GPU``, ``MIG 1g.10gb``."""
    if job.get("shape_text"):
        return str(job["shape_text"])
    return shape_text(job["shape"]) if job.get("shape") else None


def jobs_table(jobs: Sequence[Mapping[str, Any]], *, users: bool = False) -> str:
    """Jobs, newest first as the API lists them; ``users``: with a USER column."""
    rows = [
        [
            x.get("id"),
            *([x.get("user")] if users else []),
            x.get("name"),
            status_text(x),
            job_shape(x),
            elapsed_text(x.get("elapsed_s")),
            t.fmt_number(x.get("gpu_hours")),
            t.fmt_time(x.get("created_at")),
            ", ".join(m for m in _markers(x) if m),
        ]
        for x in jobs
    ]
    headers = ["ID", *(["USER"] if users else []), "NAME", "STATUS", "SHAPE", "ELAPSED"]
    right = (0, len(headers) - 1, len(headers))  # ID, ELAPSED, GPU-H
    return t.render([*headers, "GPU-H", "CREATED", ""], rows, right=right)


def _markers(job: Mapping[str, Any]) -> tuple[str, ...]:
    """What the last column of ``gpuhub jobs`` notes: simulated GPUs, spot, a retry."""
    attempt = job.get("attempt") or 1
    return (
        "simulated" if job.get("simulated") else "",
        "spot" if job.get("tier") == "spot" else "",
        f"attempt {attempt}" if attempt > 1 else "",
    )


def retry_text(retry: Mapping[str, Any] | None) -> str | None:
    """A retry policy in a line: ``preempted 10, node_failed 1; backoff 30s doubling to
    1h`` (the classes with no retry left out)."""
    if not retry:
        return None
    counts = [f"{k} {retry[k]}" for k in JOB_RETRY_CLASSES if retry.get(k)]
    first, most = retry.get("backoff_s") or 0, retry.get("backoff_max_s") or 0
    wait = (
        f"backoff {duration_text(first)} doubling to {duration_text(most)}"
        if first
        else "no backoff"
    )
    return f"{', '.join(counts) or 'none'}; {wait}"


def notice_text(job: Mapping[str, Any]) -> str | None:
    """The preemption notice on a running job's lease, or None."""
    notice = job.get("preemption")
    if not notice:
        return None
    return (
        f"its GPUs are taken back: notice at {t.fmt_time(notice.get('notice_at'))}, "
        f"stopped at {t.fmt_time(notice.get('deadline'))}"
    )


def attempts_table(job: Mapping[str, Any]) -> str:
    """Each attempt of a job: how it ended and why, its GPU-hours and times."""
    rows = [
        [
            a.get("attempt"),
            a.get("status"),
            a.get("reason"),
            t.fmt_number(a.get("gpu_hours")),
            t.fmt_time(a.get("started_at")),
            t.fmt_time(a.get("ended_at")),
        ]
        for a in job.get("attempts") or ()
    ]
    headers = ["ATTEMPT", "STATUS", "WHY", "GPU-H", "STARTED", "ENDED"]
    return t.render(headers, rows, right=(0, 3))


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def job_details(job: Mapping[str, Any]) -> str:
    """Everything about one job, one ``field: value`` line each (``gpuhub job show``)."""
    params = job.get("parameters") or {}
    runtime = job.get("max_runtime_s")
    exit_code = job.get("exit_code")
    fields: list[tuple[str, Any]] = [
        ("job", job.get("id")),
        ("name", job.get("name")),
        ("user", job.get("user")),
        ("status", status_text(job)),
        ("reason", job.get("reason")),
        ("path", f"{job.get('path')} ({job.get('kind')})"),
        ("parameters", ", ".join(f"{k}={_json_text(v)}" for k, v in params.items()) or None),
        ("profile", job.get("profile")),
        ("image", job.get("image")),
        ("image digest", job.get("image_digest")),
        ("shape", job_shape(job)),
        ("nodes" if "," in (job.get("node") or "") else "node", nodes_text(job.get("node"))),
        ("devices", ", ".join(job.get("devices") or []) or None),
        ("simulated", "yes" if job.get("simulated") else None),
        ("max runtime", duration_text(runtime) if runtime else None),
        ("created", t.fmt_time(job.get("created_at"))),
        ("started", t.fmt_time(job.get("started_at"))),
        ("ended", t.fmt_time(job.get("ended_at"))),
        ("elapsed", elapsed_text(job.get("elapsed_s"))),
        ("GPU-hours", t.fmt_number(job.get("gpu_hours"))),
        ("exit code", exit_code),
        ("folder", job.get("folder")),
        ("executed notebook", job.get("output_notebook")),
        ("executor", job.get("executor")),
        ("schedule", job.get("definition_id")),
        ("tier", job.get("tier")),
        ("retry", retry_text(job.get("retry"))),
        ("attempt", job.get("attempt") if (job.get("attempt") or 1) > 1 else None),
        ("next attempt", t.fmt_time(job.get("next_attempt_at"))),
        ("preemption", notice_text(job)),
    ]
    shown = [(k, v) for k, v in fields if v is not None and v != t.NONE]
    width = max(len(k) for k, _ in shown)
    text = "\n".join(f"{k + ':':<{width + 1}} {t.cell(v)}" for k, v in shown)
    if len(job.get("attempts") or ()) > 1:  # a job that ran more than once: each run
        text += "\n\n" + attempts_table(job)
    return text


def submitted_sentence(job: Mapping[str, Any]) -> str:
    """What ``gpuhub job submit`` says: the job, where it stands, how to follow it."""
    jid = job.get("id")
    where = f"queued at position {job['position']}" if job.get("position") else job.get("status")
    reason = f" ({job['reason']})" if job.get("reason") else ""
    shape = job_shape(job)
    return (
        f"job {jid} submitted: {job.get('name')} ({job.get('path')})"
        f"{', ' + shape if shape else ''}, {where}{reason}\n"
        f"follow its log with: gpuhub job log {jid} --follow"
    )


def job_sentence(job: Mapping[str, Any]) -> str:
    """One line about a job just cancelled (or any job): ``job 12 cancelled``."""
    reason = f" ({job['reason']})" if job.get("reason") else ""
    return f"job {job.get('id')} {status_text(job)}{reason}"


def ended_sentence(job: Mapping[str, Any]) -> str:
    """How a job ended, for the end of ``gpuhub job log --follow``."""
    parts = [f"job {job.get('id')} {status_text(job)}"]
    if job.get("exit_code") is not None:
        parts.append(f"exit code {job['exit_code']}")
    if job.get("elapsed_s") is not None:
        parts.append(f"after {elapsed_text(job['elapsed_s'])}")
    text = ", ".join(parts)
    return f"{text} ({job['reason']})" if job.get("reason") else text


# -- schedules (job definitions) --------------------------------------------------------


def definitions_table(defs: Sequence[Mapping[str, Any]], *, users: bool = False) -> str:
    """Job definitions: their cron schedule, state, next and last run."""
    rows = [
        [
            d.get("id"),
            *([d.get("user")] if users else []),
            d.get("name"),
            d.get("schedule"),
            "paused" if d.get("paused") else "active",
            t.fmt_time(d.get("next_run_at")) if not d.get("paused") else None,
            t.fmt_time(d.get("last_run_at")),
            d.get("last_job_id"),
            d.get("path"),
        ]
        for d in defs
    ]
    headers = ["ID", *(["USER"] if users else []), "NAME", "SCHEDULE (UTC)", "STATE"]
    return t.render(
        [*headers, "NEXT RUN", "LAST RUN", "LAST JOB", "PATH"],
        rows,
        right=(0, len(headers) + 2),
    )


def definition_sentence(d: Mapping[str, Any], what: str) -> str:
    """One line about a schedule just created, paused or resumed."""
    did = d.get("id")
    schedule = str(d.get("schedule"))
    zone = "" if schedule.startswith("CRON_TZ=") else " UTC"  # a zoned schedule names its own
    head = f"schedule {did} ({d.get('name')}) {what}: {d.get('path')} at '{schedule}'{zone}"
    if d.get("paused"):
        return f"{head}; paused (resume it with: gpuhub job resume {did})"
    return f"{head}; next run {t.fmt_time(d.get('next_run_at'))}"


def unscheduled_sentence(def_id: int) -> str:
    """What ``gpuhub job unschedule`` says."""
    return f"schedule {def_id} removed; the jobs it already ran stay (gpuhub jobs)"

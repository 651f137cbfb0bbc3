"""Jobs and job definitions as the REST API shows them (built from records and leases)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..scheduler.lease import Lease, iso
from ..terms import JOB_FAILED, JOB_NODE_FAILED, JOB_SUCCEEDED, shape_text
from .executor import JOBS_FOLDER, JobExit
from .record import Job

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def job_folder(job_id: int, name: str) -> str:
    """The job's folder relative to the home: ``gpuhub-jobs/<id>-<slug of name>``."""
    slug = _SLUG.sub("-", name).strip("-.")[:40].strip("-.") or "job"
    return f"{JOBS_FOLDER}/{job_id}-{slug}"


def output_name(path: str, kind: str) -> str | None:
    """The executed notebook's file name in the job's folder (None for scripts)."""
    if kind != "notebook":
        return None
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{stem}.ipynb" if stem != "input" else "output.ipynb"


def job_view(
    job: Job, lease: Lease | None, position: int | None, now: float, executor: str
) -> dict[str, Any]:
    """A job (and its lease) as the API shows it."""
    devices = list(lease.devices) if lease is not None and lease.granted_at is not None else []
    if job.ended and job.gpu_hours is not None:
        gpu_hours = float(job.gpu_hours)
    else:
        earlier = sum(float(a.get("gpu_hours") or 0.0) for a in job.attempts)
        gpu_hours = earlier + (lease.gpu_hours(now) if lease is not None else 0.0)
    started, end = job.started_at, job.ended_at
    elapsed = None if started is None else max(0.0, (end if end is not None else now) - started)
    folder = job_folder(job.id, job.name)
    out = output_name(job.path, job.kind)
    if int(job.shape.get("nodes") or 1) > 1:
        out = None  # a notebook on several nodes runs as a script: its output is the log
    return {
        "id": job.id,
        "user": job.user,
        "name": job.name,
        "path": job.path,
        "kind": job.kind,
        "status": job.status,
        "position": position,
        "reason": job.reason,
        "profile": job.profile,
        "image": job.image,
        "image_digest": job.image_digest,
        "shape": job.shape,
        "shape_text": shape_text(job.shape),
        "parameters": job.parameters,
        "max_runtime_s": job.max_runtime_s,
        "lease_id": job.lease_id,
        "node": lease.node if lease is not None else None,
        "devices": [str(d["uuid"]) for d in devices],
        "simulated": any(bool(d.get("simulated")) for d in devices),
        "created_at": iso(job.created_at),
        "started_at": iso(started),
        "ended_at": iso(end),
        "elapsed_s": None if elapsed is None else round(elapsed, 3),
        "gpu_hours": round(gpu_hours, 6),
        "exit_code": job.exit_code,
        "folder": folder,
        "output_notebook": None if out is None else f"{folder}/{out}",
        "executor": job.executor or executor,
        "definition_id": job.definition_id,
        "tier": job.tier,
        "retry": job.retry,
        "attempt": job.attempt,
        "attempts": [*map(attempt_view, job.attempts), current_attempt(job, lease, now)],
        "next_attempt_at": iso(job.next_attempt_at),
        "preemption": preemption_view(job, lease),
    }


def attempt_view(a: dict[str, Any]) -> dict[str, Any]:
    """An ended attempt as the API shows it (times as ISO strings)."""
    return {
        "attempt": a.get("attempt"),
        "status": a.get("status"),
        "failure": a.get("failure"),
        "reason": a.get("reason"),
        "lease_id": a.get("lease_id"),
        "tier": a.get("tier"),
        "started_at": iso(a.get("started_at")),
        "ended_at": iso(a.get("ended_at")),
        "exit_code": a.get("exit_code"),
        "gpu_hours": round(float(a.get("gpu_hours") or 0.0), 6),
        "credits": round(float(a.get("credits") or 0.0), 6),
    }


def current_attempt(job: Job, lease: Lease | None, now: float) -> dict[str, Any]:
    """The attempt the job is on (or ended with), as :func:`attempt_view` shows ended ones
    (no lease between attempts: the next one waits out its backoff)."""
    return {
        "attempt": job.attempt,
        "status": job.status,
        "failure": None,
        "reason": job.reason,
        "lease_id": job.lease_id,
        "tier": job.tier,
        "started_at": iso(job.started_at),
        "ended_at": iso(job.ended_at),
        "exit_code": job.exit_code,
        "gpu_hours": 0.0 if lease is None else round(lease.gpu_hours(now), 6),
        "credits": 0.0 if lease is None else round(lease.credits(now), 6),
    }


def preemption_view(job: Job, lease: Lease | None) -> dict[str, Any] | None:
    """The preemption notice on the job's live lease: when it came and when the job must
    be gone, or None."""
    if job.ended or lease is None or lease.notice_at is None:
        return None
    deadline = lease.deadline if lease.deadline is not None else lease.notice_at
    return {"notice_at": iso(lease.notice_at), "deadline": iso(deadline)}


def definition_view(d: dict[str, Any]) -> dict[str, Any]:
    """A job definition row as the API shows it."""
    return {
        "id": d["id"],
        "user": d["user"],
        "name": d["name"],
        "schedule": d["schedule"],
        "paused": bool(d["paused"]),
        "next_run_at": None if d["paused"] else iso(d.get("next_run_at")),
        "last_run_at": iso(d.get("last_run_at")),
        "last_job_id": d.get("last_job_id"),
        "last_error": d.get("last_error"),
        "created_at": iso(d["created_at"]),
        "path": d["path"],
        "kind": d["kind"],
        "profile": d.get("profile"),
        "shape": d["shape"],
        "parameters": d["parameters"],
        "max_runtime_s": d["max_runtime_s"],
    }


def source_of(notebook: dict[str, Any] | None, script: str | None) -> str:
    """The snapshot kept with a job: the notebook's JSON text, or the script's source."""
    if notebook is not None:
        return json.dumps(notebook, ensure_ascii=False, indent=1) + "\n"
    return script or ""


def log_answer(offset: int, nxt: int, data: bytes, complete: bool) -> dict[str, Any]:
    """The answer of ``GET /jobs/{id}/log``: a page of the log from ``offset``."""
    text = data.decode("utf-8", errors="replace")
    return {"offset": offset, "next_offset": nxt, "text": text, "complete": complete}


def lease_gone(job: Job, lease: Lease | None) -> str:
    """Why a job ends when its lease ended under it (released by someone else)."""
    if lease is None:
        return f"its GPU lease {job.lease_id} is gone"
    why = f": {lease.end_reason}" if lease.end_reason else ""
    return f"its GPU lease {lease.id} ended ({lease.status}{why})"


def outcome(ended: JobExit) -> tuple[str, str]:
    """A job's status and reason from how its executor saw it end."""
    if ended.outcome == "succeeded":
        return JOB_SUCCEEDED, "finished"
    if ended.outcome == "terminated":
        why = ended.error or "stopped by a signal"
        return JOB_FAILED, f"stopped before it finished: {why}"
    if ended.outcome == "lost":
        return JOB_FAILED, ended.error or "the job vanished"
    if ended.outcome == "node_failed":
        return JOB_NODE_FAILED, ended.error or "its node failed"
    if ended.error:
        return JOB_FAILED, ended.error
    code = f" with exit code {ended.exit_code}" if ended.exit_code is not None else ""
    return JOB_FAILED, f"failed{code}"

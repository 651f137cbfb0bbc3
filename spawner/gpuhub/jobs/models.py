"""Bodies of the job routes, parsed strictly: unknown fields refused, every field checked.

The service never reads users' files: a job request carries the notebook (its JSON) or
the script (its source) and the path it has in the user's home, which is checked as a
plain relative POSIX path (no ``..``, no absolute path, no ``~``).
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..names import check_name
from ..scheduler.shapes import MAX_NODES, Shape
from .cron import CronError, CronSchedule

#: The shortest maximum runtime a job may ask for (seconds).
MIN_RUNTIME_S = 60
#: The longest any site may allow (7 days); ``c.JobManager.max_runtime`` may lower it.
MAX_RUNTIME_CAP_S = 7 * 24 * 3600

MAX_PATH = 1024
MAX_PARAMETERS = 100
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_SCRIPT_BYTES = 16 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,100}")
_PROFILE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_path(path: str) -> str:
    """A notebook or script path relative to the home; ValueError with a sentence if not."""
    if not 1 <= len(path) <= MAX_PATH:
        raise ValueError(f"must be 1-{MAX_PATH} characters")
    if _CONTROL.search(path) or "\\" in path:
        raise ValueError("must not contain control characters or backslashes")
    if path.startswith(("/", "~")):
        raise ValueError("must be relative to your home folder, not start with '/' or '~'")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError("must not have empty, '.' or '..' segments (it must stay in your home)")
    if not path.endswith((".ipynb", ".py")) or parts[-1] in (".ipynb", ".py"):
        raise ValueError("must name a notebook (.ipynb) or a Python script (.py)")
    return path


def check_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """A valid nbformat 4 notebook, or ValueError with nbformat's reason."""
    if nb.get("nbformat") != 4:
        raise ValueError("must be an nbformat 4 notebook (its 'nbformat' field must be 4)")
    import nbformat  # here, not at the top: it takes seconds to import (jsonschema's formats)

    try:
        node = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy: validate may repair
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(node)
    except nbformat.ValidationError as e:
        raise ValueError(f"is not a valid notebook: {str(e.message)[:300]}") from e
    except Exception as e:  # a notebook odd enough to break the validator itself
        raise ValueError(f"is not a valid notebook ({type(e).__name__})") from e
    return nb


def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Parameter names are Python identifiers, at most 100, at most 64 KiB as JSON."""
    if len(params) > MAX_PARAMETERS:
        raise ValueError(f"at most {MAX_PARAMETERS} parameters, not {len(params)}")
    for name in params:
        if not name.isidentifier() or not name.isascii() or len(name) > 100:
            raise ValueError(f"{name[:40]!r} is not a parameter name (a Python identifier)")
    size = len(json.dumps(params, ensure_ascii=False).encode())
    if size > MAX_PARAMETERS_BYTES:
        raise ValueError(f"are {size} bytes as JSON; at most {MAX_PARAMETERS_BYTES} (64 KiB)")
    return params


#: The most retries of one failure class a job may ask for.
MAX_RETRIES = 100
#: The longest backoff before a retry (one day).
MAX_BACKOFF_S = 86400


class RetryPolicy(BaseModel):
    """How often a job runs again, per way its attempt ended, and how long it waits first.

    Each count is the most *retries* of that class (0: the job ends with it). The wait
    before a retry is ``backoff_s``, doubled for each earlier retry of the same class, at
    most ``backoff_max_s``. A cancelled or timed-out job never runs again."""

    model_config = ConfigDict(extra="forbid")

    preempted: int = Field(
        10, ge=0, le=MAX_RETRIES,
        description="Retries after its lease was taken back (spot, or borrowed capacity)",
    )  # fmt: skip
    node_failed: int = Field(
        1, ge=0, le=MAX_RETRIES, description="Retries after its node failed under it"
    )
    failed: int = Field(
        0, ge=0, le=MAX_RETRIES, description="Retries after it exited with an error"
    )
    out_of_memory: int = Field(
        0, ge=0, le=MAX_RETRIES,
        description="Retries after it ran out of memory (Docker, Slurm; local jobs: failed)",
    )  # fmt: skip
    backoff_s: int = Field(
        30, ge=0, le=MAX_BACKOFF_S, description="Seconds before the first retry of a class"
    )
    backoff_max_s: int = Field(
        3600, ge=0, le=MAX_BACKOFF_S, description="The longest wait, however often it doubled"
    )

    @field_validator("backoff_max_s")
    @classmethod
    def _backoff_max(cls, v: int, info: ValidationInfo) -> int:
        first = info.data.get("backoff_s")
        if first is not None and v < first:
            raise ValueError(f"must be at least retry.backoff_s ({first})")
        return v


class JobRequest(BaseModel):
    """Body of ``POST /api/v1/jobs``: what to run, where, with which parameters."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The notebook or script, relative to the user's home")
    notebook: dict[str, Any] | None = Field(None, description="The notebook's JSON (nbformat 4)")
    script: str | None = Field(None, description="The script's source")
    profile: str | None = Field(
        None, description="A spawner profile with a GPU; default: the user's default GPU profile"
    )
    gpus: int | None = Field(None, ge=1, le=64, description="GPU count (profiles with counts)")
    nodes: int | None = Field(
        None, ge=1, le=MAX_NODES, description="Nodes, each with the GPU count (multi-node jobs)"
    )
    shape: Shape | None = Field(None, description="An explicit shape instead of the profile's")
    parameters: dict[str, Any] = Field(default_factory=dict, description="papermill parameters")
    max_runtime_s: int | None = Field(
        None, ge=MIN_RUNTIME_S, le=MAX_RUNTIME_CAP_S, description="Runtime limit (seconds)"
    )
    name: str | None = Field(None, description="A name; default: the path's stem")
    user: str | None = Field(None, description="Submit for this user (admins only)")
    tier: Literal["guaranteed", "spot"] = Field(
        "guaranteed", description="guaranteed, or spot: idle capacity at a discount, preemptible"
    )
    retry: RetryPolicy | None = Field(
        None, description="Retries per failure class and backoff; default RetryPolicy()"
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_path(v)

    @field_validator("notebook")
    @classmethod
    def _notebook(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else check_notebook(v)

    @field_validator("script")
    @classmethod
    def _script(cls, v: str | None) -> str | None:
        if v is not None and len(v.encode()) > MAX_SCRIPT_BYTES:
            raise ValueError("is larger than 16 MiB")
        return v

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str | None) -> str | None:
        if v is not None and not _PROFILE_RE.fullmatch(v):
            raise ValueError("is not a profile name (1-64 of a-z 0-9 . _ -)")
        return v

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_parameters(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME_RE.fullmatch(v):
            raise ValueError("must be 1-100 characters without control characters")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_name("user", v)
            except ValueError:
                raise ValueError("is not a valid user name") from None
        return v

    @property
    def kind(self) -> str:
        """``notebook`` or ``script``, by the path's suffix."""
        return "notebook" if self.path.endswith(".ipynb") else "script"

    @property
    def stem(self) -> str:
        """The file name without its suffix (the default job name)."""
        return self.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


class DefinitionRequest(JobRequest):
    """Body of ``POST /api/v1/job-definitions``: a job request and when to run it."""

    schedule: str = Field(
        description="Cron schedule: five fields or a macro such as @daily; UTC unless it "
        "starts with CRON_TZ=<IANA zone>"
    )
    paused: bool = Field(False, description="Created paused: no runs until resumed")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        try:
            return CronSchedule.parse(v).text
        except CronError as e:
            raise ValueError(str(e)) from e

    def job_request(self) -> JobRequest:
        """The job request each run submits."""
        return JobRequest.model_validate(self.model_dump(exclude={"schedule", "paused"}))


class DefinitionPatch(BaseModel):
    """Body of ``PATCH /api/v1/job-definitions/{id}``."""

    model_config = ConfigDict(extra="forbid")

    paused: bool = Field(description="Pause (true) or resume (false) the schedule")

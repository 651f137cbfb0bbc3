"""What ``gpuhub job submit`` reads on the user's side before the service sees anything.

The service never reads users' files: the command snapshots the notebook or script and
sends its content. So the checks on the path happen here, against ``$HOME``:

* :func:`resolve_in_home`: PATH is taken relative to the current folder, every symlink is
  resolved, and the real file must lie inside the real home (no ``..`` or symlink escape);
* :func:`read_source`: only ``.ipynb`` (valid nbformat 4, checked with nbformat) and
  ``.py`` (UTF-8 text), at most :data:`MAX_SOURCE_BYTES`;
* :func:`parse_param` (``-p name=value``): the value as JSON when it parses, else a string;
* :func:`parse_duration` (``--max-runtime``): ``90s``, ``30m``, ``2h``, ``1d`` or seconds;
  :func:`parse_wait` (``--backoff``) the same, or ``0``;
* :func:`parse_retry` (``--retry preempted=10,failed=1``): retries per failure class.

Refusals are :class:`~gpuhub.cli.commands.CliError` sentences (exit status 1); the
argument types raise ``argparse.ArgumentTypeError`` (a usage error, exit status 2).
"""

from __future__ import annotations

import argparse
import json
import keyword
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..jobs import snapshot
from ..jobs.snapshot import MAX_SOURCE_BYTES
from ..terms import JOB_RETRY_CLASSES
from .commands import CliError
from .tables import DURATION_UNITS

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")


@dataclass(frozen=True)
class JobSource:
    """A notebook or script as the job will get it."""

    path: str  # relative to the home, POSIX
    kind: str  # "notebook" | "script"
    content: Any  # the notebook's JSON (a dict) or the script's text

    def body(self) -> dict[str, Any]:
        """The ``path`` and ``notebook``/``script`` fields of a job request."""
        return {"path": self.path, self.kind: self.content}


# -- argument types ---------------------------------------------------------------------


def parse_duration(text: str, *, least: float = 1) -> int:
    """``--max-runtime``: ``90s``, ``30m``, ``2h``, ``1d``, ``1.5h`` or plain seconds."""
    m = _DURATION.fullmatch(text.strip().lower())
    seconds = float(m.group(1)) * DURATION_UNITS[m.group(2) or "s"] if m else -1.0
    if not m or not math.isfinite(seconds) or seconds < least:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration such as 90s, 30m, 2h, 1d or a number of seconds"
        )
    return round(seconds)


def parse_wait(text: str) -> int:
    """``--backoff``: a duration as :func:`parse_duration` takes it, or 0 (no wait)."""
    return parse_duration(text, least=0)


def parse_retry(text: str) -> dict[str, int]:
    """``--retry preempted=10,node_failed=2,failed=1``: the most retries per failure class
    (``preempted``, ``node_failed``, ``failed``, ``out_of_memory``), each a whole number;
    the service checks the bounds."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = (x.strip() for x in part.partition("="))
        if name not in JOB_RETRY_CLASSES or not sep or not count.isdigit():
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not CLASS=N with CLASS one of {', '.join(JOB_RETRY_CLASSES)}"
                " and N a whole number, e.g. preempted=10,failed=1"
            )
        if name in out:
            raise argparse.ArgumentTypeError(f"{name} is given twice in {text!r}")
        out[name] = int(count)
    return out


def retry_policy(
    classes: list[dict[str, int]] | None, backoff: int | None, backoff_max: int | None
) -> dict[str, int] | None:
    """The ``retry`` field from ``--retry`` (repeatable), ``--backoff`` and
    ``--backoff-max``; None when none was given (the service's defaults apply)."""
    policy: dict[str, int] = {}
    for given in classes or ():
        twice = set(given) & set(policy)
        if twice:
            raise CliError(f"--retry: {sorted(twice)[0]} is given twice")
        policy.update(given)
    if backoff is not None:
        policy["backoff_s"] = backoff
    if backoff_max is not None:
        policy["backoff_max_s"] = backoff_max
    return policy or None


def _constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are no JSON values: keep them as text


def parse_value(text: str) -> Any:
    """A parameter's value: JSON when it parses (``0.01``, ``true``, ``[1,2]``, ``"x"``,
    ``null``), else the text as it is."""
    try:
        return json.loads(text, parse_constant=_constant)
    except ValueError:
        return text


def parse_param(text: str) -> tuple[str, Any]:
    """``-p name=value``: (name, value); the name must be a Python identifier."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=value")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a parameter name: names are Python identifiers, such as lr or epochs"
        )
    return name, parse_value(value)


def parameters(pairs: list[tuple[str, Any]] | None) -> dict[str, Any]:
    """The ``-p`` pairs as one mapping; a name given twice is refused."""
    out: dict[str, Any] = {}
    for name, value in pairs or ():
        if name in out:
            raise CliError(f"parameter {name} is given twice (-p {name}=...)")
        out[name] = value
    return out


# -- the file ---------------------------------------------------------------------------


def home_dir(env: dict[str, str] | None = None) -> Path:
    """The real path of ``$HOME``."""
    home = (env if env is not None else os.environ).get("HOME") or os.path.expanduser("~")
    if not home or not os.path.isdir(home):
        raise CliError("cannot tell your home folder: $HOME is not set to a folder")
    return Path(os.path.realpath(home))


def resolve_in_home(path: str, *, home: Path, cwd: Path | None = None) -> tuple[Path, str]:
    """(real path, path relative to the home) of ``path``; refused unless inside ``home``.

    ``path`` is taken relative to ``cwd`` (the current folder); ``~`` is the home. Every
    symlink on the way is resolved, so a link that points out of the home is refused.
    """
    if not path or "\0" in path:
        raise CliError("PATH is empty: give the notebook or script to run")
    if path == "~" or path.startswith("~/"):
        path = str(home) + path[1:]
    given = Path(cwd or os.getcwd()) / os.path.expanduser(path)
    real = Path(os.path.realpath(given))
    inside = real != home and os.path.commonpath([str(home), str(real)]) == str(home)
    if not inside:
        plain = Path(os.path.normpath(given))
        linked = plain != real and plain.is_relative_to(home)
        how = f"links to {real}, which is" if linked else "is"
        raise CliError(
            f"{path} {how} outside your home folder {home}: a job runs only notebooks "
            "and scripts in your home"
        )
    return real, PurePosixPath(*real.relative_to(home).parts).as_posix()


def read_source(path: str, *, home: Path, cwd: Path | None = None) -> JobSource:
    """The notebook or script at ``path`` (see :func:`resolve_in_home`), checked and read
    as the extension reads it (:mod:`gpuhub.jobs.snapshot`)."""
    real, rel = resolve_in_home(path, home=home, cwd=cwd)
    if snapshot.kind_of(real) is None:
        raise CliError(
            f"{path} is not a notebook or a script: a job runs a .ipynb notebook or a .py script"
        )
    if not real.exists():
        raise CliError(f"{path}: no such file")
    if not real.is_file():
        raise CliError(f"{path} is not a file")
    size = real.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise CliError(snapshot.too_large(path, size).message)
    try:
        kind, content = snapshot.read(real, path)
    except snapshot.SnapshotError as e:
        raise CliError(e.message) from None
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from e
    return JobSource(rel, kind, content)

"""The files of a job from JupyterLab: which paths may run, and what is sent.

The browser names a notebook or script by its path in the server's contents root; the
server reads it (the snapshot: later edits do not change the job) and submits it to the
gpuhub service, which never reads users' files. So every check on the path happens here,
before anything is sent:

* the path is relative (no leading ``/`` or ``~``), has no ``.``/``..``/empty segment, no
  control character or backslash, and ends in ``.ipynb`` or ``.py``;
* its real path (symlinks resolved) stays inside the real contents root;
* it is a regular file the size a job takes, and a notebook is valid nbformat 4 (read by
  :mod:`gpuhub.jobs.snapshot`, as ``gpuhub job submit`` reads it).

Paths in the service's answers are relative to the user's home; :func:`localize` gives
them relative to the server's root again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from gpuhub.jobs import snapshot


class Refused(Exception):
    """A request refused before anything reached the service: 400 with ``message``."""

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def check_path(path: Any) -> str:
    """``path`` if it is a relative POSIX path to a ``.ipynb``/``.py`` file; else
    :class:`Refused` naming the problem."""
    if not isinstance(path, str) or not path:
        raise Refused("path must name a notebook (.ipynb) or script (.py).")
    if len(path) > 1024:
        raise Refused("path is longer than 1024 characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in path) or "\\" in path:
        raise Refused("path must not contain control characters or backslashes.")
    if path.startswith(("/", "~")):
        raise Refused(f"path {path!r} is absolute; give it relative to the server's root folder.")
    parts = path.split("/")
    if ".." in parts:
        raise Refused(f"path {path!r} contains '..'; it must stay inside the server's root folder.")
    if any(p in ("", ".") for p in parts):
        raise Refused(f"path {path!r} has an empty or '.' segment.")
    if snapshot.kind_of(path) is None:
        raise Refused(
            f"path {path!r} is not a notebook (.ipynb) or a Python script (.py); "
            "only those run as jobs."
        )
    return path


def resolve(root: str, path: Any) -> Path:
    """The real file of ``path`` inside ``root``: checked, inside the root after symlinks,
    a regular file the size a job takes (:data:`gpuhub.jobs.snapshot.MAX_SOURCE_BYTES`)."""
    path = check_path(path)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / path))
    if real != real_root and real_root not in real.parents:
        raise Refused(f"path {path!r} leads outside the server's root folder (a symlink?).")
    try:
        st = real.stat()
    except FileNotFoundError:
        raise Refused(f"path {path!r} does not exist.") from None
    except OSError as e:
        raise Refused(f"path {path!r} cannot be read: {e.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"path {path!r} is not a file.")
    if st.st_size > snapshot.MAX_SOURCE_BYTES:
        raise Refused(snapshot.too_large(f"path {path!r}", st.st_size).message + ".")
    return real


def read_snapshot(real: Path, path: str) -> dict[str, Any]:
    """``{"notebook": ...}`` or ``{"script": ...}``: the file's content as the service takes
    it, read as the CLI reads it (:mod:`gpuhub.jobs.snapshot`); :class:`Refused` for an
    invalid notebook or a script that is not UTF-8."""
    try:
        kind, content = snapshot.read(real, f"path {path!r}")
    except snapshot.SnapshotError as e:
        raise Refused(e.message + ".") from None
    except OSError as e:
        raise Refused(f"path {path!r} cannot be read: {e.strerror}.") from None
    return {kind: content}


def home_prefix(root: str, home: str | None = None) -> str:
    """The server's root folder relative to the user's home ("" when it is the home, or
    not inside it): the service takes paths relative to the home."""
    real_root = Path(os.path.realpath(root))
    real_home = Path(os.path.realpath(home or os.path.expanduser("~")))
    if real_root == real_home or real_home not in real_root.parents:
        return ""
    return real_root.relative_to(real_home).as_posix()


def localize(answer: Any, prefix: str) -> Any:
    """Give each job view of ``answer`` (a job, or ``{"jobs": [...]}``) a ``local`` object:
    its ``path``, ``output_notebook`` and ``folder`` relative to the server's root folder
    (None where outside it), as the front end opens them."""
    if isinstance(answer, dict) and isinstance(answer.get("jobs"), list):
        for job in answer["jobs"]:
            localize(job, prefix)
        return answer
    if not isinstance(answer, dict) or "path" not in answer:
        return answer

    def local(path: Any) -> str | None:
        if not isinstance(path, str) or not prefix:
            return path if isinstance(path, str) else None
        return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None

    answer["local"] = {k: local(answer.get(k)) for k in ("path", "output_notebook", "folder")}
    return answer

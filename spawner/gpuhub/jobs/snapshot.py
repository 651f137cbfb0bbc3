"""A job's snapshot: the notebook or script a job runs, read on the user's side.

The service never reads users' files: the CLI (``gpuhub job submit``) and the JupyterLab
extension (``POST gpuhub/api/v1/jobs``) both read the file and send its content. Both read
it here, so a file one of them takes the other takes too, and both refuse the same files
with the same sentence:

* only ``.ipynb`` (a valid nbformat 4 notebook) and ``.py`` (UTF-8 text) run as jobs;
* at most :data:`MAX_SOURCE_BYTES` (the service's limit on a request body).

Where the file may be (inside the home, inside the server's root folder) is each caller's
own rule; this module reads a file that has passed it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["KINDS", "MAX_SOURCE_BYTES", "SnapshotError", "check_notebook", "kind_of", "read"]

#: The largest notebook or script a job takes.
MAX_SOURCE_BYTES = 16 * 2**20
#: What runs as a job, by suffix.
KINDS = {".ipynb": "notebook", ".py": "script"}


class SnapshotError(ValueError):
    """A file that cannot run as a job; ``message`` is the sentence to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def kind_of(path: str | Path) -> str | None:
    """``notebook``, ``script``, or None when the suffix is neither ``.ipynb`` nor ``.py``."""
    return KINDS.get(PurePosixPath(str(path)).suffix)


def too_large(name: str, size: int) -> SnapshotError:
    """The refusal of a file of ``size`` bytes."""
    return SnapshotError(
        f"{name} is {size / 2**20:.1f} MiB, larger than the {MAX_SOURCE_BYTES // 2**20} MiB a "
        "job takes; clear its outputs, or keep data in files"
    )


def read(real: Path, name: str) -> tuple[str, Any]:
    """(kind, content) of the file ``real``: a notebook's JSON (a dict) or a script's text.

    ``name`` is how the caller names the file in a refusal (the path as the person gave
    it). Raises :class:`SnapshotError`; an ``OSError`` of the read passes through.
    """
    kind = kind_of(real)
    if kind is None:
        raise SnapshotError(
            f"{name} is not a notebook or a script: a job runs a .ipynb notebook or a .py script"
        )
    with real.open("rb") as f:
        data = f.read(MAX_SOURCE_BYTES + 1)  # bounded even if the file grew since a check
    if len(data) > MAX_SOURCE_BYTES:
        raise too_large(name, real.stat().st_size)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SnapshotError(f"{name} is not UTF-8 text (byte {e.start})") from None
    if kind == "script":
        return kind, text
    return kind, check_notebook(text, name)


def check_notebook(text: str, name: str) -> dict[str, Any]:
    """The notebook's JSON if it is a valid nbformat 4 notebook; :class:`SnapshotError`
    otherwise."""
    try:  # the hub and the extension have it; a bare CLI install may not
        import nbformat
    except ImportError:
        raise SnapshotError(
            "checking a notebook needs the nbformat package: pip install nbformat"
        ) from None
    try:
        content = json.loads(text)
    except ValueError as e:
        raise SnapshotError(f"{name} is not a valid notebook: it is not JSON ({e})") from None
    if not isinstance(content, dict) or content.get("nbformat") != 4:
        found = content.get("nbformat") if isinstance(content, dict) else None
        raise SnapshotError(
            f"{name} is not a valid notebook: it is nbformat {found}, and jobs run nbformat 4; "
            "open and save it in JupyterLab to upgrade it"
        )
    try:
        with warnings.catch_warnings():  # cells without ids (nbformat < 4.5) are fine
            warnings.simplefilter("ignore")
            nbformat.validate(nbformat.from_dict(content), version=4)
    except nbformat.ValidationError as e:
        detail = " ".join(str(e.message).split())[:200]
        raise SnapshotError(f"{name} is not a valid notebook: {detail}") from None
    return content

"""Checkpoints and preemption notices for batch jobs: ``from gpuhub import checkpoint``.

A job on spot (preemptible) GPUs is stopped when guaranteed work needs them:

1. **notice**: gpuhub writes a JSON file at ``$GPUHUB_PREEMPT_FILE`` (``reason``,
   ``notice_at``, ``deadline``, ``grace_s``, ``attempt``) and sends SIGUSR1 to the job's
   process (the script's Python, or the kernel of a notebook job);
2. **grace**: until the deadline (120 s by default) the job may save a checkpoint;
3. then SIGTERM, then SIGKILL. The job ends ``preempted`` and is queued again: the next
   attempt (``$GPUHUB_ATTEMPT`` 2, 3, ...) runs with the same ``$GPUHUB_OUTPUT_DIR`` and
   goes on from the newest checkpoint there.

SIGUSR1 goes only to the job's processes that handle it (Python's default action would end
the process at once): a job that does not watch for the notice runs on until SIGTERM at
the deadline and loses what it did since its last checkpoint. A job that watches saves
and stops::

    from gpuhub import checkpoint

    found = checkpoint.latest()                 # None on a first run
    state = found.load() if found else new_state()
    start = found.step if found else 0
    with checkpoint.on_notice():                # SIGUSR1 (and SIGTERM) only set a flag
        for step in range(start + 1, steps + 1):
            train_step(state)
            if step % 500 == 0 or checkpoint.notice_given():
                checkpoint.save(state, step)    # atomic; the newest 3 are kept
            if checkpoint.notice_given():
                break                           # the next attempt goes on from here

Checkpoints are ``checkpoint-<step:08d>.pt`` files in :func:`folder`, written with
``torch.save`` when this program has imported torch, else with pickle. The standard
library is all this module needs: it never imports torch to save, only to load a
checkpoint that torch wrote.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

__all__ = [
    "Checkpoint",
    "Watch",
    "attempt",
    "folder",
    "latest",
    "notice",
    "notice_given",
    "on_notice",
    "save",
]

#: A finished checkpoint; what ``save`` writes first (``.checkpoint-...tmp``) never matches.
_NAME = re.compile(r"checkpoint-(\d{8,})\.pt")
_TEMP = re.compile(r"\.checkpoint-(\d{8,})\.pt\.[0-9a-f]+\.tmp")
#: How a file that ``torch.save`` wrote begins (a zip archive); pickle's begins with 0x80.
_ZIP_MAGIC = b"PK\x03\x04"

#: The notice signal that came while a handler of :func:`on_notice` was installed. It
#: stays set: a job that was given notice is stopped, whatever it does next.
_signalled: int | None = None


def folder() -> Path:
    """Where checkpoints go: ``$GPUHUB_OUTPUT_DIR/checkpoints`` in a job, else
    ``./checkpoints`` (absolute). ``save`` creates it."""
    output = os.environ.get("GPUHUB_OUTPUT_DIR")
    return (Path(output) if output else Path.cwd()) / "checkpoints"


def attempt() -> int:
    """Which attempt of the job this is: 1, then 2, 3, ... after each preemption
    (``$GPUHUB_ATTEMPT``; 1 outside a job)."""
    return int(os.environ.get("GPUHUB_ATTEMPT") or 1)


@dataclass(frozen=True)
class Checkpoint:
    """A saved checkpoint: its ``step``, its file (``path``), and ``load()``."""

    step: int
    path: Path

    def load(self, map_location: Any = None) -> Any:
        """The saved state: ``torch.load(..., weights_only=False)`` (``map_location``, such
        as ``"cpu"``, says where tensors go) for a file torch wrote, else ``pickle.load``.
        Both run code from the file: load only checkpoints you (or your jobs) wrote."""
        with open(self.path, "rb") as f:
            torch_wrote = f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
            f.seek(0)
            if not torch_wrote:
                return pickle.load(f)
            import torch

            return torch.load(f, map_location=map_location, weights_only=False)


def _where(given: str | os.PathLike[str] | None) -> Path:
    return Path(given).expanduser() if given is not None else folder()


def _checkpoints(where: Path) -> list[Checkpoint]:
    """The checkpoints in ``where``, oldest (lowest step) first; none if it is no folder."""
    try:
        entries = list(os.scandir(where))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [
        Checkpoint(int(m.group(1)), where / e.name)
        for e in entries
        if (m := _NAME.fullmatch(e.name)) and e.is_file()
    ]
    return sorted(found, key=lambda c: c.step)


def latest(folder: str | os.PathLike[str] | None = None) -> Checkpoint | None:
    """The checkpoint of the highest step in ``folder`` (default :func:`folder`), or None.

    ``folder`` may also be a job's output folder (an earlier job's ``artifacts/``): when it
    holds no checkpoint itself, its ``checkpoints/`` folder is looked in. Files of a save
    that never finished are not checkpoints and are never returned."""
    where = _where(folder)
    found = _checkpoints(where) or _checkpoints(where / "checkpoints")
    return found[-1] if found else None


def _dump(state: Any, f: BinaryIO) -> None:
    torch = sys.modules.get("torch")  # the state can hold tensors only if torch is loaded
    if torch is not None:
        torch.save(state, f)
    else:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)


def _fsync_folder(where: Path) -> None:
    """Make the rename durable: a machine that fails right after keeps the new name."""
    try:
        fd = os.open(where, os.O_RDONLY)
    except OSError:  # a system without directories to open (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(
    state: Any,
    step: int,
    *,
    keep: int | None = 3,
    folder: str | os.PathLike[str] | None = None,
) -> Path:
    """Save ``state`` as the checkpoint of ``step`` (an int >= 0: an epoch, a global step)
    in ``folder`` (default :func:`folder`, created if missing); its path.

    Atomic: the state goes to a temporary file, flushed to disk (fsync), which then takes
    the name ``checkpoint-<step:08d>.pt`` (``os.replace``), so a job stopped mid-save
    leaves the previous checkpoints as they were and :func:`latest` never picks a partial
    file. A checkpoint of the same step is replaced. Then only the newest ``keep``
    checkpoints (by step; ``None``: all) stay, and the one just saved always does; the
    temporary files of stopped saves of earlier steps are removed. Save from one process
    of a job (rank 0 of a multi-GPU job)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"a checkpoint's step is an int >= 0, not {step!r}")
    if keep is not None and keep < 1:
        raise ValueError(f"keep is the number of checkpoints to keep (>= 1, or None), not {keep!r}")
    where = _where(folder)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"checkpoint-{step:08d}.pt"
    temp = where / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: a name nobody else writes; 0o666 less the umask, as open() would make it
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(where)
    _prune(where, step, keep)
    return path


def _prune(where: Path, saved: int, keep: int | None) -> None:
    """Remove all but the newest ``keep`` checkpoints (never step ``saved``), and what
    stopped saves of steps before ``saved`` left."""
    if keep is not None:
        for old in _checkpoints(where)[:-keep]:
            if old.step != saved:
                old.path.unlink(missing_ok=True)
    for name in os.listdir(where):
        m = _TEMP.fullmatch(name)
        if m and int(m.group(1)) < saved:
            (where / name).unlink(missing_ok=True)


def notice_given() -> bool:
    """Whether the job has been given notice: SIGUSR1 (or SIGTERM) came while
    :func:`on_notice` watched, or gpuhub's notice file (:func:`notice`) is there. Cheap
    enough to ask at every step: one failed ``open`` until a notice comes."""
    return _signalled is not None or notice() is not None


def notice() -> dict[str, Any] | None:
    """gpuhub's notice, parsed from ``$GPUHUB_PREEMPT_FILE``: ``{"reason": "preempted",
    "notice_at": ..., "deadline": ..., "grace_s": 120, "attempt": 1}`` (times in ISO 8601,
    UTC); None without one, or when it was given to an earlier attempt. ``{}`` when the
    file cannot be parsed (yet): there is a notice, but not its details."""
    given = os.environ.get("GPUHUB_PREEMPT_FILE")
    if not given:
        return None
    try:
        text = Path(given).read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    if data.get("attempt") not in (None, attempt()):
        return None  # left from an attempt before this one
    return data


class Watch:
    """What :func:`on_notice` gives: a context manager that catches the notice signals
    while it is entered, and ``check()``, which makes the save once notice is given.

    ``catching`` are the signals it installed handlers for (none outside the main thread,
    where only the notice file tells), ``received`` the first that came (or None), and
    ``saved`` what ``save`` returned."""

    def __init__(self, save: Callable[[], object] | None = None, *, sigterm: bool = True) -> None:
        self.save = save
        self.wanted = (signal.SIGUSR1, signal.SIGTERM) if sigterm else (signal.SIGUSR1,)
        self.catching: tuple[int, ...] = ()
        self.received: int | None = None
        self.saved: object = None
        self._called = False
        self._terminated = False
        self._previous: dict[int, Any] = {}

    def given(self) -> bool:
        """Whether notice has been given (:func:`notice_given`)."""
        return notice_given()

    def check(self) -> bool:
        """True once notice has been given, after calling ``save`` (once: later calls only
        return True), for the loop to stop; False until then."""
        if not notice_given():
            return False
        if self.save is not None and not self._called:
            self._called = True  # a save that raised is not tried again at every step
            self.saved = self.save()
        return True

    def caught(self, signum: int, _frame: FrameType | None) -> None:
        """The signal handler: remember the notice, for the loop to save and stop."""
        global _signalled
        _signalled = _signalled or signum
        self.received = self.received or signum
        self._terminated = self._terminated or signum == signal.SIGTERM

    def __enter__(self) -> Watch:
        for signum in self.wanted:
            try:
                self._previous[signum] = signal.signal(signum, self.caught)
            except ValueError:  # not the main thread: only the notice file tells
                break
        self.catching = tuple(self._previous)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            # None: a handler Python did not install; the default is the nearest there is
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
        if self._terminated:
            self._terminated = False
            signal.raise_signal(signal.SIGTERM)  # held back until now: the job stops as asked


def on_notice(save: Callable[[], object] | None = None, *, sigterm: bool = True) -> Watch:
    """Watch for the preemption notice in a ``with`` block: SIGUSR1 then only sets a flag
    (:func:`notice_given`), and with ``save`` given, ``watch.check()`` calls it once and
    returns True so the loop can stop. The previous handlers come back when the block ends.

    ``sigterm`` (default True) treats SIGTERM in the block as notice too — it is how every
    other stop begins (a cancel, the maximum runtime, Slurm's time limit, a deadline that
    passed) — and delivers it again when the block ends, so the process still stops as
    asked, with its checkpoint saved. In a thread other than the main one no handler can
    be installed: the notice is then seen through gpuhub's notice file only, and SIGUSR1
    still ends the process unless the main thread watches too.
    """
    return Watch(save, sigterm=sigterm)

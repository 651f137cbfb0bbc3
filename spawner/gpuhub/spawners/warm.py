"""The warm pool: local JupyterLab servers started ahead of demand, claimed by a spawn.

A local server's start is mostly Python importing JupyterLab, Jupyter Server and the
extensions; a warm server (``python -m jupyter_gpuhub.warm``) has done that as nobody and
waits. A spawn that finds one claims it: the spawner sends the user's whole environment
(token, user, lease, GPUs), home and arguments down its standard input, and the server
starts from there, ready in a fraction of a cold start's time. The pool then starts a
replacement. What makes it safe to hand a pre-started process to a user:

* **Nothing of anyone's before the claim.** A warm server starts with the pool's neutral
  environment (no user, token, lease or GPU) in an empty folder of the pool's; identity,
  token, home and GPUs arrive with the claim, chosen for that user at that moment.
* **One claim, one user.** The hub's event loop takes a server out of the pool before it
  writes the claim (no await in between), and a warm server reads one claim and becomes
  that server: nobody else can claim it, and nothing returns to the pool.
* **Nothing outlives the hub.** Only the hub holds a warm server's standard input; when
  the pool lets a server go, or the hub stops or dies, the server reads the end of it and
  exits. A killed warm server is noticed (its status pipe closes) and replaced.
* **Same process as a cold start.** The claimed server runs ``jupyterhub-singleuser`` of
  the same Python with the same arguments, environment and folder; the variables read at
  import are checked to be the same (else that spawn starts cold).

How many warm servers to keep is configuration (:class:`WarmRule`): per profile (or for
any profile), by day of the week and time of day, e.g. more before a lab starts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jupyter_gpuhub import warm as runner  # the warm server's side of the protocol

#: A rule's key for "whichever profile claims it".
ANY = "*"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
#: The warm server's command (the local spawner's default command, warmed).
WARM_MODULE = runner.__name__
#: The exit status of a warm server refusing a claim; the variables it checks.
MISMATCH = runner.MISMATCH
IMPORT_TIME_ENV = runner.IMPORT_TIME_ENV
#: What the hub logs when a warm server has done its imports and waits for a claim.
WARM_LOG = "warm pool: server %d is warm"


def _days(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"mon,wed-fri"`` as weekday numbers (Monday 0)."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"days {text!r}: use mon..sun, ranges (mon-fri) and commas")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@dataclass(frozen=True)
class WarmRule:
    """How many warm servers to keep for a profile (or ``*``: any), on some days, at some
    hours (``"08:30-10:00"``, end excluded; ``"22:00-02:00"`` runs past midnight)."""

    profile: str
    size: int
    days: frozenset[int] = frozenset(range(7))
    start: int = 0  # minutes after midnight
    end: int = 24 * 60

    @classmethod
    def parse(cls, item: Any) -> WarmRule:
        """A rule from its configuration: ``{"size": 2, "profile": "gpu-1", "days":
        "mon-fri", "hours": "08:00-10:00"}`` (only ``size`` is required)."""
        if not isinstance(item, dict):
            raise ValueError(f"a warm pool rule is an object, not {item!r}")
        unknown = set(item) - {"profile", "size", "days", "hours"}
        if unknown:
            raise ValueError(f"warm pool rule {item!r}: unknown key(s) {sorted(unknown)}")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 1000:
            raise ValueError(f"warm pool rule {item!r}: size is a whole number from 0 to 1000")
        profile = item.get("profile", ANY)
        if not isinstance(profile, str) or not profile:
            raise ValueError(f"warm pool rule {item!r}: profile is a profile's name")
        days = item.get("days", "mon-sun")
        if not isinstance(days, str):
            raise ValueError(f"warm pool rule {item!r}: days is text such as 'mon-fri'")
        hours = item.get("hours", "00:00-24:00")
        m = _HOURS.match(hours) if isinstance(hours, str) else None
        start, end = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])) if m else (0, -1)
        if not 0 <= end <= 24 * 60:
            raise ValueError(f"warm pool rule {item!r}: hours is 'HH:MM-HH:MM' (24-hour clock)")
        if start == end:
            raise ValueError(f"warm pool rule {item!r}: hours {hours!r} is an empty span")
        return cls(profile, size, _days(days), start, end)

    def applies(self, when: dt.datetime) -> bool:
        """Whether the rule holds at ``when`` (a local time of the pool's zone)."""
        minute = when.hour * 60 + when.minute
        if self.start < self.end:
            return when.weekday() in self.days and self.start <= minute < self.end
        # past midnight: the evening belongs to the day named, the small hours to the next
        if minute >= self.start:
            return when.weekday() in self.days
        return minute < self.end and (when.weekday() - 1) % 7 in self.days


def parse_rules(items: Iterable[Any]) -> list[WarmRule]:
    """The configured rules, each checked (``ValueError`` names the bad one)."""
    return [WarmRule.parse(item) for item in items]


def sizes_at(rules: Iterable[WarmRule], when: dt.datetime) -> dict[str, int]:
    """Warm servers to keep per profile key at ``when``: the largest size among the rules
    that hold then (a profile no rule names keeps none)."""
    sizes: dict[str, int] = {}
    for rule in rules:
        if rule.applies(when):
            sizes[rule.profile] = max(sizes.get(rule.profile, 0), rule.size)
    return sizes


def zone(name: str) -> dt.tzinfo:
    """The pool's time zone: an IANA name, or this machine's own zone for ``""``."""
    if not name:
        local = dt.datetime.now().astimezone().tzinfo
        return local if local is not None else dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"warm pool time zone {name!r} is not an IANA zone name") from e


class WarmServer:
    """One pre-started server process: its ``Popen``, and what its status pipe said."""

    def __init__(
        self,
        neutral_env: dict[str, str],
        cwd: str,
        on_exit: Callable[[WarmServer], None] | None = None,
    ) -> None:
        self.on_exit = on_exit
        read_fd, write_fd = os.pipe()
        env = {**neutral_env, "GPUHUB_WARM_FD": str(write_fd)}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", WARM_MODULE],
                stdin=subprocess.PIPE,
                env=env,
                cwd=cwd,
                pass_fds=(write_fd,),
                start_new_session=True,  # like a cold server: the hub's signals are not its
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        self.warm: asyncio.Future[None] = loop.create_future()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.claimed = False
        self._fd, self._buffer, self._loop = read_fd, b"", loop
        loop.add_reader(read_fd, self._read)

    @property
    def alive(self) -> bool:
        """Running, and its status pipe still open."""
        return self._fd >= 0 and self.proc.poll() is None

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            data = b""
        if not data:  # the process exited (or closed the pipe): nothing more will come
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            for future in (self.warm, self.ready):
                if not future.done():
                    future.set_exception(ProcessLookupError("the warm server exited"))
                    future.exception()  # (read: nobody may be waiting)
            if self.on_exit is not None:
                self.on_exit(self)
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            future = {b"warm": self.warm, b"ready": self.ready}.get(line.strip())
            if future is not None and not future.done():
                future.set_result(None)

    def claim(self, env: dict[str, str], cwd: str, argv: list[str]) -> None:
        """Hand the server to one user: their environment, home and arguments."""
        self.claimed = True
        message = json.dumps({"env": env, "cwd": cwd, "argv": argv}) + "\n"
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(message.encode())
            self.proc.stdin.close()
        except OSError:  # it died meanwhile: the ready wait says so
            pass

    def release(self) -> None:
        """Let it go unclaimed: its standard input ends, and it exits."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


class WarmPool:
    """The warm servers of one hub process, kept at the sizes its rules give for now.

    ``refill()`` tops each profile key up (one start at a time, so a refill never takes
    the CPUs from the spawns it is there to speed up) and lets surplus servers go; it runs
    after every claim, when a warm server dies, and every ``check_s`` seconds (for rules
    by time of day). ``now`` is the clock (injected in tests).
    """

    def __init__(
        self,
        rules: list[WarmRule],
        neutral_env: dict[str, str],
        *,
        tz: dt.tzinfo,
        now: Callable[[], dt.datetime] | None = None,
        check_s: float = 60.0,
        log: Any = None,
    ) -> None:
        self.rules = rules
        self.neutral_env = neutral_env
        self.tz = tz
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.check_s = check_s
        self.log = log
        self.cwd = tempfile.mkdtemp(prefix="gpuhub-warm-")  # empty, and nobody's
        self.servers: dict[str, deque[WarmServer]] = {}
        self._let_go: list[subprocess.Popen] = []  # exiting: reaped by later refills
        self._refilling: asyncio.Task | None = None
        self._again = False
        self._ticker: asyncio.Task | None = None

    def targets(self) -> dict[str, int]:
        """How many warm servers each profile key should have now."""
        return sizes_at(self.rules, self.now().astimezone(self.tz))

    def warm_count(self, key: str | None = None) -> int:
        """Warm (pre-started, unclaimed, alive) servers, of ``key`` or of all keys."""
        keys = [key] if key is not None else list(self.servers)
        return sum(
            1
            for k in keys
            for s in self.servers.get(k, ())
            if s.alive and s.warm.done() and not s.warm.exception()
        )

    def start(self) -> None:
        """Fill the pool now and keep it filled (idempotent)."""
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        self.refill()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            self.refill()

    def claim(self, profile: str) -> WarmServer | None:
        """A warm server for ``profile`` (its own first, then any profile's), taken out of
        the pool; None when there is none. Synchronous: no two spawns get the same one."""
        found = None
        for key in (profile, ANY):
            queue = self.servers.get(key, deque())
            while queue and found is None:
                server = queue.popleft()
                if server.alive and server.warm.done() and not server.warm.exception():
                    found = server
                elif server.alive and not server.warm.done():
                    queue.append(server)  # still starting: leave it for a later spawn
                    break
                else:
                    self._release(server)
            if found is not None:
                break
        self.refill()
        return found

    def refill(self) -> None:
        """Start the refill in the background unless one runs (then it goes round again)."""
        if self._refilling is not None and not self._refilling.done():
            self._again = True
            return
        self._refilling = asyncio.ensure_future(self._refill())

    async def _refill(self) -> None:
        while True:
            self._again = False
            try:
                await self._refill_once()
            except Exception:
                if self.log is not None:
                    self.log.exception("warm pool: refill failed")
                return
            if not self._again:
                return

    async def _refill_once(self) -> None:
        self._let_go = [proc for proc in self._let_go if proc.poll() is None]
        targets = self.targets()
        for key in set(self.servers) | set(targets):
            queue = self.servers.setdefault(key, deque())
            for server in [s for s in queue if not s.alive]:
                queue.remove(server)
                self._release(server)
            while len(queue) > targets.get(key, 0):
                self._release(queue.pop())  # the newest first: the oldest are the warmest
        for key, size in sorted(targets.items()):
            queue = self.servers[key]
            while len(queue) < size:
                server = WarmServer(self.neutral_env, self.cwd, on_exit=self._exited)
                queue.append(server)
                try:
                    await asyncio.wait_for(asyncio.shield(server.warm), 120)
                except (TimeoutError, ProcessLookupError):
                    if server in queue:
                        queue.remove(server)
                    self._release(server)
                    if self.log is not None:
                        self.log.warning("warm pool: a warm server did not start; retrying later")
                    return
                if self.log is not None:
                    self.log.info(WARM_LOG + " (profile %s)", server.proc.pid, key)
                size = self.targets().get(key, 0)  # the rules may have moved on meanwhile

    def _exited(self, server: WarmServer) -> None:
        """An unclaimed warm server died (killed, out of memory...): replace it."""
        if not server.claimed:
            self.refill()

    def _release(self, server: WarmServer) -> None:
        server.release()
        self._let_go.append(server.proc)

    def close(self) -> None:
        """Let every unclaimed warm server go (the hub stops)."""
        if self._ticker is not None:
            self._ticker.cancel()
        for queue in self.servers.values():
            while queue:
                self._release(queue.pop())

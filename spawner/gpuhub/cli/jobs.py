"""The batch-job commands: ``gpuhub jobs`` and ``gpuhub job submit|show|log|cancel|...``.

``job submit`` snapshots a notebook or script from the user's home (:mod:`.job_input`)
and sends it to ``POST /jobs`` (or, with ``--schedule``, ``POST /job-definitions``);
the others read and act on jobs and schedules through the API. The service's refusals
name API fields (``max_runtime_s``); :func:`in_cli_words` puts the command's own flags
(``--max-runtime``) in their place.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client import GpuhubClient, GpuhubError
from ..terms import JOB_RETRY_CLASSES, JOB_STATUSES
from . import job_render as r
from .commands import CliError, emit_json
from .job_input import (
    home_dir,
    parameters,
    parse_duration,
    parse_param,
    parse_retry,
    parse_wait,
    read_source,
    retry_policy,
)
from .tables import duration_text

#: Seconds between two reads of a log that ``job log --follow`` waits on.
FOLLOW_INTERVAL = 1.0
#: Bytes asked for per page of a log.
LOG_PAGE = 65536

#: The command's flag for each request field the service may blame.
FLAG_OF_FIELD = {
    "path": "PATH",
    "notebook": "PATH",
    "script": "PATH",
    "profile": "--profile",
    "gpus": "--gpus",
    "nodes": "--nodes",
    "shape": "--gpus/--mig/--shared",
    "shape.count": "--gpus",
    "shape.nodes": "--nodes",
    "shape.profile": "--mig",
    "parameters": "-p",
    "max_runtime_s": "--max-runtime",
    "name": "--name",
    "schedule": "--schedule",
    "user": "--user",
    "status": "--status",
    "tier": "--spot",
    "retry": "--retry",
    "retry.backoff_s": "--backoff",
    "retry.backoff_max_s": "--backoff-max",
    **{f"retry.{name}": f"--retry {name}" for name in JOB_RETRY_CLASSES},
}

#: How a message that starts with the field names it instead (``parameters (-p): ...``).
LEADING_OF_FIELD = {"parameters": "parameters (-p)"}

#: ``time.sleep``, replaced in tests.
sleep: Callable[[float], None] = time.sleep


def flag_of(field: str | None) -> str | None:
    """The flag of an API field: ``max_runtime_s`` → ``--max-runtime``,
    ``parameters.lr`` → ``-p lr``; None for a field the command has no flag for."""
    if not field:
        return None
    if field in FLAG_OF_FIELD:
        return FLAG_OF_FIELD[field]
    head, _, rest = field.partition(".")
    if head == "parameters" and rest:
        return f"-p {rest}"
    return FLAG_OF_FIELD.get(head)


def _seconds(m: re.Match) -> str:
    return f"{m.group(1)} s ({duration_text(int(m.group(1)))})"


def in_cli_words(error: GpuhubError) -> GpuhubError:
    """The service's refusal with the API field it names replaced by the command's flag."""
    flag = flag_of(error.field)
    if flag is None or error.field is None:
        return error
    message = error.message
    field = re.escape(error.field)
    quoted = re.compile(rf"(['\"`]){field}\1")
    leading = re.compile(rf"^{field}(?=:)")
    named = re.compile(rf"(?<![\w.-]){field}(?![\w])")
    if quoted.search(message):
        message = quoted.sub(flag, message)
    elif leading.search(message):
        message = leading.sub(LEADING_OF_FIELD.get(error.field, flag), message)
    elif ("_" in error.field or "." in error.field) and named.search(message):
        message = named.sub(flag, message)
    elif flag not in message:
        message = f"{message} ({flag})"
    if error.field == "max_runtime_s":  # the API counts seconds; say how long that is
        message = re.sub(r"\b(\d{2,})(?: ?(?:seconds|s))?\b", _seconds, message)
    error.message = message
    error.args = (message,)
    return error


def _shape(args: argparse.Namespace, nodes: int | None = None) -> dict[str, Any] | None:
    if args.gpus is not None:
        return {"kind": "gpu", "count": args.gpus, **({"nodes": nodes} if nodes else {})}
    if args.mig:
        return {"kind": "mig", "profile": args.mig}
    if args.shared:
        return {"kind": "shared"}
    return None


def _nodes(args: argparse.Namespace) -> int | None:
    """``--nodes`` when over 1 (one node is what a job gets anyway); only whole GPUs span
    nodes. Whether the profile and the site allow it is the service's to say (``max_nodes``
    in ``gpuhub options``)."""
    if args.nodes is None or args.nodes == 1:
        return None
    if args.mig or args.shared:
        what = "--mig" if args.mig else "--shared"
        raise CliError(f"--nodes: only whole GPUs span nodes; give --gpus-per-node, not {what}")
    return args.nodes


def job_request(args: argparse.Namespace, *, home: Path, cwd: Path | None = None) -> dict:
    """The JobRequest body of ``gpuhub job submit``'s arguments (the file read and checked)."""
    nodes = _nodes(args)
    params = parameters(args.param)
    source = read_source(args.path, home=home, cwd=cwd)
    if params and source.kind != "notebook":
        raise CliError("-p: parameters are injected into notebooks only; a script takes none")
    body: dict[str, Any] = source.body()
    if params:
        body["parameters"] = params
    # with --gpus-per-node the shape carries the nodes (the service takes a shape or
    # `nodes`, not both); without it `nodes` multiplies the profile's own count
    shape = _shape(args, nodes)
    optional = {
        "profile": args.profile,
        "shape": shape,
        "nodes": nodes if shape is None else None,
        "max_runtime_s": args.max_runtime,
        "name": args.name,
        "tier": "spot" if args.spot else None,
        "retry": retry_policy(args.retry, args.backoff, args.backoff_max),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


# -- the commands -----------------------------------------------------------------------


def cmd_job_submit(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job submit PATH``: run a notebook or script as a batch job (or on a schedule)."""
    assert client is not None
    body = job_request(args, home=home_dir())
    try:
        if args.schedule is not None:
            data = client.create_job_definition({**body, "schedule": args.schedule})
        else:
            data = client.submit_job(body)  # one idempotency key, however often it is tried
    except GpuhubError as e:
        raise in_cli_words(e) from None
    if args.json:
        emit_json(data)
    elif args.schedule is not None:
        print(r.definition_sentence(data, "created"))
    else:
        print(r.submitted_sentence(data))


def listed_user(args: argparse.Namespace, client: GpuhubClient) -> str | None:
    """Whose jobs or schedules to list: ``--user``'s; everyone's with ``--all`` (None);
    else mine (the API lists an admin's everyone's unless told a user)."""
    if args.user is not None or args.all:
        return args.user
    me = client.get("me")
    return me.get("name") if me.get("admin") else None


def cmd_jobs(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub jobs``: my jobs, newest first (``--all``: everyone's, for admins)."""
    assert client is not None
    try:
        jobs = client.jobs(user=listed_user(args, client), status=args.status, limit=args.limit)
    except GpuhubError as e:
        raise in_cli_words(e) from None
    if args.json:
        emit_json({"jobs": jobs})
    elif not jobs:
        print("no jobs" + (f" {args.status}" if args.status else ""))
    else:
        print(r.jobs_table(jobs, users=bool(args.all or args.user)))


def cmd_job_show(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job show ID``."""
    assert client is not None
    job = client.job(args.id)
    if args.json:
        emit_json(job)
    else:
        print(r.job_details(job))


def print_log(client: GpuhubClient, job_id: int, *, follow: bool) -> bool:
    """Print a job's log from the start: all there is now, or (``follow``) until the job
    has ended and all is read. Whether the log is complete."""
    offset = 0
    while True:
        page = client.job_log(job_id, offset=offset, limit=LOG_PAGE)
        text = page.get("text") or ""
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        next_offset = int(page.get("next_offset", offset))
        if page.get("complete"):
            return True
        if next_offset == offset and not text:
            if not follow:
                return False
            sleep(FOLLOW_INTERVAL)
        offset = next_offset


def cmd_job_log(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job log ID [--follow]``; Ctrl-C ends following quietly."""
    assert client is not None
    try:
        complete = print_log(client, args.id, follow=args.follow)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return
    if args.follow and complete:
        print(f"gpuhub: {r.ended_sentence(client.job(args.id))}", file=sys.stderr)


def cmd_job_cancel(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job cancel ID``: a queued job at once, a running one once it has stopped."""
    assert client is not None
    job = client.cancel_job(args.id)
    if args.json:
        emit_json(job)
    else:
        print(r.job_sentence(job))


def cmd_job_schedules(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job schedules``: job definitions with their cron schedule."""
    assert client is not None
    try:
        defs = client.job_definitions(user=listed_user(args, client))
    except GpuhubError as e:
        raise in_cli_words(e) from None
    if args.json:
        emit_json({"definitions": defs})
    elif not defs:
        print("no schedules (make one with: gpuhub job submit PATH --schedule 'CRON')")
    else:
        print(r.definitions_table(defs, users=bool(args.all or args.user)))


def _set_paused(args: argparse.Namespace, client: GpuhubClient | None, paused: bool) -> None:
    assert client is not None
    d = client.update_job_definition(args.id, paused=paused)
    if args.json:
        emit_json(d)
    else:
        print(r.definition_sentence(d, "paused" if paused else "resumed"))


def cmd_job_pause(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job pause DEF_ID``: no more runs until resumed."""
    _set_paused(args, client, True)


def cmd_job_resume(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job resume DEF_ID``."""
    _set_paused(args, client, False)


def cmd_job_unschedule(args: argparse.Namespace, client: GpuhubClient | None) -> None:
    """``gpuhub job unschedule DEF_ID``: delete the definition; its past runs stay."""
    assert client is not None
    client.delete_job_definition(args.id)
    print(r.unscheduled_sentence(args.id))


# -- the arguments ----------------------------------------------------------------------


def _whole(text: str, what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (a whole number of at least 1)")
    return n


def _job_id(text: str) -> int:
    return _whole(text, "an id")


def _count(text: str) -> int:
    return _whole(text, "a count")


def add_job_commands(sub: Any, conn: argparse.ArgumentParser) -> None:
    """Add ``jobs`` and ``job ...`` to the ``gpuhub`` parser's subcommands ``sub``."""

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")

    p = sub.add_parser(
        "jobs",
        help="my batch jobs, newest first",
        description="My batch jobs, newest first: status (queued with its position), "
        "shape, elapsed time and GPU-hours.",
        parents=[conn],
    )
    p.set_defaults(func=cmd_jobs, needs_server=True)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--all", action="store_true", help="everyone's (admins)")
    who.add_argument("--user", metavar="NAME", help="this user's (admins)")
    p.add_argument("--status", choices=JOB_STATUSES, metavar="STATUS",
                   help="only jobs in this state: " + ", ".join(JOB_STATUSES))  # fmt: skip
    p.add_argument("--limit", type=_job_id, metavar="N", help="at most N jobs")
    json_option(p)

    job = sub.add_parser(
        "job",
        help="submit, show, follow and cancel batch jobs; schedules",
        description="Run a notebook or script from your home as a batch GPU job.",
    )
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)

    def action(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = jsub.add_parser(name, help=help, description=help, parents=[conn])
        p.set_defaults(func=func, needs_server=True)
        return p

    p = action("submit", cmd_job_submit, "run a notebook (.ipynb) or script (.py) as a job")
    p.add_argument("path", metavar="PATH", help="the notebook or script, inside your home")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--gpus", "--gpus-per-node", dest="gpus", type=_count, metavar="N",
                       help="N whole GPUs on one node (with --nodes: on each node)")  # fmt: skip
    shape.add_argument("--mig", metavar="PROFILE", help="one MIG slice, e.g. 1g.10gb")
    shape.add_argument("--shared", action="store_true", help="a seat on a time-sliced GPU")
    p.add_argument("--nodes", type=_count, metavar="N",
                   help="run on N nodes at once, each with --gpus-per-node GPUs (or the "
                   "profile's), all granted together or queued together; the job runs under "
                   "torchrun on every node (a notebook as a script). Needs a profile that "
                   "allows N nodes (max_nodes in gpuhub options) and a site that runs jobs "
                   "on Slurm (default: 1)")  # fmt: skip
    p.add_argument("--profile", metavar="P",
                   help="environment (spawner profile); default: your default profile with a "
                   "GPU, whose GPU shape applies unless --gpus, --mig or --shared is given (a "
                   "profile without a GPU needs one of them)")  # fmt: skip
    p.add_argument("-p", "--param", dest="param", action="append", type=parse_param,
                   metavar="NAME=VALUE",
                   help="a parameter (papermill); VALUE is JSON if it parses (0.01, true, "
                   "[1,2], null), else text; repeat for more")  # fmt: skip
    p.add_argument("--max-runtime", type=parse_duration, metavar="DURATION",
                   help="stop the job after this long: 90s, 30m, 2h, 1d or seconds "
                   "(default: the service's, 1d)")  # fmt: skip
    p.add_argument("--name", help="the job's name (default: the file's name without .ipynb/.py)")
    p.add_argument("--spot", action="store_true",
                   help="run on spot capacity: idle GPUs at the site's spot discount, taken "
                   "back with a notice ($GPUHUB_PREEMPT_FILE, SIGUSR1) and a grace period when "
                   "guaranteed work needs them; the job then runs again from the queue and "
                   "resumes from its checkpoints")  # fmt: skip
    p.add_argument("--retry", action="append", type=parse_retry, metavar="CLASS=N,...",
                   help="run the job again up to N times after an attempt that ended so: "
                   "preempted (default 10), node_failed (1), failed (0: an error exit), "
                   "out_of_memory (0), e.g. --retry preempted=20,failed=2")  # fmt: skip
    p.add_argument("--backoff", type=parse_wait, metavar="DURATION",
                   help="wait this long before the first retry of a class, doubled for each "
                   "further retry of it: 0, 30s, 5m (default 30s)")  # fmt: skip
    p.add_argument("--backoff-max", type=parse_duration, metavar="DURATION",
                   help="the longest wait before a retry (default 1h)")  # fmt: skip
    p.add_argument("--schedule", metavar="CRON",
                   help="instead of running now, run on this cron schedule: 5 fields or a "
                   "macro, in UTC unless it starts with CRON_TZ=ZONE, e.g. '0 2 * * *', "
                   "'@daily', 'CRON_TZ=Europe/Berlin 0 2 * * mon-fri' (a job definition)")  # fmt: skip
    json_option(p)

    p = action("show", cmd_job_show, "everything about one job")
    p.add_argument("id", type=_job_id, metavar="ID", help="job id (see gpuhub jobs)")
    json_option(p)

    p = action("log", cmd_job_log, "print a job's log (--follow: until it ends)")
    p.add_argument("id", type=_job_id, metavar="ID", help="job id")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing as the job writes, until it ends (Ctrl-C stops)")  # fmt: skip

    p = action("cancel", cmd_job_cancel, "cancel a queued job or stop a running one")
    p.add_argument("id", type=_job_id, metavar="ID", help="job id")
    json_option(p)

    p = action("schedules", cmd_job_schedules, "scheduled job definitions (cron)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--all", action="store_true", help="everyone's (admins)")
    who.add_argument("--user", metavar="NAME", help="this user's (admins)")
    json_option(p)

    for name, func, help in (
        ("pause", cmd_job_pause, "pause a schedule: no runs until resumed"),
        ("resume", cmd_job_resume, "resume a paused schedule"),
        ("unschedule", cmd_job_unschedule, "delete a schedule (the jobs it ran stay)"),
    ):
        p = action(name, func, help)
        p.add_argument(
            "id", type=_job_id, metavar="DEF_ID", help="schedule id (gpuhub job schedules)"
        )
        if name != "unschedule":
            json_option(p)

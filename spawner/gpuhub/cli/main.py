"""The ``gpuhub`` command: parse the arguments, run the command, report a failure in one line.

Every command except ``inventory`` calls the gpuhub REST API through
:class:`~gpuhub.client.GpuhubClient`. While the service restarts (502/503/504, a dropped
connection) a request that is safe to repeat is tried again for up to
:data:`CLI_RETRY`'s budget, saying so on stderr; ``gpuhub request`` and ``gpuhub job
submit`` send one idempotency key with every try, so they never get two leases or jobs.
Any failure is one line on stderr, ``gpuhub: error: <message>``, and exit status 1; usage
errors exit 2 (argparse).

The parts: :mod:`.parser` (the arguments), :mod:`.commands` (what each command does),
:mod:`.render` (tables and sentences); the batch-job commands in :mod:`.jobs`, with
:mod:`.job_input` (the file and arguments, checked on this side) and :mod:`.job_render`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..client import GpuhubClient, GpuhubError, RetryPolicy, hub_root
from .commands import CliError
from .parser import DEFAULT_URL, build_parser, default_token, default_url

#: How the command retries: shorter than the spawners' budget (a person is waiting), and
#: a refused connection (a wrong URL, or no hub at all) fails at once.
CLI_RETRY = RetryPolicy(budget=45.0, first_delay=1.0, max_delay=8.0, retry_refused=False)


def no_token_message(url: str) -> str:
    """The one-liner for a missing token."""
    return (
        "no API token: set GPUHUB_TOKEN (or pass --token) to a JupyterHub token; "
        f"get one on the hub's token page, {hub_root(url)}/hub/token"
    )


def one_line(message: str) -> str:
    """A message squeezed onto one line."""
    return " ".join(str(message).split())


def say_retrying(error: GpuhubError, delay: float, retry: int) -> None:
    """Tell the person waiting that the request is tried again, and when."""
    print(f"gpuhub: {one_line(error.message)}; retrying in {delay:g} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gpuhub``; returns the exit status (0, 1 on errors; argparse exits 2)."""
    args = build_parser().parse_args(argv)
    client = None
    try:
        if args.needs_server:
            url = args.url or default_url()
            token = args.token or default_token()
            if not token:
                raise CliError(no_token_message(url))
            client = GpuhubClient(url, token, retry=CLI_RETRY, on_retry=say_retrying)
        args.func(args, client)
    except (CliError, GpuhubError) as e:
        print(f"gpuhub: error: {one_line(e.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gpuhub: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gpuhub leases | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if client is not None:
            client.close()
    return 0


__all__ = ["DEFAULT_URL", "build_parser", "default_token", "default_url", "main"]

if __name__ == "__main__":
    sys.exit(main())

"""The command-line reference, generated from the ``gpuhub`` command's argparse parser.

:func:`render` returns MyST Markdown: the ``--help`` output of ``gpuhub`` and of every
subcommand (and sub-subcommand, such as ``gpuhub quota set``), each under its own heading.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Where the parser is looked for, and the names a parser factory may have there.
MODULE = "gpuhub.cli.main"
FACTORIES = ("build_parser", "make_parser", "get_parser", "create_parser", "parser")
#: Help is rendered at this width so the page does not depend on the terminal.
WIDTH = 88


class CliUnavailable(RuntimeError):
    """The ``gpuhub`` parser cannot be found; the message says what was looked for."""


@contextmanager
def _help_environment() -> Iterator[None]:
    """Fixed width, no colour, and ``gpuhub`` as the program name while help is built."""
    saved_env = {k: os.environ.get(k) for k in ("COLUMNS", "PYTHON_COLORS", "NO_COLOR")}
    saved_argv0 = sys.argv[0] if sys.argv else None
    os.environ.update(COLUMNS=str(WIDTH), PYTHON_COLORS="0", NO_COLOR="1")
    if sys.argv:
        sys.argv[0] = "gpuhub"
    else:
        sys.argv.append("gpuhub")
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved_argv0 is not None:
            sys.argv[0] = saved_argv0


def load_parser() -> argparse.ArgumentParser:
    """The ``gpuhub`` parser, from the first factory found in :data:`MODULE`."""
    try:
        module = importlib.import_module(MODULE)
    except ImportError as e:
        raise CliUnavailable(f"cannot import {MODULE}: {e}") from e
    for name in FACTORIES:
        obj = getattr(module, name, None)
        if isinstance(obj, argparse.ArgumentParser):
            parser = obj
            break
        if callable(obj):
            parser = obj()
            if isinstance(parser, argparse.ArgumentParser):
                break
    else:
        raise CliUnavailable(f"{MODULE} has none of {', '.join(FACTORIES)} returning a parser")
    parser.prog = "gpuhub"
    return parser


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """The direct subcommands of ``parser`` in the order they were added (aliases skipped)."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.append((name, sub))
    return found


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every subcommand below it, depth first, with its command path."""
    yield path, parser
    for name, sub in subcommands(parser):
        yield from walk(sub, (*path, name))


def commands() -> list[tuple[tuple[str, ...], str]]:
    """Every command path with its ``--help`` text."""
    with _help_environment():
        parser = load_parser()
        return [(path, sub.format_help().rstrip()) for path, sub in walk(parser)]


def label(path: tuple[str, ...]) -> str:
    """The cross-reference target of a command, e.g. ``cli-gpuhub-quota-set``."""
    return "-".join(("cli-gpuhub", *path))


def render() -> str:
    """The generated part of the CLI reference page."""
    out: list[str] = []
    for path, text in commands():
        level = "###" if len(path) <= 1 else "####"  # under the page's "Commands" section
        out += [
            f"({label(path)})=",
            f"{level} `{' '.join(('gpuhub', *path))}`",
            "",
            "```text",
            text,
            "```",
            "",
        ]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - a preview for writers
    print(render())

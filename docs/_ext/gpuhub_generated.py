"""Sphinx extension: fill generated reference sections at build time.

A page asks for a generated section with an empty fenced block::

    ```{gpuhub-generated} config
    ```

and this extension replaces it, as the page is read, with the Markdown that the named
generator returns: ``config`` (traitlets classes), ``cli`` (the argparse parser) or
``openapi`` (``reference/openapi.yaml``). A marker that is not replaced is an unknown
directive, so a build with ``-W`` fails rather than shipping an empty section; a generator
that fails logs a warning, which fails such a build too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cli_reference
import config_reference
import openapi_reference
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

MARKER = re.compile(r"^```\{gpuhub-generated\}[ \t]+(\w+)[ \t]*\n```[ \t]*$", re.MULTILINE)

GENERATORS: dict[str, Callable[[], str]] = {
    "config": config_reference.render,
    "cli": cli_reference.render,
    "openapi": openapi_reference.render,
}


def _fill(app: Sphinx, docname: str, source: list[str]) -> None:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        generator = GENERATORS.get(name)
        if generator is None:
            logger.warning(
                "unknown generated section %r (known: %s)",
                name,
                ", ".join(GENERATORS),
                location=docname,
            )
            return ""
        try:
            return generator()
        except Exception as e:  # noqa: BLE001 - reported as a build warning, which -W fails
            logger.warning("generating the %r section failed: %s", name, e, location=docname)
            return ""

    source[0] = MARKER.sub(replace, source[0])


def _always_reread(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Pages with generated sections are re-read on every build: their sources are code."""
    stale = []
    for docname in env.found_docs:
        path = Path(env.doc2path(docname))
        if path.suffix == ".md" and "{gpuhub-generated}" in path.read_text(encoding="utf-8"):
            stale.append(docname)
    return stale


def setup(app: Sphinx) -> dict:
    """Register the source-read hook."""
    app.connect("source-read", _fill)
    app.connect("env-get-outdated", _always_reread)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

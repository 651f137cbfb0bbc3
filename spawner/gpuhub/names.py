"""User and group names: the one rule the service, the job models and the CLI check, and
the home a user's name gives (:func:`home_from_template`, for the executors and spawners).

A name is what JupyterHub accepts as one (``Authenticator.validate_username``): 1-255
characters (its database's column), no ``/``, no white space at either end, not only dots.
Inside, any other Unicode is a name: ``ünïcødé``, ``用户``, ``john smith``, ``r&d``,
``50%``; wherever gpuhub puts a name in a URL it is percent-encoded, in a shell command
quoted, in a Docker object's name slugged. Control characters are refused too (JupyterHub
lets a tab or a NUL through its API; no log line, CSV row or PostgreSQL text can hold them
safely, and no authenticator gives them). The whole value must match (``fullmatch``: ``$``
would also match before a trailing newline).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["NAME_PATTERN", "RULE", "check_name", "home_from_template"]

#: The rule, in the words of every refusal.
RULE = "1-255 characters, no / or control characters, no space at either end, not only dots"
_END = r"[^\s\x00-\x1f\x7f-\x9f/]"  # a first or last character: no white space
_INSIDE = r"[^\x00-\x1f\x7f-\x9f/]"
NAME_PATTERN = f"{_END}(?:{_INSIDE}{{0,253}}{_END})?"
_NAME = re.compile(NAME_PATTERN)


def check_name(kind: str, value: str) -> str:
    """``value`` if it is a valid user or group name; else ValueError with a sentence
    naming ``kind`` ("user", "group") and the rule."""
    if not _NAME.fullmatch(value) or not value.strip("."):
        raise ValueError(f"{kind} name {value!r} is not a valid name ({RULE})")
    return value


def home_from_template(template: str, user: str, account: str, configurable: str) -> Path:
    """The absolute home ``template`` (``{username}`` is the ``account``) gives hub user
    ``user``; a ``ValueError`` naming ``c.<configurable>.home_dir_template`` where none does."""
    home = os.path.expanduser(template.format(username=account))
    if home.startswith("~"):
        raise ValueError(
            f"user {user} has no home directory here ({home}); "
            f"set c.{configurable}.home_dir_template"
        )
    return Path(os.path.abspath(home))

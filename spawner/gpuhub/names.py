"""User and group names: the one rule the service, the job models and the CLI check, and
the home a user's name gives (:func:`home_from_template`, for the executors and spawners).

JupyterHub allows most characters in names; refuse only what can never be a name here:
white space, control characters, and what would change the meaning of a URL. The whole
value must match (``fullmatch``: ``$`` would also match before a trailing newline). Any
other Unicode is a name (``ünïcødé``, ``用户``), as JupyterHub accepts it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["NAME_PATTERN", "check_name", "home_from_template"]

NAME_PATTERN = r"[^\s\x00-\x1f\x7f-\x9f/\\?#%&]{1,255}"
_NAME = re.compile(NAME_PATTERN)


def check_name(kind: str, value: str) -> str:
    """``value`` if it is a valid user or group name; else ValueError with a sentence
    naming ``kind`` ("user", "group") and the rule."""
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{kind} name {value!r} is not a valid name "
            "(1-255 characters, no spaces, control characters or /?#%&)"
        )
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

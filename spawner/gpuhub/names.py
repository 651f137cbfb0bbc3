"""User and group names: the one rule the service, the job models and the CLI check.

JupyterHub allows most characters in names; refuse only what can never be a name here:
white space, control characters, and what would change the meaning of a URL. The whole
value must match (``fullmatch``: ``$`` would also match before a trailing newline). Any
other Unicode is a name (``ünïcødé``, ``用户``), as JupyterHub accepts it.
"""

from __future__ import annotations

import re

__all__ = ["NAME_PATTERN", "check_name"]

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

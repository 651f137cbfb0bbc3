"""User and group names: gpuhub takes every name JupyterHub takes (its own
``Authenticator.validate_username``, the real one), but for control characters."""

from __future__ import annotations

import re

import pytest
from gpuhub.jobs.models import JobRequest
from gpuhub.names import NAME_PATTERN, check_name
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jupyterhub.auth import Authenticator

from tests.support.properties import examples

HUB = Authenticator()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What a name may hold: any Unicode but surrogates, with the characters URLs, shells
#: and white space give meaning to drawn often.
CHARACTERS = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from(" ./\\?#%&;'\"$`\t\n\u00a0\u3000"),
)


def accepted(name: str) -> bool:
    try:
        check_name("user", name)
    except ValueError:
        return False
    return True


@settings(max_examples=examples(800), deadline=None)
@given(
    st.text(CHARACTERS, min_size=0, max_size=12) | st.text(CHARACTERS, min_size=250, max_size=260)
)
@example("john smith")
@example("r&d #1? 50%")
@example("a\\b")
@example(".")
@example("..")
@example(" lead")
@example("trail ")
@example("a\u00a0b")
def test_a_name_is_what_jupyterhub_takes_but_control_characters(name: str) -> None:
    hub_takes = HUB.validate_username(name) and len(name) <= 255  # its column: 255
    assert accepted(name) == (hub_takes and not CONTROL.search(name)), repr(name)


@pytest.mark.parametrize("name", ["john smith", "zoë & co #1? 50%", "用户", "a.b", "x" * 255])
def test_names_with_spaces_and_url_characters_are_names_everywhere(name: str) -> None:
    assert check_name("group", name) == name
    assert re.fullmatch(NAME_PATTERN, name)  # the OpenAPI document's pattern, unanchored
    job = JobRequest.model_validate({"path": "train.ipynb", "user": name})
    assert job.user == name


@pytest.mark.parametrize(
    "name", ["", ".", "...", "a/b", " a", "a ", "a\tb", "a\nb", "a\x00b", "x" * 256]
)
def test_what_is_no_name_is_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match=r"user name .* is not a valid name \(1-255 characters"):
        check_name("user", name)
    with pytest.raises(ValueError, match="is not a valid user name"):
        JobRequest.model_validate({"path": "train.ipynb", "user": name})

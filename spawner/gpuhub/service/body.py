"""Request bodies, parsed strictly: bounded JSON, then a pydantic model in strict mode.

A body must be UTF-8 JSON of at most :data:`MAX_BODY_BYTES` (:data:`MAX_JOB_BODY_BYTES` on
the routes that carry a notebook), nested at most
:data:`MAX_DEPTH` deep, with numbers of at most :data:`MAX_NUMBER_CHARS` characters and
no NaN or infinities, and strings without NUL or lone surrogates (no database stores
them). Then the model validates it in pydantic's strict mode, so types are exactly what
the OpenAPI document says: ``"2"`` or ``true`` is no integer, ``"4"`` no number (an
integer is a number, and dates are ISO strings as JSON has no dates). Every refusal is an
:class:`~gpuhub.service.errors.ApiError` naming the field where there is one.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ApiError

MAX_BODY_BYTES = 64 * 1024
#: The limit of routes that carry a notebook or script (``POST /jobs``, ``/job-definitions``).
MAX_JOB_BODY_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40

M = TypeVar("M", bound=BaseModel)

# Strings (skipped whole, escapes included) and the brackets outside them.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SHAPE_KINDS = ("gpu", "mig", "shared")


def too_large(limit: int = MAX_BODY_BYTES) -> ApiError:
    """The refusal of a body over ``limit`` bytes (413)."""
    size = f"{limit // 1024**2} MiB" if limit >= 1024**2 else f"{limit // 1024} KiB"
    return ApiError(413, f"the request body is larger than {size}", code="too_large")


def _number(text: str, convert: type) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise ApiError(
            400, f"the request body has a number longer than {MAX_NUMBER_CHARS} characters"
        )
    value = convert(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, f"the request body has a number too large: {text}")
    return value


def _constant(name: str) -> Any:
    raise ApiError(400, f"the request body has {name}, which is not a JSON number")


def _check_depth(text: str) -> None:
    depth = 0
    for token in _TOKENS.finditer(text):
        c = token.group()
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        elif c in "]}":
            depth -= 1


def _check_strings(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ApiError(
                400,
                f"{where or 'the body'}: text must not hold NUL characters or lone surrogates",
                field=where or None,
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            _check_strings(key, path)
            _check_strings(item, path)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, where)


def parse_json(raw: bytes, limit: int = MAX_BODY_BYTES) -> tuple[str, Any]:
    """``(text, value)`` of a JSON body within the limits; an ApiError otherwise."""
    if len(raw) > limit:
        raise too_large(limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the request body is not UTF-8 (byte {e.start})") from e
    _check_depth(text)
    try:
        value = json.loads(
            text or "null",
            parse_int=lambda s: _number(s, int),
            parse_float=lambda s: _number(s, float),
            parse_constant=_constant,
        )
    except json.JSONDecodeError as e:
        raise ApiError(400, f"the request body is not JSON: {e.msg} at position {e.pos}") from e
    _check_strings(value)
    return text, value


def parse_body(raw: bytes, model: type[M], limit: int = MAX_BODY_BYTES) -> M:
    """The body as ``model``: a JSON object within the limits, of exactly the right types."""
    text, value = parse_json(raw, limit)
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as e:
        field, message = validation_message(e)
        raise ApiError(400, message, field=field) from e


def validation_message(e: ValidationError) -> tuple[str | None, str]:
    """``(field, sentence)`` for the first problem pydantic found."""
    err = e.errors()[0]
    loc = list(err["loc"])
    if len(loc) > 2 and loc[0] == "shape" and loc[1] in _SHAPE_KINDS:
        del loc[1]  # the union's tag is no field of the body: shape.count, not shape.gpu.count
    where = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field {where!r}"
    elif err["type"] == "missing":
        msg = f"field {where!r} is required"
    elif err["type"] == "union_tag_invalid":
        msg = "shape.kind must be one of 'gpu', 'mig', 'shared'"
    elif not where:  # a check across fields (model validator): its message names them
        return None, msg
    else:
        msg = f"{where}: {msg}"
    return where, msg

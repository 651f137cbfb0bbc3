"""A notebook's ``parameters`` cell read into typed values, as papermill reads it, for the
"Run as GPU job" dialog to edit."""

from __future__ import annotations

import ast
from typing import Any


def type_of(value: Any) -> str:
    """The dialog's type of a literal: int, float, bool, str, list, dict or None."""
    if value is None:
        return "None"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    raise TypeError(type(value).__name__)


def _plain(value: Any) -> Any:
    """A literal as JSON takes it (tuples and sets as lists), or TypeError."""
    if isinstance(value, (tuple, list, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dict keys must be strings")
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN has no JSON
            raise TypeError("nan")
        return value
    raise TypeError(type(value).__name__)


def parse_parameters(source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The simple assignments of a ``parameters`` cell as ``[{name, value, type, help}]``
    (papermill-like: ``name = literal`` or ``name: T = literal``, a trailing comment as its
    help), and the names set otherwise (expressions) that the dialog cannot edit."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []
    lines = source.splitlines()
    params: list[dict[str, Any]] = []
    other: list[str] = []
    seen: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        name = target.id
        try:
            literal = _plain(ast.literal_eval(value))
            entry = {"name": name, "value": literal, "type": type_of(literal), "help": None}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            if name not in other:
                other.append(name)
            continue
        line = lines[node.end_lineno - 1] if node.end_lineno else ""
        rest = line[node.end_col_offset or 0 :].strip()
        if rest.startswith("#"):
            entry["help"] = rest.lstrip("#").strip() or None
        if name in seen:  # the last assignment wins, as when the cell runs
            params[seen[name]] = entry
        else:
            seen[name] = len(params)
            params.append(entry)
    return params, [n for n in other if n not in seen]


def parameters_cell(nb: dict[str, Any]) -> str | None:
    """The source of the first code cell tagged ``parameters``, or None."""
    for cell in nb.get("cells") or ():
        tags = (cell.get("metadata") or {}).get("tags") or ()
        if cell.get("cell_type") == "code" and "parameters" in tags:
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None

"""Job bodies as clients send them: a notebook (with a parameters cell) or a script."""

from __future__ import annotations

import json

import nbformat


def notebook(*sources: str, parameters: str | None = None) -> dict:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def script(source: str, path: str = "job.py", **kw) -> dict:
    return {"path": path, "script": source, **kw}

"""Print gpuhub's requirements (core + the given extras) from pyproject.toml, one per line.

Image builds install these in a layer of their own before copying the source, so that a
change to the code rebuilds only the small layer that installs gpuhub itself:

    python3 images/requirements.py pyproject.toml notebook > requirements.txt

Self-references such as ``gpuhub[hub,notebook]`` inside an extra are expanded.

``requirements.py --unneeded`` prints the packages that pip brings in but no part of
gpuhub, JupyterHub or JupyterLab uses, and that cost every process start: the builds and
``scripts/setup`` remove them after installing (``UNNEEDED`` says why for each).
"""

from __future__ import annotations

import re
import sys
import tomllib

#: Installed as dependencies, removed after: name -> why.
UNNEEDED = {
    # jupyter-events and nbformat ask for jsonschema[format-nongpl], which checks the "iri"
    # format with rfc3987-syntax; jsonschema imports it eagerly, and it builds about 35
    # Earley parsers at import: 0.8 CPU-s in every JupyterHub, JupyterLab server and job
    # runner start (a JupyterLab server answers after 0.47 instead of 1.25 CPU-s without
    # it). No Jupyter schema uses the "iri" format; jsonschema skips it when it is missing.
    "rfc3987-syntax": "an import-time Earley parser for a JSON Schema format no one uses",
}


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    """The core dependencies plus those of ``extras``, self-references expanded."""
    project = pyproject["project"]
    name = project["name"]
    optional = project.get("optional-dependencies", {})
    out = list(project.get("dependencies", []))
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"{name} has no extra {extra!r}; it has {sorted(optional)}")
        seen.add(extra)
        for req in optional[extra]:
            m = re.fullmatch(rf"\s*{re.escape(name)}\s*\[([^\]]*)\]\s*", req)
            if m:
                todo += [e.strip() for e in m.group(1).split(",") if e.strip()]
            else:
                out.append(req)
    return list(dict.fromkeys(out))


def main(argv: list[str]) -> None:
    """``requirements.py PYPROJECT [EXTRA...]``, or ``requirements.py --unneeded``"""
    if argv == ["--unneeded"]:
        print("\n".join(UNNEEDED))
        return
    if not argv:
        raise SystemExit(__doc__)
    with open(argv[0], "rb") as f:
        pyproject = tomllib.load(f)
    print("\n".join(requirements(pyproject, argv[1:])))


if __name__ == "__main__":
    main(sys.argv[1:])

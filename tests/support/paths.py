"""Where things are in the repository, for tests that read its files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
OPENAPI = DOCS / "reference" / "openapi.yaml"
#: The hub-side package's sources.
PACKAGE = REPO / "spawner" / "gpuhub"
#: The notebook-side package (the jupyter-server extension) in user images.
EXTENSION = REPO / "extensions" / "jupyter_gpuhub"

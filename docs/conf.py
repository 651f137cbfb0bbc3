"""Sphinx configuration of the gpuhub documentation (MyST Markdown, no network access).

The reference pages for configuration, the command line and the REST API are generated
at build time by ``_ext/gpuhub_generated.py`` from the code and ``reference/openapi.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import gpuhub  # noqa: E402 - the path above must come first for the extension

project = "gpuhub"
author = "gpuhub developers"
copyright = "gpuhub developers"
version = release = gpuhub.__version__

extensions = ["myst_parser", "gpuhub_generated"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "substitution"]
myst_heading_anchors = 3
myst_substitutions = {"version": release}

# Everything the build needs is on this machine: no intersphinx, no remote images.
intersphinx_mapping: dict = {}
linkcheck_ignore = [r".*"]

html_theme = "alabaster"
html_title = f"gpuhub {release}"
html_theme_options = {
    "description": "GPU notebook workspaces on JupyterHub",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_static_path: list[str] = []
html_show_sourcelink = False

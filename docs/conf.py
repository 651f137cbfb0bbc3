"""Sphinx configuration of the gpuhub documentation (MyST Markdown).

The reference pages for configuration, the command line and the REST API are generated
at build time by ``_ext/gpuhub_generated.py`` from the code and ``reference/openapi.yaml``.
The build needs nothing from the network: no intersphinx, no remote theme or images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gpuhub

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "gpuhub"
author = "gpuhub developers"
copyright = "gpuhub developers"
version = release = gpuhub.__version__

extensions = ["myst_parser", "gpuhub_generated"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# Headings get anchors, so that links such as quotas.html#budgets-per-period stay stable.
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"gpuhub {release}"
html_theme_options = {
    "description": "GPU notebook workspaces on JupyterHub",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False

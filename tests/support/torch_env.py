"""PyTorch for the tests that run real ``torch.distributed`` (the multi-node job on the
local Slurm cluster): installed once per machine with pip into a folder of the user's
cache, outside any clone, and put on ``PYTHONPATH`` by a small wrapper of this Python.

``GPUHUB_TEST_TORCH`` names the version (default: the one the images use with the local
Debian base, a CPU build where the package index has one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TORCH = os.environ.get("GPUHUB_TEST_TORCH", "torch==2.13.0")


def torch_site() -> Path:
    """The folder holding PyTorch (installed now if it is not there yet)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    site = cache / "gpuhub" / TORCH.replace("==", "-")
    if not (site / "torch" / "__init__.py").exists():
        partial = site.with_name(site.name + ".partial")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--target", str(partial), TORCH],
            check=True, timeout=600,
        )  # fmt: skip
        partial.rename(site)
    return site


def python_with_torch(folder: Path) -> Path:
    """An executable in ``folder`` that runs this Python with PyTorch importable."""
    wrapper = folder / "python-with-torch"
    wrapper.write_text(
        f'#!/bin/sh\nexport PYTHONPATH="{torch_site()}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper

"""``python -m jupyter_gpuhub.singleuser``: JupyterHub's ``jupyterhub-singleuser``, started
without JupyterLab's call to Node.js.

When JupyterLab's ``labapp`` module is imported, as every ``jupyterhub-singleuser`` does,
it asks yarn for its configuration (``node yarn.js config --json``) to learn the npm
registry, which only installing a source extension uses. Where Node.js is on ``PATH``
(the hub's machine has it for the proxy, so every local-process server) that is a Node
process of about 0.3 CPU-s in each server's start: the labapp import takes 0.8 s with it
and 0.5 s without. This entry point answers the question from the environment as yarn and
npm read it (``YARN_REGISTRY``, ``npm_config_registry``; else JupyterLab uses yarn's
default registry), then runs ``jupyterhub-singleuser`` unchanged. The local-process
spawner starts its servers with it.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def registry_from_environment(logger: Any = None) -> dict[str, dict[str, str]]:
    """What JupyterLab's ``_yarn_config`` answers, read from the environment: the
    registry where one is set, else nothing (JupyterLab then uses yarn's default)."""
    registry = os.environ.get("YARN_REGISTRY") or os.environ.get("npm_config_registry")
    config = {"registry": registry} if registry else {}
    return {"yarn config": config, "npm config": dict(config)}


def skip_yarn_config() -> None:
    """Have JupyterLab read its registry from the environment instead of from Node."""
    try:
        from jupyterlab import commands
    except ImportError:  # a server without JupyterLab: nothing asks
        return
    commands._yarn_config = registry_from_environment


def main() -> None:
    """Run ``jupyterhub-singleuser`` with the arguments given, without the Node call."""
    skip_yarn_config()
    from jupyterhub.singleuser import main as singleuser

    sys.exit(singleuser())


if __name__ == "__main__":
    main()

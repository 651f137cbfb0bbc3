"""jupyter_gpuhub: the notebook side of gpuhub, a jupyter-server extension.

It shows a user's server its own GPUs: one background sampler per server reads the
devices of the server's lease (NVML, or synthetic values for simulated devices) and
serves them under ``gpuhub/api/v1/`` (``devices``, ``lease``, ``me``, ``metrics``);
it reports a short activity summary of the lease to the gpuhub service. Its ``jobs``
routes turn a notebook or script of the server into a batch job of the service.
"""

from __future__ import annotations

from typing import Any

from gpuhub import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where jupyter-server finds the extension app."""
    from .app import GpuhubExtension

    return [{"module": "jupyter_gpuhub", "app": GpuhubExtension}]

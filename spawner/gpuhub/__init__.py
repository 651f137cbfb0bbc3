"""gpuhub: GPU notebook workspaces on JupyterHub (hub side)."""

__version__ = "0.1.0"

"""``python -m gpuhub.service``: start the gpuhub service (JupyterHub does this)."""

from .app import main

main()

"""The gpuhub service: scheduler + REST API, managed by JupyterHub."""

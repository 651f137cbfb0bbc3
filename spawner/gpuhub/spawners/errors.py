"""The one error a GPU spawner raises to JupyterHub."""

from __future__ import annotations

from tornado import web


class GPUSpawnError(web.HTTPError):
    """A spawn the GPU layer refuses or cannot serve; the message is shown as is.

    JupyterHub shows ``jupyterhub_message`` on the spawn page, in progress events and in
    REST API errors; a status below 500 marks it a refusal rather than a hub failure.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message
        self.jupyterhub_message = message

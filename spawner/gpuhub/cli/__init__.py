"""The ``gpuhub`` command line: the pool, quotas, usage, leases, the queue and batch
jobs from a terminal.

It talks to the gpuhub service's REST API (``/services/gpuhub/api/v1``) with a JupyterHub
token through :class:`gpuhub.client.GpuhubClient`, except ``gpuhub inventory``, which
reads this machine's GPUs through NVML. See ``gpuhub --help``;
:func:`gpuhub.cli.main.main` is the entry point.
"""

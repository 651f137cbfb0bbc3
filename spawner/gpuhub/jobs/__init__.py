"""Batch jobs: a notebook or script run on a GPU lease under the same queue, quotas and
ledger as interactive servers, by a pluggable executor (local process, Docker, ...)."""

"""The scheduler: leases, quotas, the queue and the GPU-hour ledger."""

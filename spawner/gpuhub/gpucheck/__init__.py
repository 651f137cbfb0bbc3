"""``scripts/gpu-check``: is this machine ready for gpuhub on a real GPU? One call says.

It runs, against the NVIDIA driver, what gpuhub itself runs there: the service's NVML
inventory, the notebook extension's sampler on a whole GPU and on a MIG slice (with GPM
where the GPU has it), device isolation by a lease's ``CUDA_VISIBLE_DEVICES`` /
``NVIDIA_VISIBLE_DEVICES``, and a torch job whose memory and process the extension must see.
It writes one report, JSON and Markdown (:mod:`.report`). Without a driver it refuses with
one sentence and exit status 2.

* :mod:`.cli` — the command line (``python -m gpuhub.gpucheck``);
* :mod:`.checks` — the sections, in the order they run;
* :mod:`.devices` — the devices the check leases to itself, and the extension reading them;
* :mod:`.probe` — the child processes that run with a lease's environment.
"""

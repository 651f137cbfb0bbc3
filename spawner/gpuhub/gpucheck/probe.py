"""The GPU check's child processes: started with a lease's environment, they report what
CUDA lets them see and hold memory on their device while the parent samples it.

``python -m gpuhub.gpucheck.probe visible``
    prints one JSON line: the devices this process can see, through torch when it is
    importable, else through ``nvidia-smi -L``.
``python -m gpuhub.gpucheck.probe hold MIB``
    allocates MIB MiB on CUDA device 0 with torch, prints one JSON line (its pid and what
    it allocated), and holds the memory until a line (or end of file) arrives on stdin.

They run apart from the check itself so that the check never creates a CUDA context of its
own (it would show in the memory and processes it measures), and so that
``CUDA_VISIBLE_DEVICES`` is read by a fresh CUDA, as in a user's server or job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

_MB = 2**20
# "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)", "  MIG 1g.10gb  Device  0: (UUID: MIG-...)"
_SMI_LINE = re.compile(r"^\s*((GPU|MIG)\b.*?)\s*\(UUID:\s*((?:GPU|MIG)-[^)\s]+)\)\s*$")


def _torch() -> Any | None:
    """The torch module, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_uuid(props: Any) -> str | None:
    """A CUDA device's UUID as torch reports it (recent releases), else None."""
    uuid = getattr(props, "uuid", None)
    return None if uuid is None else str(uuid)


def visible() -> dict[str, Any]:
    """What this process can see: the method used, a count and the devices."""
    torch = _torch()
    if torch is not None:
        count = torch.cuda.device_count()
        devices = []
        for i in range(count):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {
                    "name": props.name,
                    "uuid": _torch_uuid(props),
                    "memory_mb": int(props.total_memory) // _MB,
                }
            )
        return {"method": "torch", "torch": torch.__version__, "count": count, "devices": devices}
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {
            "method": None,
            "torch": None,
            "count": None,
            "devices": [],
            "error": "neither torch nor nvidia-smi is installed here",
        }
    done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        return {
            "method": "nvidia-smi -L",
            "torch": None,
            "count": None,
            "devices": [],
            "error": f"nvidia-smi -L exited {done.returncode}: {done.stderr.strip()[:500]}",
        }
    devices = []
    for line in done.stdout.splitlines():
        m = _SMI_LINE.match(line)
        if m:
            name, kind, uuid = m.groups()
            name = " ".join(name.split()).rstrip(":")
            devices.append({"kind": kind.lower(), "name": name, "uuid": uuid})
    # what a process can use: a GPU's MIG devices where it has them, else the GPU itself
    usable = []
    for i, d in enumerate(devices):
        if d["kind"] == "mig":
            usable.append(d)
        elif not (i + 1 < len(devices) and devices[i + 1]["kind"] == "mig"):
            usable.append(d)
    return {
        "method": "nvidia-smi -L",
        "torch": None,
        "count": len(usable),
        "devices": usable,
        "listed": devices,
    }


def hold(mib: int) -> int:
    """Allocate ``mib`` MiB on CUDA device 0, say so on stdout, hold it until stdin speaks."""
    torch = _torch()
    if torch is None:
        _say({"error": "torch is not installed"})
        return 1
    try:
        if not torch.cuda.is_available():
            _say({"error": "torch sees no CUDA device (torch.cuda.is_available() is False)"})
            return 1
        device = torch.device("cuda", 0)
        block = torch.ones(mib * _MB, dtype=torch.uint8, device=device)  # touched: committed
        torch.cuda.synchronize(device)
        _say(
            {
                "pid": os.getpid(),
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name(0),
                "allocated_mb": mib,
                "reserved_mb": int(torch.cuda.memory_reserved(0)) // _MB,
            }
        )
    except Exception as e:  # noqa: BLE001 - any CUDA failure is the answer the parent needs
        _say({"error": f"{type(e).__name__}: {e}"})
        return 1
    sys.stdin.readline()
    del block
    return 0


def _say(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``visible`` or ``hold MIB``; the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["visible"]:
        _say(visible())
        return 0
    if len(args) == 2 and args[0] == "hold" and args[1].isdigit():
        return hold(int(args[1]))
    print("usage: python -m gpuhub.gpucheck.probe visible | hold MIB", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

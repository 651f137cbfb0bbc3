"""The command line of the GPU check: ``python -m gpuhub.gpucheck`` (``scripts/gpu-check``).

Exit status: 0 when no section failed, 1 when one did, 2 when the check cannot run here
(no NVIDIA driver, a device that does not exist) — with one sentence on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .checks import NoDriver, Options, load_nvml, run_check
from .devices import UsageError
from .report import FAIL

DEFAULT_OUT = "gpu-check-report"


def parser() -> argparse.ArgumentParser:
    """The check's options."""
    p = argparse.ArgumentParser(
        prog="gpu-check",
        description="Check gpuhub on this machine's NVIDIA GPUs: NVML inventory, the notebook "
        "extension's sampler (whole GPU, MIG, GPM), device isolation and a torch job. "
        "Writes OUT.json and OUT.md.",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="OUT",
        help=f"where the report goes, without .json/.md (default: ./{DEFAULT_OUT})",
    )
    p.add_argument(
        "--device",
        metavar="UUID|INDEX",
        help="the device to lease for isolation and the torch job (default: the first GPU "
        "not in MIG mode, else the first MIG slice)",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=1024,
        metavar="MIB",
        help="what the torch job allocates (default: 1024)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long each child process may take to answer (default: 180)",
    )
    return p


def report_base(out: str) -> Path:
    """``OUT`` without a ``.json``/``.md`` suffix a person may have typed."""
    base = Path(out)
    return base.with_suffix("") if base.suffix in (".json", ".md") else base


def main(argv: list[str] | None = None) -> int:
    """Run the check; the exit status."""
    args = parser().parse_args(argv)
    if args.memory_mb < 1 or args.timeout <= 0:
        print("gpu-check: --memory-mb and --timeout must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="gpu-check: %(levelname)s %(message)s")
    log = logging.getLogger("gpuhub.gpucheck")
    try:
        nvml = load_nvml()
    except NoDriver as e:
        print(e, file=sys.stderr)
        return 2
    options = Options(device=args.device, memory_mb=args.memory_mb, timeout_s=args.timeout)
    try:
        report = asyncio.run(run_check(nvml, options, log))
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # NVML is gone already; nothing to release
    json_path, md_path = report.write(report_base(args.out))
    for s in report.sections:
        print(f"{s.status:>13}  {s.title}: {s.summary}")
    print(f"{report.status:>13}  report: {json_path} and {md_path}")
    return 1 if report.status == FAIL else 0

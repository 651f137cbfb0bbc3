"""JupyterLab's first paint in Chromium, with and without gpuhub's JupyterLab extension.

One real JupyterHub of the embedded default (local servers, a simulated pool) and two
users with running servers on the same GPU profile: **gpuhub** has everything as shipped,
**plain** has gpuhub's JupyterLab extension turned off in its own JupyterLab settings
(``labconfig/page_config.json``, ``disabledExtensions``), so it is the stock JupyterLab
of the same environment. Each round opens a new browser context per user (no cache
carried over, as a person's first visit), logged in through the hub's form, and times
``page.goto(/user/NAME/lab)`` until:

* **status bar**: JupyterLab's status bar is drawn (``#jp-main-statusbar`` visible), in
  both: what the extension's loading adds to JupyterLab's own start;
* **GPU item**: gpuhub's item shows the leased device (``.jp-gpuhub-status[data-state=ok]``,
  gpuhub only): a usable JupyterLab as gpuhub defines it.

The two users alternate which goes first. Debian's Chromium through Playwright, as the
browser tests run it.

    .venv/bin/python benchmarks/bench_first_paint.py --rounds 10 --json out.json

See docs/benchmarks.md ("JupyterLab's first paint").
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import fmt, host, percentile  # noqa: E402 - benchmarks/common.py
from playwright.sync_api import Browser, expect  # noqa: E402

from tests.support.browser import chromium, log_in, new_page  # noqa: E402
from tests.support.hub import Hub  # noqa: E402

LABEXTENSION = "@gpuhub/jupyterlab-gpuhub"
USERS = {"gpuhub": "paint-gpuhub", "plain": "paint-plain"}


def start_servers(hub: Hub) -> None:
    """Both users' servers on ``gpu-1``; plain's JupyterLab without gpuhub's extension."""
    for kind, user in USERS.items():
        hub.add_user(user)
        if kind == "plain":
            config = hub.state / "homes" / user / ".jupyter" / "labconfig"
            config.mkdir(parents=True, exist_ok=True)
            disabled = {"disabledExtensions": {LABEXTENSION: True}}
            (config / "page_config.json").write_text(json.dumps(disabled))
        r = hub.spawn(user, {"profile": "gpu-1"})
        assert r.status_code in (201, 202), r.text
        hub.wait_ready(user, timeout=120)


def one_visit(browser: Browser, hub: Hub, kind: str) -> dict[str, float]:
    """A first visit's times (seconds) from ``goto`` to the status bar and the GPU item."""
    page = log_in(new_page(browser), hub, USERS[kind])
    try:
        t0 = time.perf_counter()
        page.goto(f"{hub.url}/user/{USERS[kind]}/lab", wait_until="commit")
        expect(page.locator("#jp-main-statusbar")).to_be_visible(timeout=120000)
        times = {"status_bar": time.perf_counter() - t0}
        if kind == "gpuhub":
            item = page.locator(".jp-gpuhub-status[data-state=ok]")
            expect(item).to_contain_text(" GB", timeout=120000)
            times["gpu_item"] = time.perf_counter() - t0
        else:
            assert page.locator(".jp-gpuhub-status").count() == 0, "the extension is on"
        return times
    finally:
        page.context.close()


def bench(args: argparse.Namespace, hub: Hub) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"gpuhub": [], "plain": []}
    with chromium() as browser:
        one_visit(browser, hub, "gpuhub")  # Chromium's own first start, not counted
        for i in range(args.rounds):
            for kind in ("gpuhub", "plain") if i % 2 == 0 else ("plain", "gpuhub"):
                time.sleep(args.settle)
                runs[kind].append(one_visit(browser, hub, kind))

    def stats(kind: str, what: str) -> dict[str, Any]:
        values = [r[what] for r in runs[kind] if what in r]
        return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}

    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": host(),
        "rounds": args.rounds,
        "status_bar": {kind: stats(kind, "status_bar") for kind in runs},
        "gpu_item": stats("gpuhub", "gpu_item"),
        "runs": runs,
    }


def print_table(results: dict[str, Any]) -> None:
    sb, gpu = results["status_bar"], results["gpu_item"]
    print(f"\nJupyterLab's first paint, {results['rounds']} visits each (s from goto)")
    print("| JupyterLab | status bar p50 | p95 | GPU item p50 | p95 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| with gpuhub's extension | {fmt(sb['gpuhub']['p50'])} | {fmt(sb['gpuhub']['p95'])}"
        f" | {fmt(gpu['p50'])} | {fmt(gpu['p95'])} |"
    )
    print(f"| without (stock) | {fmt(sb['plain']['p50'])} | {fmt(sb['plain']['p95'])} | - | - |")
    with_, without = sb["gpuhub"]["p50"], sb["plain"]["p50"]
    if with_ and without:
        print(f"\nthe extension adds {100 * (with_ / without - 1):+.1f} % to the status bar's p50")
        print(f"GPU item p50 / stock status bar p50 = {gpu['p50'] / without:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=10, help="visits per JupyterLab")
    p.add_argument("--settle", type=float, default=1.0, help="seconds of rest before a visit")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    hub = Hub(Path(tempfile.mkdtemp(prefix="bench-paint-")))
    try:
        hub.start()
        start_servers(hub)
        results = bench(args, hub)
    finally:
        for user in USERS.values():
            if hub.proc is not None and hub.server(user) is not None:
                hub.stop_server(user)
        hub.stop()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

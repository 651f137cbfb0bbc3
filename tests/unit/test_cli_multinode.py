"""Multi-node jobs on the user's side: ``gpuhub job submit --nodes N --gpus-per-node M``,
what the CLI prints of a job or lease on several nodes, and what the JupyterLab server
extension tells the "Run as GPU job" dialog (``max_nodes``) and passes on (``nodes``).

No server: the request body is built from the parsed arguments against a temporary
``$HOME``, and the views are shaped as the API document says (a multi-node lease's
``node`` is its nodes joined with commas, each device names its ``node``). The command
against a real service is in tests/hub/test_cli_jobs.py, the dialog in a real browser in
tests/slurm/test_slurm_browser.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from gpuhub.cli import jobs as cli_jobs
from gpuhub.cli.commands import CliError
from gpuhub.cli.job_render import job_details
from gpuhub.cli.main import build_parser
from gpuhub.cli.render import devices_text, lease_sentence, nodes_text, options_report
from gpuhub.client import GpuhubError
from gpuhub.jobs.intake import JobLimits, check_request
from gpuhub.jobs.models import JobRequest
from jupyter_gpuhub import jobs as ext_jobs

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None,
         "outputs": [], "source": "print(1)\n"},
    ],
}  # fmt: skip
SCRIPT = "import torch.distributed\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home" / "ana"
    (home / "work").mkdir(parents=True)
    (home / "work" / "train.py").write_text(SCRIPT)
    (home / "work" / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    return Path(os.path.realpath(home))


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["job", "submit", *argv])


def _body(home: Path, *argv: str) -> dict[str, Any]:
    return cli_jobs.job_request(_args(*argv), home=home, cwd=home / "work")


# -- the request body -------------------------------------------------------------------


def test_nodes_and_gpus_per_node_go_into_the_request(home: Path) -> None:
    # with a count, the whole-GPU shape carries the nodes (the service takes a shape or
    # `nodes`, not both)
    assert _body(home, "train.py", "--nodes", "2", "--gpus-per-node", "2") == {
        "path": "work/train.py",
        "script": SCRIPT,
        "shape": {"kind": "gpu", "count": 2, "nodes": 2},
    }
    # --gpus-per-node is --gpus by another name: one destination, one shape
    assert _args("x.py", "--gpus-per-node", "4").gpus == _args("x.py", "--gpus", "4").gpus == 4
    body = _body(home, "train.py", "--nodes", "3", "--gpus", "8")
    assert body["shape"] == {"kind": "gpu", "count": 8, "nodes": 3} and "nodes" not in body
    # without a count, `nodes` multiplies the profile's
    body = _body(home, "train.py", "--nodes", "4", "--profile", "h100-ddp")
    assert body == {"path": "work/train.py", "script": SCRIPT, "profile": "h100-ddp", "nodes": 4}
    # a notebook too (it runs as a script); with a schedule the definition takes it as well
    assert _body(home, "train.ipynb", "--nodes", "2")["nodes"] == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--nodes", "2", "--gpus-per-node", "2"],
        ["--nodes", "4"],
        ["--nodes", "1", "--gpus", "2"],
        ["--nodes", "2", "--gpus", "1", "--profile", "h100-ddp"],
    ],
)
def test_the_service_takes_what_the_cli_sends(home: Path, argv: list[str]) -> None:
    """The body passes the service's own model and its checks across fields."""
    req = JobRequest.model_validate(_body(home, "train.py", *argv))
    check_request(req, JobLimits(default_max_runtime=3600, max_runtime=86400))
    nodes = int(argv[1])
    assert (req.shape.node_count if req.shape else req.nodes or 1) == nodes


def test_one_node_is_no_field(home: Path) -> None:
    body = _body(home, "train.py", "--nodes", "1", "--gpus", "2")
    assert "nodes" not in body and body["shape"] == {"kind": "gpu", "count": 2}
    assert "nodes" not in _body(home, "train.py", "--gpus-per-node", "2")
    assert _args("x.py").nodes is None


def test_only_whole_gpus_span_nodes(home: Path) -> None:
    for shape, flag in ((["--mig", "1g.10gb"], "--mig"), (["--shared"], "--shared")):
        with pytest.raises(CliError, match=rf"--nodes: only whole GPUs span nodes.*{flag}"):
            _body(home, "train.py", "--nodes", "2", *shape)
    # one node with a MIG slice is an ordinary job
    assert _body(home, "train.py", "--nodes", "1", "--mig", "1g.10gb")["shape"]["kind"] == "mig"


@pytest.mark.parametrize(
    "argv",
    [
        ["--nodes", "0"],
        ["--nodes", "two"],
        ["--nodes", "-1"],
        ["--gpus-per-node", "0"],
        ["--gpus-per-node", "2", "--shared"],
        ["--gpus-per-node", "2", "--mig", "1g.10gb"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _args("x.py", *argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--nodes" in err or "--gpus" in err


def test_help_says_what_the_options_do(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["job", "submit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--gpus N, --gpus-per-node N" in text
    assert "(with --nodes: on each node)" in text
    assert "--nodes N run on N nodes at once, each with --gpus-per-node GPUs" in text
    assert "torchrun on every node" in text and "max_nodes" in text and "Slurm" in text


# -- the service's words, in the command's ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "message", "expected"),
    [
        ("nodes", "nodes: profile gpu-1 allows at most 1 node",
         "--nodes: profile gpu-1 allows at most 1 node"),
        ("nodes", "the docker executor runs no multi-node jobs",
         "the docker executor runs no multi-node jobs (--nodes)"),
        ("shape.nodes", "shape.nodes: Input should be less than or equal to 16",
         "--nodes: Input should be less than or equal to 16"),
    ],
)  # fmt: skip
def test_node_fields_become_the_flag(field: str, message: str, expected: str) -> None:
    assert cli_jobs.flag_of(field) == "--nodes"
    e = cli_jobs.in_cli_words(GpuhubError(message, status=400, field=field))
    assert e.message == expected


# -- what the CLI prints ----------------------------------------------------------------


def _device(node: str, index: int) -> dict:
    return {"uuid": f"GPU-{node}-{index}", "index": index, "model": "H100", "memory_mb": 81920,
            "simulated": True, "slot": 0, "node": node}  # fmt: skip


def test_a_multinode_lease_reads_per_node() -> None:
    devices = [_device("gpu1", 0), _device("gpu1", 1), _device("gpu2", 0), _device("gpu2", 3)]
    assert devices_text(devices) == "gpu1 GPU 0,1; gpu2 GPU 0,3"
    # one node (devices name no node, or all the same one): as before
    assert devices_text([_device("gpu1", 0), _device("gpu1", 1)]) == "GPU 0,1"
    plain = [{k: v for k, v in d.items() if k != "node"} for d in devices[:2]]
    assert devices_text(plain) == "GPU 0,1"
    assert nodes_text("gpu1,gpu2,gpu3") == "gpu1, gpu2, gpu3"
    assert nodes_text("gpu1") == "gpu1" and nodes_text(None) is None
    lease = {"id": 9, "status": "active", "node": "gpu1,gpu2", "devices": devices,
             "shape": {"kind": "gpu", "count": 2, "nodes": 2}, "simulated": False}  # fmt: skip
    sentence = lease_sentence(lease)
    assert sentence.startswith("lease 9 granted: 2 nodes")
    assert sentence.endswith(" on gpu1 GPU 0,1; gpu2 GPU 0,3")
    one = {**lease, "node": "gpu1", "devices": devices[:2], "shape": {"kind": "gpu", "count": 2}}
    assert lease_sentence(one) == "lease 9 granted: 2x GPU on gpu1, GPU 0,1"


def test_job_show_names_a_multinode_jobs_nodes() -> None:
    job = {"id": 7, "name": "train", "status": "running", "path": "work/train.py",
           "kind": "script", "shape": {"kind": "gpu", "count": 2, "nodes": 2},
           "shape_text": "2 nodes × 2x GPU", "node": "gpu1,gpu2"}  # fmt: skip
    lines = job_details(job).splitlines()
    assert "shape:  2 nodes × 2x GPU" in lines and "nodes:  gpu1, gpu2" in lines
    assert "node:   gpu1" in job_details({**job, "node": "gpu1"}).splitlines()


def test_options_say_which_profiles_take_multinode_jobs() -> None:
    profiles = [
        {"name": "h100-ddp", "display_name": "H100 DDP", "shape": {"kind": "gpu", "count": 4},
         "text": "4 whole GPUs", "max_nodes": 4},
        {"name": "gpu-1", "display_name": "gpu-1", "shape": {"kind": "gpu", "count": 1},
         "text": "1 whole GPU", "max_nodes": 1},
    ]  # fmt: skip
    report = options_report({"shapes": [], "profiles": profiles, "queue_length": 0})
    assert "4 whole GPUs (jobs: up to 4 nodes)" in report
    assert re.search(r"^gpu-1 +gpu-1 +1 whole GPU +-$", report, re.M)
    assert "up to 1 node" not in report


# -- the JupyterLab server extension: what the dialog offers, what it passes on ------------


def test_the_extension_passes_nodes_on() -> None:
    assert ext_jobs.SUBMIT_FIELDS["nodes"] == (int, type(None))


OPTIONS = {
    "user": "ana",
    "shapes": [{"shape": {"kind": "gpu", "count": 2}, "text": "2 whole GPUs"}],
    "profiles": [
        {"name": "cpu", "shape": None, "max_nodes": 1, "default": True},
        {"name": "gpu-1", "shape": {"kind": "gpu", "count": 1}, "max_nodes": 1, "default": False},
        {"name": "h100-ddp", "shape": {"kind": "gpu", "count": 2}, "max_nodes": 4,
         "default": False, "credits_per_gpu_hour": {"min": 2.0, "max": 2.0},
         "credits_per_hour": {"min": 4.0, "max": 4.0}, "credits_text": "≈ 4 credits/h"},
    ],
    "jobs": {"max_runtime_s": {"min": 60, "default": 86400, "max": 604800}, "schedules": True},
    "queue_length": 0,
}  # fmt: skip


def test_max_nodes_of_the_jobs_profile() -> None:
    assert ext_jobs.max_nodes_of(OPTIONS, "h100-ddp") == 4
    assert ext_jobs.max_nodes_of(OPTIONS, "gpu-1") == 1
    assert ext_jobs.max_nodes_of(OPTIONS, "gone") == 1
    # no profile: the default GPU profile's (the first with a GPU, none being default)
    assert ext_jobs.max_nodes_of(OPTIONS, None) == 1
    first = {**OPTIONS, "profiles": OPTIONS["profiles"][::-1]}
    assert ext_jobs.max_nodes_of(first, None) == 4
    # an older service says nothing: one node
    older = {"profiles": [{"name": "h100-ddp", "shape": {"kind": "gpu", "count": 2}}]}
    assert ext_jobs.max_nodes_of(older, "h100-ddp") == 1


def test_the_dialog_gets_the_price_of_the_jobs_profile() -> None:
    """Per GPU, for the dialog to multiply by the GPUs and nodes chosen; None where the
    service does not say."""
    assert ext_jobs.prices_of(OPTIONS, "h100-ddp") == {
        "credits_per_gpu_hour": {"min": 2.0, "max": 2.0},
        "credits_per_hour": {"min": 4.0, "max": 4.0},
    }
    first = {**OPTIONS, "profiles": OPTIONS["profiles"][::-1]}
    assert ext_jobs.prices_of(first, None)["credits_per_gpu_hour"] == {"min": 2.0, "max": 2.0}
    unpriced = {"credits_per_gpu_hour": None, "credits_per_hour": None}
    assert ext_jobs.prices_of(OPTIONS, "gpu-1") == unpriced  # an older service
    assert ext_jobs.prices_of(OPTIONS, "gone") == unpriced

"""The Slurm inventory's parsing, on output captured from a real Slurm 22.05 cluster
(``tests/support/slurm_output.py``), and its errors: a failing scontrol is never "no nodes"."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from gpuhub.inventory import Node, SimulatedInventory
from gpuhub.inventory.slurm import (
    Gres,
    SlurmError,
    SlurmInventory,
    expand_hostlist,
    node_usable,
    outside_holds,
    parse_gres,
    parse_indices,
    parse_jobs,
    parse_nodes,
    parse_record,
    run_command,
    slurm_gpu_uuid,
    to_node,
)

from tests.support import slurm_output as out

MODELS = {"h100": "H100-80GB", "l4": "L4-24GB"}


def fake_runner(answers: dict[str, str], calls: list | None = None):
    """A runner answering by subcommand ("node" or "job"), recording each command line."""

    def run(argv):
        if calls is not None:
            calls.append(list(argv))
        answer = answers[argv[2]]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return run


# -- one-line records -----------------------------------------------------------------


def test_record_keeps_values_with_spaces_and_repeated_keys():
    pairs = parse_record(out.JOBS.splitlines()[7])  # job 8, "my training run"
    rec = dict(pairs)
    assert rec["JobId"] == "8"
    assert rec["JobName"] == "my training run"
    assert rec["UserId"] == "root(0)"
    assert rec["AllocNode:Sid"] == "localhost:3808"
    assert rec["TRES"] == "cpu=1,node=1,billing=1"
    assert rec["TresPerNode"] == "gres:gpu:h100:2"
    node = dict(parse_record(out.NODES_IDLE.splitlines()[0]))
    assert node["OS"] == "Linux 6.18.44-fc-v1300 #1 SMP PREEMPT_DYNAMIC @0"
    assert node["AllocTRES"] == ""
    multi = [k for k, _ in parse_record(out.JOBS.splitlines()[9])]  # job 10, two nodes
    assert multi.count("Nodes") == 2 and multi.count("GRES") == 2


def test_comment_with_lowercase_key_stays_whole():
    assert dict(parse_record(out.JOBS.splitlines()[2]))["Comment"] == "gpuhub lease=12"
    assert dict(parse_record(out.JOBS.splitlines()[8]))["Comment"] == "gpuhub:lease=12"


@pytest.mark.parametrize("line", ["garbage", "no key here", "lead NodeName=x State=IDLE"])
def test_unreadable_record(line):
    with pytest.raises(SlurmError, match="cannot read this line"):
        parse_record(line)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("gpu1", ["gpu1"]),
        ("gpu[1-2]", ["gpu1", "gpu2"]),
        ("gpu[1-3,7],login", ["gpu1", "gpu2", "gpu3", "gpu7", "login"]),
        ("n[08-10]", ["n08", "n09", "n10"]),
        ("r[1-2]-n[1-2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),
        ("", []),
    ],
)
def test_expand_hostlist(text, names):
    assert expand_hostlist(text) == names


def test_bad_hostlist():
    with pytest.raises(SlurmError, match="host list"):
        expand_hostlist("gpu[a-b]")


@pytest.mark.parametrize(
    ("text", "indices"),
    [("0", (0,)), ("1-2", (1, 2)), ("0,2-3", (0, 2, 3)), ("N/A", ()), ("", ())],
)
def test_indices(text, indices):
    assert parse_indices(text) == indices


@pytest.mark.parametrize(
    ("text", "gres"),
    [
        ("gpu:h100:4", (Gres("gpu", "h100", 4),)),
        ("gpu:4", (Gres("gpu", None, 4),)),
        ("gpu:h100:4(S:0-1)", (Gres("gpu", "h100", 4),)),
        ("gpu:h100:2(IDX:1-2)", (Gres("gpu", "h100", 2, (1, 2)),)),
        ("gpu:h100:0(IDX:N/A)", (Gres("gpu", "h100", 0),)),
        (
            "gpu:h100:2(IDX:0,3),gpu:l4:1(IDX:4),shard:8",
            (Gres("gpu", "h100", 2, (0, 3)), Gres("gpu", "l4", 1, (4,)), Gres("shard", None, 8)),
        ),
        ("(null)", ()),
        ("", ()),
    ],
)
def test_gres(text, gres):
    assert parse_gres(text) == gres


def test_bad_gres():
    with pytest.raises(SlurmError, match="cannot read the GRES 'gpu:h100:many'"):
        parse_gres("gpu:h100:many")


# -- nodes ----------------------------------------------------------------------------


def test_idle_cluster():
    nodes = parse_nodes(out.NODES_IDLE)
    assert [(n.name, n.state, n.usable, n.partitions) for n in nodes] == [
        ("gpu1", "IDLE", True, ("gpu",)),
        ("gpu2", "IDLE", True, ("gpu",)),
        ("gpu3", "IDLE", True, ("gpu",)),
    ]
    assert [list(n.gpus) for n in nodes] == [
        [(0, "h100"), (1, "h100"), (2, "h100"), (3, "h100")],
        [(0, "h100"), (1, "h100")],
        [(0, "l4"), (1, "l4")],
    ]
    assert all(n.reason == "" for n in nodes)


def test_busy_drained_and_down_nodes():
    for text in (out.NODES_BUSY, out.NODES_BUSY_DETAIL):
        gpu1, gpu2, gpu3 = parse_nodes(text)
        assert (gpu1.state, gpu1.usable, gpu1.reason) == ("MIXED", True, "")
        assert (gpu2.state, gpu2.usable) == ("MIXED+DRAIN", False)
        assert gpu2.reason.startswith("test drain [root@")
        assert (gpu3.state, gpu3.usable) == ("DOWN", False)
        assert gpu3.reason.startswith("broken [root@")
        assert gpu1.gres == (Gres("gpu", "h100", 4),)  # Gres=, never GresUsed=


@pytest.mark.parametrize(
    ("text", "state"),
    [
        (out.NODE_IDLE_DRAIN, "IDLE+DRAIN"),
        (out.NODE_NOT_RESPONDING, "IDLE+NOT_RESPONDING"),
        (out.NODE_DOWN_NOT_RESPONDING, "DOWN+NOT_RESPONDING"),
    ],
)
def test_unusable_node_states(text, state):
    [node] = parse_nodes(text)
    assert node.state == state
    assert not node.usable


@pytest.mark.parametrize(
    ("state", "usable"),
    [
        ("IDLE", True),
        ("MIXED", True),
        ("ALLOCATED", True),
        ("ALLOCATED+COMPLETING", True),
        ("IDLE+RESERVED", True),
        ("idle", True),
        ("IDLE*", False),
        ("DOWN", False),
        ("DOWN*", False),
        ("MIXED+DRAIN", False),
        ("IDLE+DRAIN", False),
        ("ALLOCATED+DRAIN", False),
        ("IDLE+FAIL", False),
        ("MIXED+FAIL", False),
        ("IDLE+NOT_RESPONDING", False),
        ("IDLE+MAINTENANCE", False),
        ("IDLE+REBOOT_REQUESTED", False),
        ("UNKNOWN", False),
        ("FUTURE", False),
        ("ERROR", False),
    ],
)
def test_node_usable(state, usable):
    assert node_usable(state) is usable


def test_to_node_models_memory_and_state():
    gpu1, gpu2, gpu3 = (to_node(n, MODELS) for n in parse_nodes(out.NODES_BUSY))
    assert isinstance(gpu1, Node)
    assert [(g.index, g.uuid, g.model, g.memory_mb) for g in gpu1.gpus] == [
        (i, f"GPU-slurm-gpu1-{i}", "H100-80GB", 80 * 1024) for i in range(4)
    ]
    assert [g.model for g in gpu3.gpus] == ["L4-24GB", "L4-24GB"]
    assert gpu3.gpus[0].memory_mb == 24 * 1024
    assert (gpu1.usable, gpu1.state) == (True, "MIXED")
    assert gpu2.usable is False and gpu2.state.startswith("MIXED+DRAIN: test drain [root@")
    assert gpu3.usable is False and gpu3.state.startswith("DOWN: broken")
    assert gpu1.labels == {"slurm.partitions": "gpu"}
    assert not gpu1.simulated and not any(g.simulated for g in gpu1.gpus)
    assert all(g.mode == "exclusive" for g in gpu1.gpus)


def test_unknown_and_untyped_gres():
    [node] = parse_nodes(out.NODES_IDLE.splitlines()[0].replace("gpu:h100:4", "gpu:v100:1,gpu:2"))
    assert [(g.index, g.model, g.memory_mb) for g in to_node(node, MODELS).gpus] == [
        (0, "v100", 0),
        (1, "GPU", 0),
        (2, "GPU", 0),
    ]
    assert [g.model for g in to_node(node, {"": "T4-16GB"}).gpus] == ["v100", "T4-16GB", "T4-16GB"]


def test_node_round_trip_keeps_state():
    node = to_node(parse_nodes(out.NODE_IDLE_DRAIN)[0], MODELS, simulated=True)
    assert Node.from_dict(node.to_dict()) == node
    back = Node.from_dict(node.to_dict())
    assert (back.usable, back.state, back.simulated) == (False, node.state, True)
    assert Node.from_dict({"name": "old"}).usable is True  # files written before the field


@pytest.mark.parametrize("text", ["", "  \n", "NodeName=x Arch=x86_64", "State=IDLE"])
def test_unreadable_node_output(text):
    with pytest.raises(SlurmError):
        parse_nodes(text)


def test_no_nodes_is_said_not_guessed():
    assert parse_nodes("No nodes in the system\n") == []


def test_node_with_bad_gres_names_the_node():
    with pytest.raises(SlurmError, match="node gpu1: cannot read the GRES"):
        parse_nodes(out.NODES_IDLE.replace("Gres=gpu:h100:4", "Gres=gpu:h100:x"))


# -- jobs and the GPUs they hold ------------------------------------------------------


def test_jobs():
    jobs = {j.job_id: j for j in parse_jobs(out.JOBS)}
    assert sorted(jobs, key=int) == [str(i) for i in range(1, 13)]
    assert jobs["8"].name == "my training run" and jobs["8"].user == "root"
    assert jobs["8"].gpus == {"gpu1": (Gres("gpu", "h100", 2, (1, 2)),)}
    assert jobs["10"].gpus == {
        "gpu1": (Gres("gpu", "h100", 1, (3,)),),
        "gpu2": (Gres("gpu", "h100", 1, (0,)),),
    }
    assert jobs["9"].comment == "gpuhub:lease=12"
    assert [j for j in jobs if jobs[j].holds] == ["7", "8", "9", "10"]
    assert jobs["1"].state == "CANCELLED" and jobs["1"].gpus == {}  # "GRES=" once it ended
    assert jobs["11"].state == "PENDING" and not jobs["11"].holds


def test_outside_holds():
    holds = outside_holds(parse_jobs(out.JOBS))
    assert set(holds) == {"gpu1", "gpu2"}  # gpu3's job 9 is gpuhub's own
    assert [(h.job_id, h.indices) for h in holds["gpu1"]] == [
        ("7", (0,)),
        ("8", (1, 2)),
        ("10", (3,)),
    ]
    [h] = holds["gpu2"]
    assert (h.job_id, h.indices, h.user, h.name, h.state) == ("10", (0,), "root", "wrap", "RUNNING")
    assert h.holder == "Slurm job 10 (outside gpuhub)"
    assert h.gpu_uuids == (slurm_gpu_uuid("gpu2", 0),) == ("GPU-slurm-gpu2-0",)
    everyone = outside_holds(parse_jobs(out.JOBS), own_comment_prefix="")
    assert [(h.job_id, h.indices) for h in everyone["gpu3"]] == [("9", (0,))]


def test_jobs_on_nodes_with_same_devices_share_one_detail():
    # Slurm writes "Nodes=gpu[1-2] ... GRES=..." when every node got the same devices
    line = out.JOBS.splitlines()[9].replace(
        "Nodes=gpu1 CPU_IDs=2 Mem=0 GRES=gpu:h100:1(IDX:3)   Nodes=gpu2 CPU_IDs=0 Mem=0 GRES=gpu:h100:1(IDX:0)",
        "Nodes=gpu[1-2] CPU_IDs=0 Mem=0 GRES=gpu:h100:1(IDX:0)",
    )
    [job] = parse_jobs(line)
    assert job.gpus == {n: (Gres("gpu", "h100", 1, (0,)),) for n in ("gpu1", "gpu2")}


def test_no_jobs():
    assert parse_jobs("No jobs in the system\n") == []
    with pytest.raises(SlurmError, match="printed nothing for the jobs"):
        parse_jobs("")


# -- the inventory source and its runner ----------------------------------------------


def test_inventory_reads_nodes_through_its_runner():
    calls: list = []
    inv = SlurmInventory(
        runner=fake_runner({"node": out.NODES_BUSY, "job": out.JOBS}, calls),
        models=MODELS,
        shared={"L4*": 4},
        simulated=True,
    )
    nodes = inv.nodes()
    assert calls == [["scontrol", "show", "node", "-o"]]
    assert [(n.name, len(n.gpus), n.usable) for n in nodes] == [
        ("gpu1", 4, True),
        ("gpu2", 2, False),
        ("gpu3", 2, False),
    ]
    assert [g.shares for g in nodes[2].gpus] == [4, 4]
    assert nodes[2].state.startswith("DOWN")  # sharing keeps the state
    assert all(n.simulated and all(g.simulated for g in n.gpus) for n in nodes)
    assert set(inv.outside_holds()) == {"gpu1", "gpu2"}
    assert calls[-1] == ["scontrol", "show", "job", "-d", "-o"]


def test_held_outside_names_each_gpu_with_its_job():
    inv = SlurmInventory(runner=fake_runner({"job": out.JOBS}))
    assert inv.held_outside() == {
        "GPU-slurm-gpu1-0": "Slurm job 7 (outside gpuhub)",
        "GPU-slurm-gpu1-1": "Slurm job 8 (outside gpuhub)",
        "GPU-slurm-gpu1-2": "Slurm job 8 (outside gpuhub)",
        "GPU-slurm-gpu1-3": "Slurm job 10 (outside gpuhub)",
        "GPU-slurm-gpu2-0": "Slurm job 10 (outside gpuhub)",
    }  # gpu3's job 9 is gpuhub's own; the other sources see nobody else
    assert SimulatedInventory().held_outside() == {}


def test_failing_scontrol_is_an_error_not_an_empty_pool():
    err = SlurmError("`scontrol show node -o` failed (exit status 1): " + out.NO_CONTROLLER)
    inv = SlurmInventory(runner=fake_runner({"node": err, "job": err}))
    with pytest.raises(SlurmError, match="Unable to contact slurm controller"):
        inv.nodes()
    with pytest.raises(SlurmError, match="Unable to contact slurm controller"):
        inv.outside_holds()
    with pytest.raises(SlurmError, match="Unable to contact slurm controller"):
        inv.held_outside()
    with pytest.raises(SlurmError, match="printed nothing"):
        SlurmInventory(runner=fake_runner({"node": ""})).nodes()


def test_run_command_errors(tmp_path):
    with pytest.raises(SlurmError, match="not installed here.*slurm-client"):
        run_command([str(tmp_path / "scontrol"), "show", "node", "-o"])
    failing = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('slurm_load_node error:\\n  down'); sys.exit(1)",
    ]
    with pytest.raises(SlurmError, match=r"failed \(exit status 1\): slurm_load_node error: down"):
        run_command(failing)
    with pytest.raises(SlurmError, match="did not answer within 0.2 s"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
    assert (
        run_command([sys.executable, "-c", "print('NodeName=a State=IDLE')"])
        == "NodeName=a State=IDLE\n"
    )


def test_a_node_reasons_stamp_says_since_when() -> None:
    from gpuhub.inventory.slurm_submit import reason_since

    at = reason_since("gpuhub-test node failure [root@2026-12-07T03:00:00]")
    assert at == dt.datetime(2026, 12, 7, 3, 0, 0).timestamp()  # slurmctld's local time
    assert reason_since("Not responding [slurm@2026-12-07T03:00:05]") == at + 5
    assert reason_since("no stamp") is None
    assert reason_since("") is None
    assert reason_since("bad [root@2026-13-40T99:00:00]") is None

"""The simulated inventory spec: node ranges, MIG layouts, time slicing, NVLink, errors."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from gpuhub.inventory import InventorySpecError, Node, SimulatedInventory
from gpuhub.inventory.simulated import expand_names, parse_mig_profile, parse_spec


def test_single_node_whole_gpus():
    [node] = parse_spec("node-1: 4xH100-80GB")
    assert node.name == "node-1"
    assert node.simulated
    assert [g.index for g in node.gpus] == [0, 1, 2, 3]
    assert [g.uuid for g in node.gpus] == [f"GPU-sim-node-1-{i}" for i in range(4)]
    for g in node.gpus:
        assert g.model == "H100-80GB"
        assert g.memory_mb == 80 * 1024
        assert g.mode == "exclusive"
        assert g.shares == 1
        assert not g.mig_enabled and g.mig_instances == ()
        assert g.nvlink_peers == ()
        assert g.simulated


def test_model_without_memory_and_whitespace():
    [node] = parse_spec("  n :  2 x T4 ,1×L4-24GB  ; ")
    assert [(g.index, g.model, g.memory_mb) for g in node.gpus] == [
        (0, "T4", 0),
        (1, "T4", 0),
        (2, "L4-24GB", 24 * 1024),
    ]


def test_empty_spec_is_empty_pool():
    assert parse_spec("") == []
    assert parse_spec(" ; ;") == []


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("gpu-[01-03]", ["gpu-01", "gpu-02", "gpu-03"]),
        ("gpu-[008-011]", ["gpu-008", "gpu-009", "gpu-010", "gpu-011"]),
        ("n[1-3]", ["n1", "n2", "n3"]),
        ("n[9-11]", ["n9", "n10", "n11"]),
        ("rack[1-2]-a", ["rack1-a", "rack2-a"]),
        ("solo", ["solo"]),
        (" padded ", ["padded"]),
        ("x[5-5]", ["x5"]),
    ],
)
def test_expand_names(names, expected):
    assert expand_names(names) == expected


def test_range_of_nodes_in_spec():
    nodes = parse_spec("gpu-[001-125]: 8xH100-80GB[nvlink]")
    assert len(nodes) == 125
    assert nodes[0].name == "gpu-001" and nodes[-1].name == "gpu-125"
    assert nodes[41].gpus[3].uuid == "GPU-sim-gpu-042-3"
    assert len({g.uuid for n in nodes for g in n.gpus}) == 125 * 8


def test_backwards_range():
    with pytest.raises(InventorySpecError, match=r"node range \[5-2\] runs backwards"):
        parse_spec("n[5-2]: 1xL4")


def test_mixed_mig_layout():
    [node] = parse_spec("a: 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]")
    [gpu] = node.gpus
    assert gpu.mig_enabled and gpu.mode == "mig"
    assert gpu.total_slices == 7
    assert [(m.index, m.profile, m.slices, m.memory_mb) for m in gpu.mig_instances] == [
        (0, "1g.10gb", 1, 10 * 1024),
        (1, "1g.10gb", 1, 10 * 1024),
        (2, "1g.10gb", 1, 10 * 1024),
        (3, "2g.20gb", 2, 20 * 1024),
        (4, "2g.20gb", 2, 20 * 1024),
    ]
    assert [m.uuid for m in gpu.mig_instances] == [f"MIG-sim-a-0-{j}" for j in range(5)]
    assert gpu.slice_units(gpu.mig_instances[0]) == Fraction(1, 7)
    assert gpu.slice_units(gpu.mig_instances[3]) == Fraction(2, 7)


def test_mig_on_several_gpus_and_groups():
    [node] = parse_spec("a: 2xA100-80GB[mig=7x1g.10gb], 1xH100-80GB[MIG=1x1c.3g.40gb]")
    assert [g.index for g in node.gpus] == [0, 1, 2]
    assert len({m.uuid for g in node.gpus for m in g.mig_instances}) == 15
    assert node.gpus[1].mig_instances[6].uuid == "MIG-sim-a-1-6"
    [m] = node.gpus[2].mig_instances
    assert (m.profile, m.slices, m.memory_mb, m.uuid) == (
        "1c.3g.40gb",
        3,
        40 * 1024,
        "MIG-sim-a-2-0",
    )


def test_slices_option():
    [node] = parse_spec("a: 1xA30-24GB[slices=4, mig=2x1g.6gb+1x2g.12gb]")
    [gpu] = node.gpus
    assert gpu.total_slices == 4
    assert [gpu.slice_units(m) for m in gpu.mig_instances] == [
        Fraction(1, 4),
        Fraction(1, 4),
        Fraction(1, 2),
    ]


def test_shared_option():
    [node] = parse_spec("b: 2xL4-24GB[shared=3], 1xL4-24GB")
    assert [(g.shares, g.mode) for g in node.gpus] == [
        (3, "shared"),
        (3, "shared"),
        (1, "exclusive"),
    ]


def test_nvlink_peers_are_per_group():
    [node] = parse_spec("n: 2xH100-80GB[nvlink], 2xH100-80GB[nvlink], 1xH100-80GB")
    u = [g.uuid for g in node.gpus]
    peers = [set(g.nvlink_peers) for g in node.gpus]
    assert peers == [{u[1]}, {u[0]}, {u[3]}, {u[2]}, set()]


def test_nvlink_full_mesh():
    [node] = parse_spec("n: 4xH100-80GB[NVLink]")
    for g in node.gpus:
        assert set(g.nvlink_peers) == {h.uuid for h in node.gpus} - {g.uuid}


def test_several_nodes():
    nodes = parse_spec(
        "a: 4xH100-80GB[nvlink], 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]; b: 2xL4-24GB[shared=3], 2xA100-80GB"
    )
    assert [n.name for n in nodes] == ["a", "b"]
    assert [len(n.gpus) for n in nodes] == [5, 4]
    assert nodes[0].gpus[4].uuid == "GPU-sim-a-4"
    assert nodes[1].gpus[3].model == "A100-80GB"


def test_simulated_inventory_source():
    nodes = SimulatedInventory(spec="x: 1xL4-24GB[shared=4]").nodes()
    assert nodes[0].gpus[0].shares == 4
    default = SimulatedInventory().nodes()
    assert [n.name for n in default] == ["sim-node-1"]
    assert all(g.simulated for n in default for g in n.gpus)


def test_parse_mig_profile():
    assert parse_mig_profile("1g.10gb") == (1, 10 * 1024)
    assert parse_mig_profile("1c.3g.40gb") == (3, 40 * 1024)
    with pytest.raises(InventorySpecError, match=r"'1g\.10' is not of the form"):
        parse_mig_profile("1g.10")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "a: 1xL4[foo]",
            "node a: unknown option 'foo' (known: mig=, slices=, shared=, nvlink)",
        ),
        ("a: 1xL4[shared=1]", "node a: unknown option 'shared=1'"),
        ("a: 1xL4[shared=x]", "node a: unknown option 'shared=x'"),
        ("a: 1xA30[slices=0]", "node a: unknown option 'slices=0'"),
        ("a: 1xL4[nvlink=yes]", "node a: unknown option 'nvlink=yes'"),
        (
            "a: 1xA100[mig=7x1g.5gb,shared=2]",
            "node a: a GPU cannot be both MIG and shared",
        ),
        (
            "a: 1xA100-40GB[mig=4x2g.10gb]",
            "node a: MIG layout uses 8 slices but the GPU has 7",
        ),
        (
            "a: 1xA30-24GB[slices=4,mig=3x2g.12gb]",
            "node a: MIG layout uses 6 slices but the GPU has 4",
        ),
        ("a: 1xA100[mig=seven]", "node a: MIG layout 'seven' is not '<count>x<profile>'"),
        ("a: 1xA100[mig=2x1g]", "MIG profile '1g' is not of the form '<slices>g.<memory>gb'"),
        ("a: H100", "node a: 'H100' is not '<count>x<model>[options]', e.g. '4xH100-80GB'"),
        ("a: 4 H100", "node a: '4 H100' is not '<count>x<model>[options]'"),
        ("a: 2xH100[nvlink", "node a: '2xH100[nvlink' is not '<count>x<model>[options]'"),
        ("a: 0xH100", "node a: GPU count must be at least 1 in '0xH100'"),
        ("a 4xH100", "'a 4xH100' has no ':' between node name and GPUs"),
        (": 4xH100", "a node entry has no name before ':'"),
        ("a: 1xL4; a: 2xL4", "node a is described twice"),
        ("gpu-[1-3]: 1xL4; gpu-2: 1xL4", "node gpu-2 is described twice"),
    ],
)
def test_errors(spec, message):
    with pytest.raises(InventorySpecError) as info:
        parse_spec(spec)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_node_dict_round_trip():
    nodes = parse_spec(
        "a: 2xH100-80GB[nvlink], 1xA100-40GB[mig=3x1g.10gb+2x2g.20gb]; b: 2xL4-24GB[shared=3]"
    )
    for node in nodes:
        d = node.to_dict()
        assert Node.from_dict(d) == node
        # through JSON too, as `gpuhub inventory --json` writes it (tuples become lists)
        back = Node.from_dict(json.loads(json.dumps(d)))
        assert back == node
        assert json.dumps(back.to_dict()) == json.dumps(d)
        for g in back.gpus:
            assert isinstance(g.mig_instances, tuple)
            assert isinstance(g.nvlink_peers, tuple)
    d = nodes[0].to_dict()
    assert d["name"] == "a" and d["simulated"] is True
    assert d["gpus"][2]["mig_instances"][3] == {
        "uuid": "MIG-sim-a-2-3",
        "index": 3,
        "profile": "2g.20gb",
        "slices": 2,
        "memory_mb": 20 * 1024,
    }
    assert d["gpus"][0]["nvlink_peers"] == ("GPU-sim-a-1",)


def test_node_from_dict_defaults_and_labels():
    node = Node.from_dict(
        {
            "name": "real",
            "gpus": [{"uuid": "GPU-1", "index": 0, "model": "NVIDIA H100", "memory_mb": 81559}],
            "labels": {"zone": "b"},
        }
    )
    assert node.simulated is False
    assert node.labels == {"zone": "b"}
    [g] = node.gpus
    assert (g.mig_instances, g.nvlink_peers, g.shares, g.simulated) == ((), (), 1, False)
    assert Node.from_dict(node.to_dict()).labels == {"zone": "b"}

"""What ``GET /me/options`` offers, from the scheduler's pool view: the shapes the pool can
give and the models behind each (``gpuhub.service.options``)."""

from __future__ import annotations

from gpuhub.scheduler.shapes import MigSlice, SharedGpu, WholeGpus
from gpuhub.service.options import models_text, pool_shapes, shape_models

POOL = (
    "a: 4xH100-80GB, 1xA100-40GB[mig=7x1g.5gb], 1xL4-24GB[shared=4];"
    " b: 2xA100-80GB, 1xA100-40GB[mig=2x3g.20gb]"
)


def test_the_shapes_of_a_pool_and_the_models_behind_each(make) -> None:
    view = make(POOL).pool_view()
    shapes = pool_shapes(view)
    assert shapes == [
        WholeGpus(count=1), WholeGpus(count=2), WholeGpus(count=4),
        MigSlice(kind="mig", profile="1g.5gb"), MigSlice(kind="mig", profile="3g.20gb"),
        SharedGpu(kind="shared"),
    ]  # fmt: skip
    models = {s: shape_models(view, s) for s in shapes}
    assert models[WholeGpus(count=1)] == ["A100-80GB", "H100-80GB"]
    assert models[WholeGpus(count=2)] == ["A100-80GB", "H100-80GB"]
    assert models[WholeGpus(count=4)] == ["H100-80GB"]  # only node a has four
    assert models[MigSlice(kind="mig", profile="3g.20gb")] == ["A100-40GB"]
    assert models[SharedGpu(kind="shared")] == ["L4-24GB"]
    # a profile's model filter narrows them, as the scheduler matches models
    assert shape_models(view, WholeGpus(count=1, model="A100")) == ["A100-80GB"]
    assert shape_models(view, WholeGpus(count=3, model="A100")) == []


def test_the_most_gpus_on_a_node_is_offered_too(make) -> None:
    assert [s.count for s in pool_shapes(make("a: 3xH100-80GB; b: 1xL4-24GB").pool_view())] == [
        1, 2, 3,
    ]  # fmt: skip
    assert pool_shapes(make("a: 1xL4-24GB[shared=2]").pool_view()) == [SharedGpu(kind="shared")]


def test_models_text() -> None:
    assert models_text([]) == ""
    assert models_text(["H100-80GB"]) == "H100-80GB"
    assert models_text(["A100-80GB", "H100-80GB"]) == "A100-80GB or H100-80GB"
    assert models_text(["A", "B", "C"]) == "A, B or C"

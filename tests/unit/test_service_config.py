"""The gpuhub service's settings, the traitlets way: enums, validation into TraitError with
a sentence naming the problem, and inventory backends named through entry points."""

from __future__ import annotations

import pytest
from gpuhub.inventory import FileInventory, NvmlInventory, SimulatedInventory
from gpuhub.service.app import INVENTORY_ENTRY_POINTS, GpuhubService
from jupyterhub.traitlets import EntryPointType
from traitlets import TraitError
from traitlets.config import Config


def service(**settings) -> GpuhubService:
    return GpuhubService(config=Config({"GpuhubService": settings}))


def test_queue_policy_is_one_of_two():
    assert GpuhubService().queue_policy == "best-effort"
    assert service(queue_policy="strict").queue_policy == "strict"
    with pytest.raises(TraitError, match="best-effort.*strict"):
        service(queue_policy="fifo")


@pytest.mark.parametrize(
    "quota, words",
    [
        ({"max_units": -1}, "max_units: Input should be greater than or equal to 0"),
        ({"max_units": 2, "colour": "red"}, "unknown field 'colour'"),
        ({"period": "term"}, "period 'term' needs term_start and term_end"),
    ],
)
def test_a_bad_default_user_quota_is_a_trait_error_naming_the_problem(quota, words):
    with pytest.raises(TraitError) as info:
        service(default_user_quota=quota)
    assert "GpuhubService.default_user_quota" in str(info.value)
    assert words in str(info.value)


def test_a_good_default_user_quota_or_none_is_taken():
    quota = {"max_units": 2, "gpu_hours": 40, "period": "week"}
    assert service(default_user_quota=quota).default_user_quota == quota
    assert service(default_user_quota=None).default_user_quota is None


def test_inventories_are_named_through_entry_points():
    trait = GpuhubService.class_traits()["inventory_class"]
    assert isinstance(trait, EntryPointType)
    assert trait.entry_point_group == INVENTORY_ENTRY_POINTS == "gpuhub.inventories"
    assert {"nvml", "simulated", "files"} <= set(trait.load_entry_points())
    for name, cls in (
        ("simulated", SimulatedInventory),
        ("nvml", NvmlInventory),
        ("files", FileInventory),
        ("Simulated", SimulatedInventory),
        ("gpuhub.inventory.FileInventory", FileInventory),
        (SimulatedInventory, SimulatedInventory),
    ):
        assert service(inventory_class=name).inventory_class is cls, name
    assert GpuhubService().inventory_class is NvmlInventory
    with pytest.raises(TraitError):
        service(inventory_class="no-such-inventory")
    with pytest.raises(TraitError):
        service(inventory_class="gpuhub.service.app.GpuhubService")  # not an inventory

"""What the inventory could ever hold: whether a shape fits an empty pool, and the most
it can cost.

These answers depend on the nodes and their GPUs only, never on who holds what, so the
scheduler's pool and its what-if copies share one :class:`InventoryFit` and its memory.
Every node counts, usable or not, and devices held outside gpuhub too: what waits for
them is queued, not refused.
"""

from __future__ import annotations

from fractions import Fraction

from ..inventory import Gpu, Node
from .shapes import MigSlice, SharedGpu, WholeGpus, model_matches


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class InventoryFit:
    """Whether a shape could fit the inventory, and its most units, remembered by bucket."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = list(nodes)
        self._feasible: dict[tuple, str | None] = {}
        self._max_units: dict[tuple, Fraction] = {}

    def _gpus(self, model: str | None = None) -> list[Gpu]:
        return [g for n in self.nodes for g in n.gpus if model_matches(g.model, model)]

    def feasible(self, shape: WholeGpus | MigSlice | SharedGpu) -> str | None:
        """None if ``shape`` could fit on an empty pool, else a sentence saying why not."""
        key = shape.bucket
        if key not in self._feasible:
            self._feasible[key] = self._why_infeasible(shape)
        return self._feasible[key]

    def max_units(self, shape: WholeGpus | MigSlice | SharedGpu) -> Fraction:
        """The most GPU units any device that fits ``shape`` costs: what a queued request is
        charged until it is granted (its slice or seat is known only then)."""
        key = shape.bucket
        if key not in self._max_units:
            self._max_units[key] = self._most_units(shape)
        return self._max_units[key]

    def _most_units(self, shape: WholeGpus | MigSlice | SharedGpu) -> Fraction:
        if isinstance(shape, WholeGpus):
            return Fraction(shape.units)
        gpus = self._gpus(shape.model)
        if isinstance(shape, MigSlice):
            return max(
                g.slice_units(m)
                for g in gpus
                for m in g.mig_instances
                if m.profile == shape.profile
            )
        return max(Fraction(1, g.shares) for g in gpus if g.shares > 1)

    def _why_infeasible(self, shape: WholeGpus | MigSlice | SharedGpu) -> str | None:
        if isinstance(shape, WholeGpus):
            return self._why_not_whole(shape)
        want = f" {shape.model}" if shape.model else ""
        if isinstance(shape, MigSlice):
            if not any(
                m.profile == shape.profile for g in self._gpus(shape.model) for m in g.mig_instances
            ):
                offered = sorted({m.profile for g in self._gpus() for m in g.mig_instances})
                return (
                    f"no{want} GPU in the pool offers MIG profile {shape.profile} "
                    f"(offered: {', '.join(offered) or 'none'})"
                )
            return None
        if not any(g.shares > 1 for g in self._gpus(shape.model)):
            return f"no{want} GPU in the pool is shared (time-sliced)"
        return None

    def _why_not_whole(self, shape: WholeGpus) -> str | None:
        want = f" {shape.model}" if shape.model else ""
        per_node = sorted(
            (
                sum(
                    1
                    for g in n.gpus
                    if g.mode == "exclusive" and model_matches(g.model, shape.model)
                )
                for n in self.nodes
            ),
            reverse=True,
        )
        best = per_node[0] if per_node else 0
        if best == 0 and shape.model:  # no such model at all: name the ones there are
            here = sorted({g.model for g in self._gpus()})
            return f"no whole GPU in the pool is a {shape.model} (here: {', '.join(here)})"
        if best < shape.count:
            return (
                f"no node has {shape.count} whole{want} GPUs (the most on one node is {best}); "
                "ask for fewer GPUs or another model"
            )
        enough = sum(1 for n in per_node if n >= shape.count)
        if enough < shape.node_count:
            return (
                f"{_plural(enough, 'node')} of the pool {'has' if enough == 1 else 'have'} "
                f"{_plural(shape.count, 'whole' + want + ' GPU')}, and this request spans "
                f"{shape.node_count}; ask for fewer nodes or fewer GPUs per node"
            )
        return None

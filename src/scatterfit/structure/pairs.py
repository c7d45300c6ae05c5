"""Neighbour lists of periodic structures (vesin), reusable between optimisation steps with a skin.

The list holds integer index pairs and cell shifts only; distances are recomputed differentiably by the
consumers (histogram engines, energies, restraints), so one list serves all of them.
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.histogram import PeriodicPairs
from scatterfit.structure.structure import Structure

MAX_PAIRS = 400_000_000


def periodic_pairs(structure: Structure, cutoff: float, *, n_threads: int = 1) -> PeriodicPairs:
    """Half neighbour list (each pair once) of a periodic structure up to ``cutoff`` Å, periodic images included."""
    import vesin

    if structure.cell is None or not any(structure.pbc):
        raise ScatterfitError("a neighbour list over periodic images needs a periodic structure with a cell")
    if not cutoff > 0:
        raise ScatterfitError(f"cutoff must be positive, got {cutoff}")
    n = len(structure)
    volume = float(structure.volume.detach())
    estimate = 0.5 * n * n / volume * 4.18879 * cutoff**3
    if estimate > MAX_PAIRS:
        raise ScatterfitError(
            f"about {estimate:.2e} pairs within {cutoff:.1f} Å: too many to hold in memory; lower rmax or the box size")
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=False, n_threads=n_threads)
    pos = structure.positions.detach().cpu().numpy().astype(np.float64)
    box = structure.cell.detach().cpu().numpy().astype(np.float64)
    i, j, s = nl.compute(points=pos, box=box, periodic=list(structure.pbc), quantities="ijS")
    dev = structure.device
    if len(s) and np.abs(s).max() > 127:
        raise ScatterfitError("cutoff spans more than 127 cells; use a larger cell (supercell) for this rmax")
    return PeriodicPairs(
        i=torch.as_tensor(i.astype(np.int32), device=dev),
        j=torch.as_tensor(j.astype(np.int32), device=dev),
        shifts=torch.as_tensor(s.astype(np.int8), device=dev),
        cutoff=float(cutoff),
    )


class NeighbourCache:
    """Reuses a neighbour list while no atom has moved more than skin/2 and the cell is unchanged.

    Args:
        skin: extra radius, Å, added to the requested cutoff when the list is (re)built.
    """

    def __init__(self, skin: float = 1.0):
        self.skin = float(skin)
        self._pairs: PeriodicPairs | None = None
        self._ref_positions: torch.Tensor | None = None
        self._ref_cell: torch.Tensor | None = None
        self.builds = 0

    def get(self, structure: Structure, cutoff: float) -> PeriodicPairs:
        pos = structure.positions.detach()
        cell = structure.cell.detach()
        if self._pairs is not None and self._pairs.cutoff >= cutoff and self._ref_cell.shape == cell.shape \
                and self._ref_positions.shape == pos.shape:
            moved = float((pos - self._ref_positions).norm(dim=1).max())
            # a pair vector S·cell changes by at most |S|·‖Δcell‖ with |S| ≲ cutoff/σ_min(cell) + 1
            dcell = float(torch.linalg.matrix_norm(cell - self._ref_cell, ord=2))
            smin = float(torch.linalg.svdvals(self._ref_cell).min())
            change = 2 * moved + dcell * (self._pairs.cutoff / smin + 1.0)
            if change < self._pairs.cutoff - cutoff:
                return self._pairs
        self._pairs = periodic_pairs(structure, cutoff + self.skin)
        self._ref_positions, self._ref_cell = pos.clone(), cell.clone()
        self.builds += 1
        return self._pairs

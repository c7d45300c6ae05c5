"""The one neighbour list of the package: pairs (i, j, S) built by vesin, shared by scattering, energies,
restraints and the chemistry report.

The list holds integer indices and cell shifts only, in a compact form (int32 indices, int8 shifts: 11 bytes a
pair); every distance is recomputed differentiably from the structure's positions and cell by
:func:`pair_vectors`, so gradients reach both. A :class:`NeighbourCache` reuses a list between optimisation
steps while no atom has moved more than the skin allows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure

BYTES_PER_PAIR = 40
"""Peak memory per pair while a list is built: vesin's output (two 8-byte indices, three 4-byte shifts) plus the
compact copy kept (4 + 4 + 3 bytes)."""


@dataclass(frozen=True)
class Neighbours:
    """Pairs (i, j, S) with vector r_ij = x_j − x_i + S·cell and |r_ij| < cutoff.

    Attributes:
        i, j: [P] int32 atom indices.
        shifts: [P, 3] int8 integer cell shifts (all zero for a finite structure).
        cutoff: the radius the list was built with, Å.
        full: True if each pair appears as (i, j) and (j, i); False for a half list (each pair once).
    """

    i: torch.Tensor
    j: torch.Tensor
    shifts: torch.Tensor
    cutoff: float
    full: bool = False

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def subset(self, keep: torch.Tensor) -> "Neighbours":
        """The pairs selected by ``keep`` ([P] bool mask or indices)."""
        return Neighbours(self.i[keep], self.j[keep], self.shifts[keep], self.cutoff, self.full)


@dataclass(frozen=True)
class CellLists:
    """Every pair of a fully periodic structure within a histogram's range, found by cell lists at each pass of
    the CPU kernels (scattering/_kernels.py): no list is stored, so memory stays O(N) whatever the number of
    pairs. Passed as ``pairs`` where a Neighbours list would go."""


CELL_LISTS = CellLists()


def available_memory() -> int:
    """Physical memory of this machine, bytes (what a list may take at most is half of it)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def estimated_pairs(structure: Structure, cutoff: float, full: bool) -> float:
    """Expected number of pairs within ``cutoff`` Å: N(N−1)/2 for a finite structure (at most), N²/2·(4π/3)r³/V
    for a periodic one (twice that for a full list)."""
    n = len(structure)
    if structure.cell is not None and any(structure.pbc):
        half = 0.5 * n * n / float(structure.volume.detach()) * 4.18879 * cutoff**3
    else:
        half = 0.5 * n * (n - 1)
    return half * (2 if full else 1)


def neighbours(structure: Structure, cutoff: float, *, full: bool = False) -> Neighbours:
    """Neighbour list within ``cutoff`` Å, periodic images included where the structure is periodic.

    A Structure is immutable, so its lists are kept in its own cache by (cutoff, full): the terms of one loss
    evaluation that ask for the same list (e.g. the Buckingham and Coulomb parts of BKS) share one build.

    Raises:
        ScatterfitError: for a non-positive cutoff, or when the list would need more than half of this
            machine's memory (the message says how much and what to change).
    """
    if not cutoff > 0:
        raise ScatterfitError(f"cutoff must be positive, got {cutoff}")
    key = ("neighbours", float(cutoff), bool(full))
    cache = structure.cache
    if key not in cache:
        cache[key] = _build(structure, float(cutoff), full)
    return cache[key]


def _build(structure: Structure, cutoff: float, full: bool) -> Neighbours:
    import vesin

    periodic = structure.cell is not None and any(structure.pbc)
    need = estimated_pairs(structure, cutoff, full) * BYTES_PER_PAIR
    limit = available_memory() // 2
    if need > limit:
        raise ScatterfitError(
            f"the neighbour list of {len(structure)} atoms within {cutoff:.1f} Å needs about {need / 2**30:.1f} GB "
            f"(this machine allows {limit / 2**30:.1f} GB); lower rmax (or the cutoff) or use a smaller box")
    pos = structure.positions.detach().cpu().numpy().astype(np.float64)
    box = structure.cell.detach().cpu().numpy().astype(np.float64) if periodic else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=cutoff, full_list=full)
    i, j, s = nl.compute(points=pos, box=box, periodic=list(structure.pbc) if periodic else False,
                         quantities="ijS")
    if len(s) and np.abs(s).max() > 127:
        raise ScatterfitError(f"a cutoff of {cutoff:.1f} Å spans more than 127 cells; use a supercell for this rmax")
    dev = structure.device
    return Neighbours(i=torch.as_tensor(i.astype(np.int32), device=dev),
                      j=torch.as_tensor(j.astype(np.int32), device=dev),
                      shifts=torch.as_tensor(s.astype(np.int8), device=dev), cutoff=cutoff, full=full)


def pair_vectors(structure: Structure, nb: Neighbours) -> torch.Tensor:
    """r_ij = x_j − x_i + S·cell, [P, 3] Å, differentiable in positions and cell."""
    pos = structure.positions
    r = pos[nb.j] - pos[nb.i]
    if structure.cell is not None and len(nb) and bool(nb.shifts.abs().sum() > 0):
        r = r + nb.shifts.to(structure.dtype) @ structure.cell
    return r


def pair_distances(structure: Structure, nb: Neighbours) -> torch.Tensor:
    """|r_ij|, [P] Å (differentiable; pairs at zero distance get a tiny floor so gradients stay finite)."""
    r = pair_vectors(structure, nb)
    return torch.sqrt((r * r).sum(-1).clamp_min(1e-20))


class NeighbourCache:
    """Reuses a half list of a periodic structure while no atom has moved more than skin/2 and the cell is
    (nearly) unchanged, across the structures of an optimisation.

    Args:
        skin: extra radius, Å, added to the requested cutoff when the list is (re)built.
    """

    def __init__(self, skin: float = 1.0):
        self.skin = float(skin)
        self._pairs: Neighbours | None = None
        self._ref_positions: torch.Tensor | None = None
        self._ref_cell: torch.Tensor | None = None
        self.builds = 0

    def get(self, structure: Structure, cutoff: float) -> Neighbours:
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
        self._pairs = _build(structure, cutoff + self.skin, full=False)
        self._ref_positions, self._ref_cell = pos.clone(), cell.clone()
        self.builds += 1
        return self._pairs


def reused_neighbours(structure: Structure, cutoff: float, cache: NeighbourCache) -> Neighbours:
    """Half list of the pairs within ``cutoff`` Å: for a periodic structure from ``cache`` (reused across the
    structures of an optimisation; it may then hold pairs up to ``cutoff`` + skin, which the caller must weigh
    to zero), else built for this structure."""
    if structure.periodic:
        return cache.get(structure, cutoff)
    return neighbours(structure, cutoff)

"""Cell lists (scattering/_kernels.histogram_cells, backward_cells) against the stored neighbour list: the same
periodic pair histogram and the same gradients for positions, cell and occupancies, in cubic, triclinic and thin
cells, with atoms outside the cell, several types and a range many cells long."""

import numpy as np
import pytest
import torch
from ase import Atoms

from scatterfit.scattering.histogram import pair_histogram
from scatterfit.structure import Structure
from scatterfit.structure.neighbours import CELL_LISTS, neighbours


@pytest.mark.parametrize("cell, n, rmax", [
    ([[3.5, 0, 0], [0, 3.5, 0], [0, 0, 3.5]], 4, 12.0),         # the range spans three cells
    ([[5, 0, 0], [1.5, 6, 0], [-1.2, 0.7, 7]], 30, 15.0),      # triclinic
    ([[20, 0, 0], [3, 18, 0], [2, -4, 22]], 500, 9.0),         # a box larger than the range
    ([[3, 0, 0], [0, 4, 0], [0, 0, 50]], 40, 20.0),            # a thin slab cell
])
def test_cell_lists_equal_the_neighbour_list(cell, n, rmax):
    _compare(np.random.default_rng(n), cell, n, rmax, occupancy_low=0.5)


@pytest.mark.parametrize("seed", range(12))
def test_cell_lists_equal_the_neighbour_list_in_skewed_cells(seed):
    """Random strongly skewed cells (off-diagonal terms up to 0.7 of a length), ranges of 0.3–6 cells, an atom of
    zero occupancy: the per-atom bounds of the bin runs (perpendicular to c, and along it) miss no pair."""
    rng = np.random.default_rng(100 + seed)
    while True:
        lengths = rng.uniform(3, 15, 3)
        cell = (np.diag(lengths) + np.triu(rng.uniform(-0.7, 0.7, (3, 3)) * lengths[:, None], 1)
                + np.tril(rng.uniform(-0.5, 0.5, (3, 3)) * lengths[:, None], -1))
        if abs(np.linalg.det(cell)) > 0.2 * np.prod(lengths):
            break
    _compare(rng, cell.tolist(), int(rng.integers(2, 60)), float(rng.uniform(3, 20)), occupancy_low=0.0)


def _compare(rng, cell, n, rmax, occupancy_low):
    cell = torch.tensor(cell, dtype=torch.float64)
    pos = torch.tensor(rng.random((n, 3))) @ cell
    pos = pos + torch.tensor(rng.integers(-2, 3, (n, 3)), dtype=torch.float64) @ cell  # unwrapped atoms
    occ = torch.tensor(rng.uniform(occupancy_low, 1.0, n))
    if occupancy_low == 0.0:
        occ[0] = 0.0  # no histogram entries, but a gradient
    types = torch.tensor(rng.integers(0, 3, n))
    structure = Structure.from_ase(Atoms(f"Ni{n}", positions=pos.numpy(), cell=cell.numpy(), pbc=True))
    dr = 0.01
    n_nodes = int(rmax / dr) + 4
    results = []
    for pairs in (neighbours(structure, (n_nodes - 3) * dr + 0.1), CELL_LISTS):
        p, c, o = (t.clone().requires_grad_() for t in (pos, cell, occ))
        h = pair_histogram(p, o, types, 3, dr=dr, n_nodes=n_nodes, cell=c, pairs=pairs)
        weights = torch.sin(0.37 * torch.arange(h.numel(), dtype=torch.float64)).view_as(h)
        (h * weights).sum().backward()
        results.append((h.detach(), p.grad, c.grad, o.grad))
    for listed, binned in zip(*results):
        assert float(listed.abs().max()) > 0
        assert float((listed - binned).abs().max()) <= 1e-12 * float(listed.abs().max())

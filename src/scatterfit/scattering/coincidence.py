"""Atoms on top of each other: the distance below which a pair is left out of the pair histograms (its 1/r
amplitude is undefined there) and found instead, so the Debye sum can add its exact sinc(0) = 1 term."""

from __future__ import annotations

import numpy as np
import torch

R_COINCIDENT = 1e-6
"""Å: pairs of atoms closer than this are left out of every histogram (their 1/r amplitude is undefined); the
Debye sum adds their exact contribution (sinc(0) = 1), see :func:`coincident_pairs`."""


SORT_AXIS = (0.7265173981, 0.5484317579, 0.4139988855)
"""A unit vector with irrational component ratios (1, 1/ρ, 1/ρ² of the plastic number ρ), along which distinct
sites of a lattice cut do not fall into one run of candidates as a lattice plane does along x (there a whole plane
was one run: 0.4 s of a 20,000-atom particle's Debye sum). Any axis finds every coincident pair; this one keeps
the runs short."""


def coincident_pairs(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (i < j) of atoms closer than R_COINCIDENT, [P] int64 each (usually empty): candidates from a sort
    along SORT_AXIS (|u·Δx| ≤ |Δx|, so every coincident pair is a run of the sort), confirmed by their full
    distance."""
    x = positions.detach().cpu().numpy()
    along = x @ np.asarray(SORT_AXIS)
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order]) < R_COINCIDENT
    found = []
    k = 0
    while k < len(gaps):
        if not gaps[k]:
            k += 1
            continue
        end = k
        while end < len(gaps) and gaps[end]:
            end += 1
        run = order[k:end + 1]  # atoms whose x lie within R_COINCIDENT of their neighbour in the sort
        d = np.linalg.norm(x[run][:, None, :] - x[run][None, :, :], axis=-1)
        a, b = np.nonzero(np.triu(d < R_COINCIDENT, 1))
        found.extend(zip(np.minimum(run[a], run[b]), np.maximum(run[a], run[b])))
        k = end + 1
    dev = positions.device
    if not found:
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        return empty, empty
    i, j = np.asarray(found).T
    return torch.as_tensor(i, device=dev), torch.as_tensor(j, device=dev)

"""The space group of a periodic structure, found by spglib within a tolerance: what a refinement started from
and what it ended in, so a refinement that lowered the symmetry says so."""

from __future__ import annotations

import warnings

import numpy as np

from scatterfit.structure.structure import Structure


def detect_space_group(structure: Structure, symprec: float = 1e-3) -> dict | None:
    """{"number": int, "symbol": Hermann–Mauguin, "operations": symmetry operations of this cell} of a periodic
    structure within ``symprec`` Å, or None for a finite structure. Atoms of different elements or occupancies
    count as different. Fewer operations in the same cell means lower symmetry (space-group numbers alone do not
    order subgroups)."""
    import spglib

    if structure.cell is None or not structure.periodic:
        return None
    cell = structure.cell.detach().cpu().numpy().astype(float)
    frac = structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    keys = list(zip(structure.numbers.tolist(), np.round(structure.occupancy.detach().cpu().numpy(), 6).tolist()))
    kinds = {k: i + 1 for i, k in enumerate(sorted(set(keys)))}
    with warnings.catch_warnings():  # spglib 2.x warns about its own error-handling switch on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = spglib.get_symmetry_dataset((cell, frac % 1.0, [kinds[k] for k in keys]), symprec=symprec)
    if dataset is None:
        return {"number": 1, "symbol": "P1", "operations": 1}
    return {"number": int(dataset.number), "symbol": str(dataset.international),
            "operations": int(len(dataset.rotations))}

"""Short-range geometry shared by energies, restraints and the chemistry report: bond-angle triplets of a
neighbour list (structure/neighbours.py), angles, element masks and per-element tables."""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.neighbours import Neighbours


def triplets(nb: Neighbours, within: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of bonds sharing their first atom: indices (a, b) into a full list with i[a] == i[b], a < b.

    Args:
        nb: a full neighbour list.
        within: optional [P] bool mask of the bonds to use (e.g. those shorter than a bond cutoff).

    Returns:
        a, b: [T] int64 bond indices; the angle j[a]–i[a]–j[b] is centred on atom i[a].
    """
    if not nb.full:
        raise ScatterfitError("triplets need a full neighbour list")
    idx = torch.arange(len(nb), device=nb.i.device)
    if within is not None:
        idx = idx[within]
    if idx.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=nb.i.device)
        return empty, empty
    centre = nb.i[idx]
    order = torch.argsort(centre, stable=True)
    idx, centre = idx[order], centre[order]
    counts = torch.bincount(centre)
    counts = counts[counts > 0]
    starts = torch.cumsum(counts, 0) - counts
    a_list, b_list = [], []
    for k in range(int(counts.max()) if counts.numel() else 0):
        for m in range(k + 1, int(counts.max())):
            ok = counts > m
            a_list.append(idx[starts[ok] + k])
            b_list.append(idx[starts[ok] + m])
    if not a_list:
        empty = torch.zeros(0, dtype=torch.int64, device=nb.i.device)
        return empty, empty
    return torch.cat(a_list), torch.cat(b_list)


def bond_angles(vectors: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles between bond vectors a and b, [T] degrees (differentiable; clamped away from 0° and 180°
    only inside acos, where its derivative diverges)."""
    u, v = vectors[a], vectors[b]
    cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1)).clamp_min(1e-12)
    return torch.rad2deg(torch.acos(cos.clamp(-1 + 1e-9, 1 - 1e-9)))


def species_mask(numbers: torch.Tensor, element) -> torch.Tensor:
    """[N] bool: atoms of ``element`` (symbol, atomic number, "*" for any, or alternatives such as "P|Si")."""
    if element in ("*", None):
        return torch.ones_like(numbers, dtype=torch.bool)
    if isinstance(element, str) and "|" in element:
        mask = torch.zeros_like(numbers, dtype=torch.bool)
        for e in element.split("|"):
            mask |= numbers == atomic_number(e.strip())
        return mask
    return numbers == atomic_number(element)


def parse_pair(spec) -> tuple[str, str]:
    """("Si", "O") from "Si-O" (either side may be "*" for any element, or alternatives like "P|Si");
    one-line error otherwise."""
    parts = [p.strip() for p in str(spec).split("-")]
    if len(parts) != 2:
        raise ScatterfitError(f"pair '{spec}' must look like 'Si-O' ('*' matches any element, 'P|Si' either)")
    for p in parts:
        if p != "*":
            for e in p.split("|"):
                atomic_number(e.strip())
    return parts[0], parts[1]


def per_atom(numbers: torch.Tensor, values: dict, dtype, default: float = 0.0) -> torch.Tensor:
    """[N] per-atom values from a per-element table {atomic number: value} (``default`` for the rest)."""
    lookup = torch.full((int(numbers.max()) + 1,), float(default), dtype=dtype, device=numbers.device)
    for z, v in values.items():
        if z < lookup.numel():
            lookup[z] = float(v)
    return lookup[numbers]


def atomic_number(element) -> int:
    """Atomic number of a symbol ("Si") or a number, with a clear error for unknown elements."""
    from ase.data import atomic_numbers

    if isinstance(element, (int, np.integer)):
        return int(element)
    if element not in atomic_numbers:
        raise ScatterfitError(f"unknown element '{element}'")
    return atomic_numbers[element]

"""Short-range geometry shared by energies, restraints and the chemistry report: neighbour lists of finite or
periodic structures, differentiable pair vectors and bond-angle triplets.

The list (integer indices and cell shifts) is built outside autograd by vesin; every distance and angle is
recomputed from the structure's positions and cell, so gradients reach both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure

MAX_NEIGHBOURS = 50_000_000


@dataclass(frozen=True)
class Neighbours:
    """Pairs (i, j, S) with vector r_ij = x_j − x_i + S·cell, |r_ij| < cutoff.

    Attributes:
        i, j: [P] int64 atom indices.
        shifts: [P, 3] integer cell shifts (float dtype of the structure, so S·cell is one matmul).
        cutoff: Å.
        full: True if each pair appears as (i, j) and (j, i); False for a half list (each pair once).
    """

    i: torch.Tensor
    j: torch.Tensor
    shifts: torch.Tensor
    cutoff: float
    full: bool

    def __len__(self) -> int:
        return int(self.i.shape[0])


def neighbours(structure: Structure, cutoff: float, *, full: bool = False) -> Neighbours:
    """Neighbour list within ``cutoff`` Å, periodic images included where the structure is periodic.

    A Structure is immutable, so its lists are memoised on it by (cutoff, full): the terms of one loss
    evaluation that ask for the same list (e.g. the Buckingham and Coulomb parts of BKS) share one build."""
    if not cutoff > 0:
        raise ScatterfitError(f"cutoff must be positive, got {cutoff}")
    memo = structure.__dict__.setdefault("_neighbour_memo", {})  # not a dataclass field: with_() starts afresh
    key = (float(cutoff), bool(full))
    if key not in memo:
        memo[key] = _build_neighbours(structure, cutoff, full)
    return memo[key]


def _build_neighbours(structure: Structure, cutoff: float, full: bool) -> Neighbours:
    import vesin

    n = len(structure)
    periodic = structure.cell is not None and any(structure.pbc)
    if periodic:
        density = n / float(structure.volume.detach())
        if n * density * 4.19 * cutoff**3 > MAX_NEIGHBOURS:
            raise ScatterfitError(f"too many neighbour pairs within {cutoff:.1f} Å for {n} atoms; lower the cutoff")
    pos = structure.positions.detach().cpu().numpy().astype(np.float64)
    box = structure.cell.detach().cpu().numpy().astype(np.float64) if periodic else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=full)
    pbc = list(structure.pbc) if periodic else False
    i, j, s = nl.compute(points=pos, box=box, periodic=pbc, quantities="ijS")
    dev, dt = structure.device, structure.dtype
    return Neighbours(i=torch.as_tensor(i.astype(np.int64), device=dev),
                      j=torch.as_tensor(j.astype(np.int64), device=dev),
                      shifts=torch.as_tensor(s.astype(np.float64), dtype=dt, device=dev),
                      cutoff=float(cutoff), full=full)


def pair_vectors(structure: Structure, nb: Neighbours) -> torch.Tensor:
    """r_ij = x_j − x_i + S·cell, [P, 3] Å, differentiable in positions and cell."""
    pos = structure.positions
    r = pos[nb.j] - pos[nb.i]
    if structure.cell is not None and len(nb) and bool(nb.shifts.abs().sum() > 0):
        r = r + nb.shifts @ structure.cell
    return r


def pair_distances(structure: Structure, nb: Neighbours) -> torch.Tensor:
    """|r_ij|, [P] Å (differentiable; pairs at zero distance get a tiny floor so gradients stay finite)."""
    r = pair_vectors(structure, nb)
    return torch.sqrt((r * r).sum(-1).clamp_min(1e-20))


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

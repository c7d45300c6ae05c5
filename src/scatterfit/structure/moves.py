"""Moves that change the atom set — add, remove, swap species, change composition — for use between gradient
stages or inside a swarm's builder. Every move returns a new, valid Structure: added atoms respect a minimum
distance, removals keep at least one atom, composition changes stay within the given bounds.

Which atoms to remove is decided by ``removal_scores``: the first-order change of the loss when an atom fades
out, occupancy_i · ∂L/∂occupancy_i, from one backward pass (positive: the loss drops without that atom). The same score
ranks the worst-fitting atoms (data terms) and the highest-energy ones (energy terms), because both enter the
loss.
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.builders import as_generator
from scatterfit.structure.geometry import atomic_number
from scatterfit.structure.structure import Structure


def _min_image_distances(structure: Structure, points: np.ndarray) -> np.ndarray:
    """[M] distance from each point to the nearest atom (minimum image for periodic structures), Å."""
    pos = structure.positions.detach().cpu().numpy()
    d = points[:, None, :] - pos[None, :, :]
    if structure.cell is not None and any(structure.pbc):
        cell = structure.cell.detach().cpu().numpy()
        frac = d @ np.linalg.inv(cell)
        frac -= np.round(frac)
        d = frac @ cell
    return np.sqrt((d * d).sum(-1)).min(1)


def emptiest_site(structure: Structure, seed=0, trials: int = 2000) -> tuple[np.ndarray, float]:
    """The point farthest from every atom among ``trials`` random points (inside the cell, or inside the
    structure's bounding box for finite ones), and its distance to the nearest atom (Å)."""
    rng = as_generator(seed)
    if structure.cell is not None and any(structure.pbc):
        pts = rng.random((trials, 3)) @ structure.cell.detach().cpu().numpy()
    else:
        pos = structure.positions.detach().cpu().numpy()
        lo, hi = pos.min(0), pos.max(0)
        pts = rng.uniform(lo, hi, (trials, 3))
    dist = _min_image_distances(structure, pts)
    k = int(np.argmax(dist))
    return pts[k], float(dist[k])


def add_atom(structure: Structure, element, min_dist: float, seed=0, biso: float | None = None) -> Structure:
    """One atom of ``element`` added at the emptiest site; error if no site is ``min_dist`` Å from every atom."""
    point, dist = emptiest_site(structure, seed)
    if dist < min_dist:
        raise ScatterfitError(f"no empty site {min_dist} Å from every atom (largest gap {dist:.2f} Å)")
    dt, dev = structure.dtype, structure.device
    z = atomic_number(element)
    b = float(structure.biso.detach().mean()) if biso is None else float(biso)
    return structure.with_(
        positions=torch.cat([structure.positions.detach(), torch.tensor(point, dtype=dt, device=dev)[None]]),
        numbers=torch.cat([structure.numbers, torch.tensor([z], device=dev)]),
        occupancy=torch.cat([structure.occupancy.detach(), torch.ones(1, dtype=dt, device=dev)]),
        biso=torch.cat([structure.biso.detach(), torch.tensor([b], dtype=dt, device=dev)]),
        charges=torch.cat([structure.charges, torch.zeros(1, dtype=structure.charges.dtype, device=dev)]))


def removal_scores(loss_of_structure, structure: Structure) -> torch.Tensor:
    """[N] first-order loss decrease on removing each atom, occupancy_i · ∂L/∂occupancy_i (one backward pass).

    Args:
        loss_of_structure: callable(Structure) -> 0-d loss tensor (e.g. lambda s: loss(State(s, params))).
    """
    occ = structure.occupancy.detach().clone().requires_grad_(True)
    value = loss_of_structure(structure.with_(occupancy=occ))
    (g,) = torch.autograd.grad(value, occ)
    return g * occ.detach()  # L(occ_i → 0) − L ≈ −g_i occ_i, so the decrease is g_i occ_i


def remove_atoms(structure: Structure, scores: torch.Tensor, count: int = 1) -> Structure:
    """The structure without the ``count`` atoms of highest score (e.g. from ``removal_scores``)."""
    n = len(structure)
    if not 0 <= count < n:
        raise ScatterfitError(f"can remove 0..{n - 1} of {n} atoms, asked for {count}")
    order = torch.argsort(scores.detach(), descending=True)
    keep = torch.ones(n, dtype=torch.bool, device=structure.device)
    keep[order[:count]] = False
    return structure.select(keep)


def swap_species(structure: Structure, seed=0, pairs: int = 1) -> Structure:
    """Exchange the species of ``pairs`` random pairs of atoms of different elements (composition kept)."""
    rng = as_generator(seed)
    numbers = structure.numbers.clone()
    kinds = torch.unique(numbers)
    if len(kinds) < 2:
        raise ScatterfitError("swapping species needs at least two elements")
    for _ in range(int(pairs)):
        i = int(rng.integers(len(numbers)))
        others = torch.nonzero(numbers != numbers[i]).squeeze(1)
        j = int(others[int(rng.integers(len(others)))])
        numbers[i], numbers[j] = numbers[j].clone(), numbers[i].clone()
    return structure.with_(numbers=numbers)


def change_composition(structure: Structure, element_from, element_to, count: int = 1, seed=0,
                       bounds: tuple[float, float] = (0.0, 1.0)) -> Structure:
    """Turn ``count`` random atoms of ``element_from`` into ``element_to``, keeping the fraction of
    ``element_to`` within ``bounds``."""
    rng = as_generator(seed)
    z_from, z_to = atomic_number(element_from), atomic_number(element_to)
    numbers = structure.numbers.clone()
    candidates = torch.nonzero(numbers == z_from).squeeze(1).cpu().numpy()
    if len(candidates) < count:
        raise ScatterfitError(f"only {len(candidates)} atoms of {element_from} to change, asked for {count}")
    new_fraction = (int((numbers == z_to).sum()) + count) / len(numbers)
    if not bounds[0] <= new_fraction <= bounds[1]:
        raise ScatterfitError(f"the fraction of {element_to} would be {new_fraction:.3f}, outside {list(bounds)}")
    chosen = rng.choice(candidates, size=count, replace=False)
    numbers[torch.as_tensor(chosen)] = z_to
    return structure.with_(numbers=numbers)

"""Lowering a crystal's symmetry to a chosen subgroup (a phase transition: tetragonal I4/mmm → orthorhombic
Fmmm, cubic Pm-3m → tilted Pnma), as a refinement setting.

The group–subgroup relations and their cell transformations are the Bilbao tables bundled with pyxtal; the
structure keeps its atoms where they are and is re-expressed in the subgroup's conventional cell, with the
subgroup's operations declared on it (Structure.operations), so a "lattice" refinement frees the subgroup's cell
parameters and "fractional" its Wyckoff coordinates, although the starting atoms still have the higher symmetry.

Conventions (Bilbao): a transformation (P, p) takes a basis (a, b, c) to (a', b', c') = (a, b, c) P and moves
the origin to p; fractional coordinates become x' = P⁻¹ (x − p).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.spacegroup import hall_table
from scatterfit.structure.structure import Structure

MAX_STEPS = 4  # the longest chain of maximal subgroups searched for a target


def space_group_number(target) -> int:
    """An International Tables number from a number or a Hermann–Mauguin symbol ("Fmmm", "P 4/m m m",
    "Pnma"; spaces and underscores ignored)."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 1 <= int(target) <= 230:
            raise ScatterfitError(f"no space group number {target} (1–230)")
        return int(target)
    if isinstance(target, str):
        if target.strip().isdigit():
            return space_group_number(int(target))
        want = target.replace(" ", "").replace("_", "").lower()
        for _, number, _, names, _ in hall_table():
            if want in names:
                return number
        raise ScatterfitError(f"unknown space group symbol '{target}'")
    raise ScatterfitError(f"a space group is a number or a symbol, got {target!r}")


def _standardising(structure: Structure, symprec: float):
    """(number of the structure's space group, T, o): the setting of that group that the Bilbao tables use (origin
    choice 2 and hexagonal axes where the group has a choice; diamond's Fd-3m in spglib's default origin choice 1
    found no subgroup setting) has basis (a, b, c) T⁻¹ and coordinates x_s = T x + o (spglib's convention)."""
    from scatterfit.structure.spacegroup import _site_symmetry

    data = _site_symmetry(structure, symprec, declared=False)[0]
    if data is None:
        return 1, np.eye(3), np.zeros(3)
    bilbao = [hall for hall, n, choice, _, _ in hall_table() if n == int(data.number) and choice in ("2", "H")]
    if bilbao:
        data = _site_symmetry(structure, symprec, declared=False, hall_number=bilbao[0])[0]
    return int(data.number), np.asarray(data.transformation_matrix, float), np.asarray(data.origin_shift, float)


def maximal_subgroups(number: int, kinds: tuple = ("t", "k")) -> list[tuple[int, np.ndarray]]:
    """The maximal subgroups of a space group of ``kinds`` ("t": translationengleiche, "k": klassengleiche) as
    (number, [P | p] 3 × 4), in the order of the tables."""
    from pyxtal.symmetry import Group

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = Group(number)
        found = []
        for kind in kinds:
            table = group.get_max_t_subgroup() if kind == "t" else group.get_max_k_subgroup()
            for h, tf in zip(table["subgroup"], table["transformation"]):
                found.append((int(h), np.asarray(tf, float)[:3, :4]))
    return found


def _maximal(number: int) -> list[tuple[int, np.ndarray]]:
    """:func:`maximal_subgroups`, the smaller cell first where a group appears more than once."""
    return sorted(maximal_subgroups(number), key=lambda item: abs(np.linalg.det(item[1][:, :3])))


def subgroup_path(parent: int, target: int) -> list[tuple[int, np.ndarray]]:
    """The shortest chain of maximal subgroups from ``parent`` to ``target``: [(number, [P | p]), ...], each
    transformation relative to the previous group's standard setting, the smallest cell at each step.

    Raises:
        ScatterfitError: ``target`` is not a subgroup of ``parent`` within MAX_STEPS steps.
    """
    if target == parent:
        return []
    frontier = [(parent, [])]
    seen = {parent}
    for _ in range(MAX_STEPS):
        following = []
        for group, path in frontier:
            for h, tf in _maximal(group):
                step = path + [(h, tf)]
                if h == target:
                    return step
                if h not in seen:
                    seen.add(h)
                    following.append((h, step))
        frontier = following
    raise ScatterfitError(f"space group {target} is not a subgroup of the structure's group {parent} "
                          f"(searched {MAX_STEPS} steps of maximal subgroups)")


def _fill(positions: np.ndarray, cell: np.ndarray, new_cell: np.ndarray, tol: float = 1e-6):
    """Every lattice translate of the atoms (cartesian [N, 3] in ``cell``) that falls in the cell ``new_cell``
    (a superlattice or sublattice setting of the same lattice): (fractional coordinates [M, 3] in the new cell,
    the source atom of each [M])."""
    inverse = np.linalg.inv(new_cell)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float) @ new_cell
    reach = corners @ np.linalg.inv(cell)  # the new cell's corners in old fractional coordinates
    lo, hi = np.floor(reach.min(0)) - 1, np.ceil(reach.max(0)) + 1
    shifts = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    frac_old = positions @ np.linalg.inv(cell)
    candidates = (frac_old[:, None, :] + shifts[None, :, :]) @ cell @ inverse  # [N, T, 3]
    inside = np.all((candidates > -tol) & (candidates < 1 - tol), axis=-1)
    atom, _ = np.nonzero(inside)
    frac = candidates[inside] % 1.0
    frac[np.abs(frac - 1.0) < tol] = 0.0
    return frac, atom


def _operations(number: int, structure: Structure, symprec: float):
    """The operations (rotations [K, 3, 3] ints, translations [K, 3]) of space group ``number`` in the setting
    of ``structure``'s cell, from spglib's table of settings: the first setting (origin choice 2 and hexagonal
    axes first, as the Bilbao tables) whose every operation maps the structure onto itself, or None."""
    import spglib

    from scatterfit.structure.spacegroup import operations_hold

    settings = sorted((choice not in ("2", "H", ""), hall) for hall, n, choice, _, _ in hall_table() if n == number)
    for _, hall in settings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ops = spglib.get_symmetry_from_database(hall)
        rotations, translations = np.asarray(ops["rotations"]), np.asarray(ops["translations"], float)
        if operations_hold(structure, rotations, translations, symprec):
            return rotations, translations
    return None


def lower_symmetry(structure: Structure, target, symprec: float = 1e-3, nudge: float = 1e-3) -> Structure:
    """``structure`` re-expressed in the conventional cell of a subgroup ``target`` (a number or symbol) of its
    space group, with the subgroup declared (space_group and operations): the same atoms, the same cartesian
    frame, more (or as many) atoms per cell.

    The parent's symmetric point is stationary for the distortions the subgroup allows (the misfit is even in
    them), so gradients cannot leave it; the start is therefore nudged off it inside the subgroup: the free cell
    lengths by relative ±``nudge`` (alternating signs) and the free Wyckoff coordinates by ±``nudge``
    (fractional). nudge = 0 keeps the atoms exactly where they are.

    Raises:
        ScatterfitError: a finite structure, or ``target`` is not a subgroup of the structure's group.
    """
    if structure.cell is None or not structure.periodic:
        raise ScatterfitError("a subgroup needs a periodic structure with a cell")
    number = space_group_number(target)
    parent, t_matrix, origin = _standardising(structure, symprec)
    path = subgroup_path(parent, number)
    cell = structure.cell.detach().cpu().numpy().astype(float)
    basis = np.linalg.inv(t_matrix)  # old basis → standard basis (as columns of combinations)
    shift = -basis @ origin  # the standard origin in old fractional coordinates
    for _, tf in path:
        p_matrix, p_shift = tf[:, :3], tf[:, 3]
        shift = shift + basis @ p_shift
        basis = basis @ p_matrix
    new_cell = basis.T @ cell  # rows a', b', c'
    positions = structure.positions.detach().cpu().numpy().astype(float) - shift @ cell
    frac, source = _fill(positions, cell, new_cell)
    expected = len(structure) * abs(np.linalg.det(basis))
    if abs(len(frac) - expected) > 1e-6 * expected + 0.5:
        raise ScatterfitError(f"the subgroup cell holds {len(frac)} atoms, expected {expected:g} (a structure not "
                              f"in its space group's lattice within {symprec} Å?)")
    index = torch.as_tensor(source, device=structure.device)
    dtype, device = structure.dtype, structure.device
    lowered = Structure(torch.as_tensor(frac @ new_cell, dtype=dtype, device=device), structure.numbers[index],
                        torch.as_tensor(new_cell, dtype=dtype, device=device), (True, True, True),
                        structure.occupancy[index], structure.biso[index], structure.charges[index],
                        None if structure.uaniso is None else structure.uaniso[index], space_group=number)
    ops = _operations(number, lowered, symprec)
    if ops is None:
        raise ScatterfitError(f"no setting of space group {number} holds in the transformed cell of group "
                              f"{parent} (path {[parent] + [h for h, _ in path]})")
    lowered = lowered.with_(operations=ops)
    return _nudged(lowered, nudge) if nudge else lowered


def _nudged(structure: Structure, size: float) -> Structure:
    """``structure`` moved off its parent's symmetry inside its declared group (see lower_symmetry)."""
    from scatterfit.structure.spacegroup import lattice_rule, wyckoff_basis

    rule = lattice_rule(structure)
    cell = structure.cell.detach().cpu().numpy().astype(float)
    frac = structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    pattern = np.array([1.0, -1.0, 0.5, -0.5, 0.25, -0.25])
    scale = np.ones(3)
    if not rule.angles:
        for k, free in enumerate(rule.index[:3]):
            if free >= 0:
                scale[k] += size * pattern[free]
    basis = wyckoff_basis(structure)
    if basis is not None and basis.shape[1]:
        frac = frac + (basis @ (size * pattern[np.arange(basis.shape[1]) % 6])).reshape(-1, 3)
    new_cell = cell * scale[:, None]
    dtype, device = structure.dtype, structure.device
    return structure.with_(positions=torch.as_tensor(frac @ new_cell, dtype=dtype, device=device),
                           cell=torch.as_tensor(new_cell, dtype=dtype, device=device))

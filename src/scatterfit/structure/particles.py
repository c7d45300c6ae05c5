"""Discrete particles cut from any crystal (an element, a binary such as wurtzite CdSe, a ternary): spheres and
faceted shapes built from crystal planes (a Wulff-type construction), with the surface termination and the
stoichiometry as choices.

A faceted shape is a set of plane families {hkl} at relative distances from the centre; each family is expanded
by the crystal's point group (spglib) and by inversion, and the particle keeps the atoms inside every plane.
Named shapes: cube {100}, octahedron {111}, cuboctahedron {100} + {111} through the cube's edge midpoints,
truncated_octahedron (the regular one, d100/d111 = 2/√3), rhombic_dodecahedron {110}; for hexagonal crystals
hexagonal_prism {100} + {001}. Plane families refer to the crystal's own cell (for a cubic F or P cell the
usual indices).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.builders import MAX_ATOMS
from scatterfit.structure.structure import Structure

FACETED = {
    "cube": (((1, 0, 0), 1.0),),
    "octahedron": (((1, 1, 1), 1.0),),
    "cuboctahedron": (((1, 0, 0), 1.0), ((1, 1, 1), 2 / math.sqrt(3))),
    "truncated_octahedron": (((1, 1, 1), 1.0), ((1, 0, 0), 2 / math.sqrt(3))),
    "rhombic_dodecahedron": (((1, 1, 0), 1.0),),
    "hexagonal_prism": (((1, 0, 0), 1.0), ((0, 0, 1), 1.0)),
}
SHAPES = ("sphere", *FACETED)


def cut_particle(crystal: Structure, diameter: float, *, shape: str = "sphere", centre: str = "atom",
                 scale: float = 1.0, aspect: float = 1.0, stoichiometric: bool = False,
                 termination: str | None = None) -> Structure:
    """A particle cut from a periodic ``crystal``, its cell scaled by ``scale``: every atom of the repeated
    crystal inside the shape, with its species, occupancy, Biso and charge.

    Args:
        crystal: the periodic structure to cut from.
        diameter: Å: the sphere's diameter, or twice the centre-to-plane distance of the shape's first plane
            family (a cube's edge, the distance between opposite faces of an octahedron).
        shape: one of SHAPES.
        centre: "atom" (on the first atom of the cell), "cell" (the centre of the cell), or an element symbol (on
            the first atom of that element): where the particle is centred, which sets its surface termination.
        scale: relative lattice scale (1 = the crystal's own cell).
        aspect: hexagonal_prism only: the height along c over the diameter.
        stoichiometric: trim the least-coordinated surface atoms of the species in excess until the particle's
            composition is the crystal's (to the nearest atom).
        termination: an element symbol: atoms of the other species left with one neighbour or none (dangling at
            the surface) are removed, so that element terminates the surface.
    Raises:
        ScatterfitError: a finite crystal, a bad size, shape, centre or termination, or too many atoms.
    """
    if crystal.cell is None or not crystal.periodic:
        raise ScatterfitError("a particle is cut from a periodic crystal (give a CIF or a crystal with a cell)")
    if not (np.isfinite(diameter) and diameter > 0):
        raise ScatterfitError(f"the particle diameter must be positive, got {diameter}")
    if shape not in SHAPES:
        raise ScatterfitError(f"unknown particle shape '{shape}' (known: {', '.join(SHAPES)})")
    if not (np.isfinite(aspect) and aspect > 0):
        raise ScatterfitError(f"the particle aspect must be positive, got {aspect}")
    cell = crystal.cell.detach().cpu().numpy().astype(float) * float(scale)
    frac = crystal.positions.detach().cpu().numpy() @ np.linalg.inv(crystal.cell.detach().cpu().numpy())
    centre_frac = _centre(crystal, frac, centre)
    planes = None if shape == "sphere" else _planes(crystal, cell, shape, 0.5 * float(diameter), aspect)
    # a bounding sphere: every named shape's vertices lie within √3 × its largest plane distance
    radius = 0.5 * float(diameter) if planes is None else math.sqrt(3) * float(planes[:, 3].max()) * 1.01
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    reach = [int(np.ceil(radius / h)) + 1 for h in heights]
    if np.prod([2 * r + 1 for r in reach]) * len(crystal) > MAX_ATOMS * 4:
        raise ScatterfitError(f"a {diameter:g} Å particle of this crystal would hold more than {MAX_ATOMS} atoms")
    shifts = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    all_frac = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3)  # [S·N, 3]
    xyz = (all_frac - centre_frac) @ cell
    if planes is None:
        keep = np.linalg.norm(xyz, axis=1) <= 0.5 * float(diameter) + 1e-9
    else:
        keep = np.all(xyz @ planes[:, :3].T <= planes[:, 3] + 1e-9, axis=1)
    if not keep.any():
        raise ScatterfitError(f"a {diameter:g} Å {shape} holds no atom of this crystal")
    atom = np.tile(np.arange(len(crystal)), len(shifts))[keep]
    xyz = xyz[keep]
    numbers = crystal.numbers.cpu().numpy()
    if termination is not None or stoichiometric:
        bond = _bond_length(crystal)  # one neighbour search of the crystal for both surface rules
        if termination is not None:
            xyz, atom = _terminate(xyz, atom, numbers, termination, bond)
        if stoichiometric:
            xyz, atom = _stoichiometric(xyz, atom, numbers, crystal, bond)
    dt, dev = crystal.dtype, crystal.device
    index = torch.as_tensor(atom, device=dev)
    return Structure(torch.as_tensor(xyz, dtype=dt, device=dev), crystal.numbers[index],
                     occupancy=crystal.occupancy[index], biso=crystal.biso[index], charges=crystal.charges[index])


def _centre(crystal: Structure, frac: np.ndarray, centre: str) -> np.ndarray:
    """The particle's centre in the crystal's fractional coordinates."""
    from ase.data import atomic_numbers

    if centre == "atom":
        return frac[0]
    if centre == "cell":
        return np.full(3, 0.5)
    z = atomic_numbers.get(centre)
    where = np.flatnonzero(crystal.numbers.cpu().numpy() == z) if z else []
    if len(where) == 0:
        raise ScatterfitError(f"unknown particle centre '{centre}' (use atom, cell or an element of the crystal)")
    return frac[int(where[0])]


def _planes(crystal: Structure, cell: np.ndarray, shape: str, half: float, aspect: float) -> np.ndarray:
    """The bounding planes of a faceted shape: [P, 4] rows (unit outward normal n, distance d), keep n·r ≤ d."""
    from scatterfit.structure.spacegroup import _site_symmetry

    data = _site_symmetry(crystal, 1e-3)[0]
    rotations = np.eye(3)[None] if data is None else np.asarray(data.rotations, float)
    reciprocal = np.linalg.inv(cell).T  # rows: reciprocal vectors (without 2π)
    rows = []
    for hkl, relative in FACETED[shape]:
        distance = half * relative
        if shape == "hexagonal_prism" and hkl == (0, 0, 1):
            distance = half * aspect
        normals = set()
        for r in rotations:  # the family: h' = h R⁻¹ for positions x' = R x
            for sign in (1, -1):
                h = sign * np.asarray(hkl, float) @ np.linalg.inv(r)
                g = h @ reciprocal
                n = g / np.linalg.norm(g)
                normals.add(tuple(np.round(n, 9)))
        rows += [(*n, distance) for n in sorted(normals)]
    return np.array(rows)


def _bond_length(crystal: Structure) -> float:
    """1.2 × the shortest interatomic distance of the crystal, Å: what counts as a bond for the surface rules."""
    from ase.neighborlist import neighbor_list

    atoms = crystal.to_ase()
    d = neighbor_list("d", atoms, 6.0)
    return 1.2 * float(d.min())


def _coordination(xyz: np.ndarray, bond: float) -> np.ndarray:
    from scipy.spatial import cKDTree

    pairs = cKDTree(xyz).query_pairs(bond, output_type="ndarray")
    return np.bincount(pairs.reshape(-1), minlength=len(xyz))


def _terminate(xyz, atom, numbers, termination: str, bond: float):
    """Remove atoms not of ``termination`` that have at most one neighbour, until none is left."""
    from ase.data import atomic_numbers

    z = atomic_numbers.get(termination)
    if z is None or z not in set(numbers.tolist()):
        raise ScatterfitError(f"termination '{termination}' is not an element of the crystal")
    for _ in range(10):
        dangling = (_coordination(xyz, bond) <= 1) & (numbers[atom] != z)
        if not dangling.any():
            break
        xyz, atom = xyz[~dangling], atom[~dangling]
    return xyz, atom


def _stoichiometric(xyz, atom, numbers, crystal: Structure, bond: float):
    """Remove the least-coordinated (then outermost) atoms of the species in excess until the particle's
    composition is the crystal's, to the nearest atom."""
    occupancy = crystal.occupancy.detach().cpu().numpy()
    species = sorted(set(numbers.tolist()))
    target = np.array([occupancy[numbers == z].sum() for z in species])
    target = target / target.sum()
    while True:
        counts = np.array([(numbers[atom] == z).sum() for z in species], float)
        # the fewest atoms of the composition that fits: limited by the scarcest species
        units = np.min(counts / target)
        want = np.round(units * target)
        excess = counts - want
        k = int(np.argmax(excess))
        if excess[k] < 1:
            return xyz, atom
        candidates = np.flatnonzero(numbers[atom] == species[k])
        coordination = _coordination(xyz, bond)[candidates]
        distance = np.linalg.norm(xyz[candidates], axis=1)
        order = np.lexsort((-distance, coordination))  # fewest neighbours first, then the outermost
        remove = candidates[order[:int(excess[k])]]
        keep = np.ones(len(atom), bool)
        keep[remove] = False
        xyz, atom = xyz[keep], atom[keep]

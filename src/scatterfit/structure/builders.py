"""Structure builders for searches: nanoparticles of a shape family and size, random alloys, random amorphous
boxes at a composition and density with minimum distances, random molecular starts (free or on the orbits of a
point group), and supercells.

Every builder takes an explicit ``numpy.random.Generator`` (or seed) where it is random, and returns a
Structure (positions in Å).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.geometry import atomic_number
from scatterfit.structure.structure import Structure

SHAPES = ("sphere", "cuboctahedron", "icosahedron", "decahedron", "octahedron", "truncated_octahedron")
LATTICES = {"fcc": math.sqrt(2), "bcc": 2 / math.sqrt(3)}  # a = factor × nearest-neighbour distance
MAX_ATOMS = 2_000_000


def as_generator(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _parse_formula(formula) -> dict[int, float]:
    """{"Si": 1, "O": 2} or "SiO2" → {Z: amount}."""
    if isinstance(formula, dict):
        out = {atomic_number(k): float(v) for k, v in formula.items()}
    else:
        from ase.formula import Formula

        try:
            counts = Formula(str(formula)).count()
        except ValueError as exc:
            raise ScatterfitError(f"cannot read the formula '{formula}' ({exc})") from None
        out = {atomic_number(k): float(v) for k, v in counts.items()}
    if not out or min(out.values()) < 0 or sum(out.values()) <= 0:
        raise ScatterfitError(f"the composition {formula!r} is empty or negative")
    return out


def magic_size(shape: str, size: int) -> int:
    """Number of atoms of the closed-shell cluster of ``shape`` and ``size`` (shells), without building it."""
    n = int(size)
    if shape in ("cuboctahedron", "icosahedron", "decahedron"):
        return (10 * n**3 + 15 * n**2 + 11 * n + 3) // 3
    return len(nanoparticle("Au", shape, n))


def bulk_nn_distance(element) -> float:
    """Nearest-neighbour distance (Å) of the element's reference bulk crystal in ASE (fcc/bcc/other cubic)."""
    from ase.data import chemical_symbols, reference_states

    z = atomic_number(element)
    ref = reference_states[z] or {}
    if "a" not in ref:
        raise ScatterfitError(f"no reference lattice constant for {chemical_symbols[z]}: give nn_distance")
    return ref["a"] / LATTICES.get(ref.get("symmetry"), math.sqrt(2))


def nanoparticle(element, shape: str, size: int, nn_distance: float | None = None, lattice: str = "fcc",
                 dtype=torch.float64) -> Structure:
    """A nanoparticle of one element centred at the origin.

    Args:
        element: symbol or atomic number.
        shape: one of SHAPES. The closed-shell families (cuboctahedron, icosahedron, Ino decahedron) have
            ``size`` shells around a central atom: 13, 55, 147, 309, 561 atoms for size 1–5; octahedron has
            size + 1 atoms along an edge; truncated_octahedron is the regular one of edge size + 1; sphere is cut
            from the bulk lattice with radius (size + 0.5) nearest-neighbour distances.
        size: integer ≥ 1.
        nn_distance: nearest-neighbour distance, Å (default: ASE's reference lattice of the element).
        lattice: "fcc" or "bcc" (sphere and the octahedra; the multiply twinned shapes are fcc-based).
    """
    from ase.cluster import Decahedron, Icosahedron, Octahedron
    from ase.data import chemical_symbols

    z = atomic_number(element)
    symbol = chemical_symbols[z]
    if shape not in SHAPES:
        raise ScatterfitError(f"unknown shape '{shape}' (known: {', '.join(SHAPES)})")
    n = int(size)
    if n < 1 or n > 40:
        raise ScatterfitError(f"nanoparticle size must be 1..40 shells, got {size}")
    if lattice not in LATTICES:
        raise ScatterfitError(f"unknown lattice '{lattice}' (use fcc or bcc)")
    if nn_distance is None:
        nn_distance = bulk_nn_distance(z)
    a = nn_distance * LATTICES[lattice]
    if shape == "icosahedron":
        atoms = Icosahedron(symbol, n + 1, latticeconstant=nn_distance * math.sqrt(2))
    elif shape == "decahedron":
        atoms = Decahedron(symbol, n + 1, n + 1, 0, latticeconstant=nn_distance * math.sqrt(2))
    elif shape == "cuboctahedron":
        atoms = Octahedron(symbol, 2 * n + 1, n, latticeconstant=nn_distance * math.sqrt(2))
    elif shape == "octahedron":
        atoms = Octahedron(symbol, n + 1, 0, latticeconstant=nn_distance * math.sqrt(2))
    elif shape == "truncated_octahedron":
        atoms = Octahedron(symbol, 3 * n + 1, n, latticeconstant=nn_distance * math.sqrt(2))
    else:
        from ase.build import bulk

        radius = (n + 0.5) * nn_distance
        reps = int(math.ceil(2 * radius / a)) + 2
        big = bulk(symbol, lattice, a=a, cubic=True).repeat((reps, reps, reps))
        pos = big.positions - big.positions.mean(0)
        # centre on the atom nearest the middle, so the sphere has a central atom
        pos = pos - pos[np.argmin(np.linalg.norm(pos, axis=1))]
        atoms = big[np.linalg.norm(pos, axis=1) <= radius + 1e-6]
        atoms.positions = pos[np.linalg.norm(pos, axis=1) <= radius + 1e-6]
    atoms.center(about=(0.0, 0.0, 0.0))
    atoms.pbc = False
    atoms.set_cell(np.zeros((3, 3)))
    return Structure.from_ase(atoms, dtype=dtype)


def random_alloy(structure: Structure, fractions: dict, seed=0) -> Structure:
    """The same sites with species drawn at random in the given fractions ({"Pt": 0.3, "Ni": 0.7}); the counts
    are rounded so they add up to the number of sites."""
    rng = as_generator(seed)
    comp = _parse_formula(fractions)
    n = len(structure)
    total = sum(comp.values())
    zs = list(comp)
    counts = [int(round(n * comp[z] / total)) for z in zs]
    counts[-1] = n - sum(counts[:-1])
    if min(counts) < 0:
        raise ScatterfitError(f"fractions {fractions} do not fit {n} sites")
    numbers = np.repeat(zs, counts)
    rng.shuffle(numbers)
    return structure.with_(numbers=torch.as_tensor(numbers, dtype=torch.int64, device=structure.device))


def _place_random(n_atoms: int, lengths: np.ndarray, min_dist: float,
                  rng: np.random.Generator, periodic: bool, inside=None, max_tries: int = 2000) -> np.ndarray:
    """Random sequential placement with a cell-list overlap check: O(N) on average."""
    cell_size = max(min_dist, 1e-3)
    grid = np.maximum((lengths // cell_size).astype(int), 1)
    buckets: dict[tuple, list[int]] = {}
    pos = np.zeros((n_atoms, 3))
    for k in range(n_atoms):
        for _ in range(max_tries):
            p = rng.uniform(0, 1, 3) * lengths
            if inside is not None and not inside(p):
                continue
            key = tuple((p / lengths * grid).astype(int) % grid)
            ok = True
            if min_dist > 0:
                for dx in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        for dz in (-1, 0, 1):
                            nk = ((key[0] + dx) % grid[0], (key[1] + dy) % grid[1], (key[2] + dz) % grid[2])
                            for other in buckets.get(nk, ()):
                                d = p - pos[other]
                                if periodic:
                                    d -= lengths * np.round(d / lengths)
                                if d @ d < min_dist * min_dist:
                                    ok = False
                                    break
                            if not ok:
                                break
                        if not ok:
                            break
                    if not ok:
                        break
            if ok:
                pos[k] = p
                buckets.setdefault(key, []).append(k)
                break
        else:
            raise ScatterfitError(f"could not place atom {k + 1} of {n_atoms} with minimum distance {min_dist} Å: "
                                  "the density is too high for random placement; lower min_dist")
    return pos


def amorphous_box(composition, n_atoms: int, density: float, min_dist: float = 1.8, seed=0,
                  dtype=torch.float64) -> Structure:
    """A cubic periodic box of ``n_atoms`` at ``density`` atoms/Å³, species in the ratio of ``composition``
    ("SiO2" or {"Si": 1, "O": 2}; counts rounded), atoms placed at random no closer than ``min_dist`` Å."""
    if n_atoms < 1 or n_atoms > MAX_ATOMS:
        raise ScatterfitError(f"n_atoms must be 1..{MAX_ATOMS}, got {n_atoms}")
    if not density > 0:
        raise ScatterfitError(f"density must be positive, got {density}")
    packing = density * (math.pi / 6) * min_dist**3
    if packing > 0.45:
        raise ScatterfitError(f"min_dist {min_dist} Å at density {density} atoms/Å³ packs spheres to "
                              f"{packing:.2f}: random placement cannot reach it (lower min_dist)")
    rng = as_generator(seed)
    comp = _parse_formula(composition)
    total = sum(comp.values())
    zs = list(comp)
    counts = [int(round(n_atoms * comp[z] / total)) for z in zs]
    counts[-1] = n_atoms - sum(counts[:-1])
    numbers = np.repeat(zs, counts)
    rng.shuffle(numbers)
    length = (n_atoms / density) ** (1 / 3)
    lengths = np.full(3, length)
    pos = _place_random(n_atoms, lengths, min_dist, rng, periodic=True)
    return Structure(torch.tensor(pos, dtype=dtype), torch.as_tensor(numbers), cell=torch.eye(3, dtype=dtype) * length,
                     pbc=(True, True, True))


def random_molecule(formula, min_dist: float = 1.0, density: float = 0.1, seed=0, dtype=torch.float64) -> Structure:
    """Atoms of ``formula`` ("C60", "W12O40P") at random in a sphere sized for ``density`` atoms/Å³, no pair
    closer than ``min_dist`` Å: a start with no prior knowledge of the connectivity."""
    rng = as_generator(seed)
    comp = _parse_formula(formula)
    numbers = np.concatenate([np.full(int(round(v)), z) for z, v in comp.items()])
    n = len(numbers)
    if n == 0:
        raise ScatterfitError(f"the formula {formula!r} has no atoms")
    radius = (3 * n / (4 * math.pi * density)) ** (1 / 3)
    lengths = np.full(3, 2 * radius)
    centre = np.full(3, radius)
    pos = _place_random(n, lengths, min_dist, rng, periodic=False,
                        inside=lambda p: np.linalg.norm(p - centre) <= radius)
    rng.shuffle(numbers)
    return Structure(torch.tensor(pos - centre, dtype=dtype), torch.as_tensor(numbers))


def random_symmetric_molecule(formula, group: str, min_dist: float = 1.0, density: float = 0.1, seed=0,
                              dtype=torch.float64) -> Structure:
    """Atoms of ``formula`` on orbits of the point ``group`` (structure/symmetry.py: the fewest orbits per element,
    general positions first), each orbit's representative at random in a sphere sized for ``density``
    atoms/Å³, no pair closer than ``min_dist`` Å. The Structure carries its SymmetryMap, so a refinement can
    move whole orbits (parameter group "orbits"); a random start of a symmetric search (AIRSS, PyXtal)."""
    from scatterfit.structure.symmetry import cluster_radius, random_symmetric_cluster

    rng = as_generator(seed)
    comp = {z: int(round(v)) for z, v in _parse_formula(formula).items() if round(v) > 0}
    n = sum(comp.values())
    if n == 0:
        raise ScatterfitError(f"the formula {formula!r} has no atoms")
    pos, numbers, sym = random_symmetric_cluster(comp, group, cluster_radius(n, density), min_dist, rng)
    return Structure(torch.tensor(pos, dtype=dtype), torch.as_tensor(numbers), symmetry=sym)


def supercell(structure: Structure, repeats) -> Structure:
    """The structure repeated ``repeats`` = (na, nb, nc) times (or a 3×3 integer matrix) via ASE."""
    from ase.build import make_supercell

    if structure.cell is None:
        raise ScatterfitError("a supercell needs a periodic structure")
    m = np.diag(repeats) if np.ndim(repeats) == 1 else np.asarray(repeats)
    if m.shape != (3, 3) or abs(round(np.linalg.det(m))) < 1:
        raise ScatterfitError(f"supercell repeats must be 3 positive integers or a 3×3 matrix, got {repeats}")
    if len(structure) * abs(round(np.linalg.det(m))) > MAX_ATOMS:
        raise ScatterfitError(f"the supercell would hold more than {MAX_ATOMS} atoms")
    return Structure.from_ase(make_supercell(structure.to_ase(), m), dtype=structure.dtype)

"""The space group of a periodic structure, found by spglib within a tolerance: what a refinement started from
and what it ended in, so a refinement that lowered the symmetry says so."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np

from scatterfit.structure.structure import Structure


def detect_space_group(structure: Structure, symprec: float = 1e-3) -> dict | None:
    """{"number": int, "symbol": Hermann–Mauguin, "operations": symmetry operations of this cell} of a periodic
    structure within ``symprec`` Å, or None for a finite structure. Atoms of different elements or occupancies
    count as different. Fewer operations in the same cell means lower symmetry (space-group numbers alone do not
    order subgroups)."""
    if structure.cell is None or not structure.periodic:
        return None
    dataset = _site_symmetry(structure, symprec)[0]
    if dataset is None:
        return {"number": 1, "symbol": "P1", "operations": 1}
    return {"number": int(dataset.number), "symbol": str(dataset.international),
            "operations": int(len(dataset.rotations))}


def _site_symmetry(structure: Structure, symprec: float, declared: bool = True, hall_number: int = 0):
    """The symmetry of a periodic structure's sites (atoms on one place, the species of a shared site, are one
    site whose kind is its composition): the structure's declared operations while they hold (``declared``),
    else spglib's dataset (standardised to the setting ``hall_number``, spglib's default when 0); with (site
    fractional coordinates [S, 3], the site of each atom [N]).

    The dataset has number, international, rotations [K, 3, 3], translations [K, 3] and equivalent_atoms [S]
    (spglib's, or a DeclaredSymmetry with the same fields)."""
    import spglib

    cell = structure.cell.detach().cpu().numpy().astype(float)
    frac = (structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)) % 1.0
    sites, site_of, kinds = _sites(structure, frac)
    if declared and structure.operations is not None:
        rotations, translations = structure.operations
        equivalent = _equivalent_sites(sites, kinds, rotations, translations, cell, symprec)
        if equivalent is not None:
            return DeclaredSymmetry(structure.space_group, space_group_symbol(structure.space_group), rotations,
                                    translations, equivalent), sites, site_of
    with warnings.catch_warnings():  # spglib 2.x warns about its own error-handling switch on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = spglib.get_symmetry_dataset((cell, sites, kinds), symprec=symprec, hall_number=hall_number)
    return dataset, sites, site_of


@dataclass(frozen=True)
class DeclaredSymmetry:
    """A declared space group's operations on a structure's sites, with the fields of spglib's dataset that
    scatterfit reads."""

    number: int
    international: str
    rotations: np.ndarray  # [K, 3, 3] ints, fractional
    translations: np.ndarray  # [K, 3] fractional
    equivalent_atoms: np.ndarray  # [S] the lowest-numbered site of each site's orbit


@functools.lru_cache(maxsize=1)
def hall_table() -> tuple:
    """spglib's 530 settings of the 230 space groups: (hall number, group number, setting choice, the setting's
    symbols in lower case without spaces or underscores, its short symbol)."""
    import spglib

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for hall in range(1, 531):
            kind = spglib.get_spacegroup_type(hall)
            names = {kind.international_short, kind.international_full, kind.international}
            rows.append((hall, int(kind.number), str(kind.choice),
                         frozenset(n.replace(" ", "").replace("_", "").lower() for n in names),
                         str(kind.international_short)))
    return tuple(rows)


def space_group_symbol(number: int | None) -> str:
    """The short Hermann–Mauguin symbol of space group ``number`` (its first setting in spglib's table)."""
    if number is None:
        return "?"
    return next(short for _, n, _, _, short in hall_table() if n == number)


def _equivalent_sites(sites, kinds, rotations, translations, cell, symprec):
    """The lowest-numbered site each site [S] is mapped from by the operations, or None when an operation does
    not map the sites onto sites of the same kind within ``symprec`` Å."""
    from scipy.spatial import cKDTree

    kinds = np.asarray(kinds)
    tree = cKDTree(sites % 1.0, boxsize=1.0 + 1e-12)
    radius = symprec / float(np.linalg.norm(cell, axis=1).min()) * 10  # fractional, generous in every direction
    images = np.einsum("kij,sj->ksi", np.asarray(rotations, float), sites) + np.asarray(translations, float)[:, None]
    images = images % 1.0
    images[images >= 1.0 - 1e-12] = 0.0
    distance, target = tree.query(images.reshape(-1, 3), distance_upper_bound=radius)
    if not np.all(np.isfinite(distance)):
        return None
    target = target.reshape(len(rotations), len(sites))  # [K, S]: where op k sends site s
    if np.any(kinds[target] != kinds[None, :]):
        return None
    cart_error = ((images - sites[target]) + 0.5) % 1.0 - 0.5
    if np.abs(cart_error.reshape(-1, 3) @ cell).max() > 10 * symprec:
        return None
    return target.min(axis=0)  # a group's orbit of s is {g s}: its lowest-numbered member, the same for all


def operations_hold(structure: Structure, rotations, translations, symprec: float = 1e-3) -> bool:
    """Whether every operation (fractional, in the structure's cell) maps its sites onto sites of the same kind
    within ``symprec`` Å."""
    cell = structure.cell.detach().cpu().numpy().astype(float)
    frac = (structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)) % 1.0
    sites, _, kinds = _sites(structure, frac)
    return _equivalent_sites(sites, kinds, rotations, translations, cell, symprec) is not None


SYSTEMS = ((1, 2, "triclinic"), (3, 15, "monoclinic"), (16, 74, "orthorhombic"), (75, 142, "tetragonal"),
           (143, 167, "trigonal"), (168, 194, "hexagonal"), (195, 230, "cubic"))
ANGLE_TOL = 1e-3  # degrees
LENGTH_TOL = 1e-5  # relative


def crystal_system(number: int) -> str:
    """The crystal system of a space group (International Tables number 1–230)."""
    for lo, hi, name in SYSTEMS:
        if lo <= number <= hi:
            return name
    raise ValueError(f"no space group number {number}")


@dataclass(frozen=True)
class LatticeRule:
    """How the cell parameters (a, b, c, α, β, γ) hang on the free "lattice" scale factors s [k]: parameter i is
    its start value × s[index[i]], or fixed when index[i] is −1; ``angles`` tells whether an angle is free (then
    the cell is rebuilt from its parameters; otherwise its rows are scaled, which keeps its orientation)."""

    system: str
    index: tuple
    size: int
    angles: bool
    note: str = ""


def _lengths_equal(par, i, j) -> bool:
    return abs(par[i] - par[j]) <= LENGTH_TOL * max(par[i], par[j])


def lattice_rule(structure: Structure, symprec: float = 1e-3) -> LatticeRule:
    """The free cell parameters of a "lattice" refinement of ``structure``: those of its crystal system when it
    declares a space group (a CIF) or spglib finds one above triclinic; one isotropic scale for a structure with
    no symmetry found (an amorphous or liquid box) or a cell not in its system's conventional setting."""
    from ase.geometry import cell_to_cellpar

    isotropic = LatticeRule("isotropic", (0, 0, 0, -1, -1, -1), 1, False)
    number = structure.space_group
    if number is None:
        found = detect_space_group(structure, symprec)
        number = found["number"] if found else None
        if number is None or number <= 2:
            return isotropic
    system = crystal_system(number)
    par = cell_to_cellpar(structure.cell.detach().cpu().numpy())
    right = [abs(par[k] - 90.0) <= ANGLE_TOL for k in (3, 4, 5)]
    setting = f"the cell is not in the conventional setting of its {system} space group ({number})"
    if system == "triclinic":
        return LatticeRule(system, (0, 1, 2, 3, 4, 5), 6, True)
    if system == "cubic":
        if all(right) and _lengths_equal(par, 0, 1) and _lengths_equal(par, 1, 2):
            return LatticeRule(system, (0, 0, 0, -1, -1, -1), 1, False)
        return LatticeRule("isotropic", isotropic.index, 1, False, setting)  # e.g. a primitive fcc cell: the same
    if system == "tetragonal":
        if all(right) and _lengths_equal(par, 0, 1):
            return LatticeRule(system, (0, 0, 1, -1, -1, -1), 2, False)
    elif system in ("hexagonal", "trigonal"):
        if right[0] and right[1] and abs(par[5] - 120.0) <= ANGLE_TOL and _lengths_equal(par, 0, 1):
            return LatticeRule(system, (0, 0, 1, -1, -1, -1), 2, False)
        if system == "trigonal" and _lengths_equal(par, 0, 1) and _lengths_equal(par, 1, 2) \
                and abs(par[3] - par[4]) <= ANGLE_TOL and abs(par[4] - par[5]) <= ANGLE_TOL:
            return LatticeRule("rhombohedral", (0, 0, 0, 1, 1, 1), 2, True)
    elif system == "orthorhombic":
        if all(right):
            return LatticeRule(system, (0, 1, 2, -1, -1, -1), 3, False)
    elif system == "monoclinic":
        oblique = [k for k in range(3) if not right[k]]
        if len(oblique) <= 1:
            angle = [-1, -1, -1]
            if oblique:
                angle[oblique[0]] = 3
            return LatticeRule(system, (0, 1, 2, *angle), 4 if oblique else 3, bool(oblique))
    return LatticeRule("isotropic", isotropic.index, 1, False, setting)


def wyckoff_basis(structure: Structure, symprec: float = 1e-3) -> np.ndarray | None:
    """The fractional displacements a space group allows: a matrix M [3N, K] with Δx (fractional, flattened
    [N, 3]) = M u for the K free Wyckoff coordinates u, or None for a structure without symmetry (P1).

    Each orbit's representative may move within the fixed space of its site-symmetry group (projector P, the
    mean of the stabiliser's rotations; an orthonormal basis B of its range gives the free directions), and every
    atom of the orbit moves with it by the operation R that maps the representative onto it: Δx_i = R B u."""
    if structure.cell is None or not structure.periodic:
        return None
    data, frac, site_of = _site_symmetry(structure, symprec)
    if data is None or len(data.rotations) <= 1:
        return None
    rotations, translations = np.asarray(data.rotations, float), np.asarray(data.translations, float)
    n = len(frac)

    def maps(r, t, a, b):  # does (r, t) send atom a onto atom b (modulo lattice translations)?
        d = r @ frac[a] + t - frac[b]
        return np.abs(d - np.round(d)).max() < 10 * symprec

    columns = []
    for rep in sorted(set(int(k) for k in data.equivalent_atoms)):
        members = [i for i in range(n) if int(data.equivalent_atoms[i]) == rep]
        stabiliser = [r for r, t in zip(rotations, translations) if maps(r, t, rep, rep)]
        projector = np.mean(stabiliser, axis=0)
        u, s, _ = np.linalg.svd(projector)
        basis = u[:, s > 0.5]  # [3, d]: the free directions of this site
        mapping = {}
        for r, t in zip(rotations, translations):
            for i in members:
                if i not in mapping and maps(r, t, rep, i):
                    mapping[i] = r
        for k in range(basis.shape[1]):
            column = np.zeros((n, 3))
            for i, r in mapping.items():
                column[i] = r @ basis[:, k]
            columns.append(column.reshape(-1))
    sites = np.stack(columns, axis=1) if columns else np.zeros((3 * n, 0))  # [3S, K] over sites
    per_atom = sites.reshape(n, 3, -1)[site_of]  # the atoms of a shared site move together
    return per_atom.reshape(3 * len(site_of), -1)


def _sites(structure: Structure, frac: np.ndarray, tol: float = 1e-4):
    """Atoms at the same place (a site shared by several species) as one site: (site fractional coordinates
    [S, 3], the site of every atom [N], a kind per site from its species and occupancies). Atoms closer than
    ``tol`` Å (minimum image) share a site; found with a periodic k-d tree, so large cells cost N log N."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    cell = structure.cell.detach().cpu().numpy().astype(float)
    radius = tol / float(np.linalg.norm(cell, axis=1).max())  # a fractional radius inside tol Å in every direction
    pairs = cKDTree(frac % 1.0, boxsize=1.0 + 1e-12).query_pairs(radius, output_type="ndarray")
    n = len(frac)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    first = {}
    for i, lab in enumerate(label):
        first.setdefault(int(lab), i)
    order = {lab: k for k, lab in enumerate(first)}
    site_of = np.array([order[int(lab)] for lab in label])
    sites = frac[[first[lab] for lab in first]] % 1.0
    numbers = structure.numbers.tolist()
    occupancy = np.round(structure.occupancy.detach().cpu().numpy(), 6).tolist()
    members = [[] for _ in first]
    for i, k in enumerate(site_of):
        members[k].append(i)
    keys = [tuple(sorted((numbers[i], occupancy[i]) for i in m)) for m in members]
    kinds = {k: j + 1 for j, k in enumerate(sorted(set(keys)))}
    return sites, site_of, [kinds[k] for k in keys]


def _orbits(structure: Structure, symprec: float) -> tuple[np.ndarray, np.ndarray]:
    """(site of each atom [N], site orbit of each atom [N]): orbits numbered 0.. in the order their first atom
    appears; a finite structure has one site and one orbit per atom."""
    if structure.cell is None or not structure.periodic:
        every = np.arange(len(structure))
        return every, every
    data, sites, site_of = _site_symmetry(structure, symprec)
    orbit_of_site = np.asarray(data.equivalent_atoms) if data is not None else np.arange(len(sites))
    orbits = {o: k for k, o in enumerate(dict.fromkeys(orbit_of_site[site_of].tolist()))}
    return site_of, np.array([orbits[int(orbit_of_site[s])] for s in site_of])


def site_orbits(structure: Structure, symprec: float = 1e-3) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each atom's site orbit: atoms sharing a site, and sites the space group relates, get one index.

    Returns:
        (index [N] ints 0..K−1, labels [K] such as "La/Ba#0"): what one ADP per site refines.
    """
    from ase.data import chemical_symbols

    _, index = _orbits(structure, symprec)
    numbers = structure.numbers.tolist()
    labels = []
    for k in range(int(index.max()) + 1):
        atoms = np.flatnonzero(index == k)
        names = "/".join(chemical_symbols[z] for z in sorted({numbers[i] for i in atoms}))
        labels.append(f"{names}#{k}")
    return index, tuple(labels)


@dataclass(frozen=True)
class OccupancyMap:
    """How refined occupancy parameters v [K] (each in 0..1) set the atoms' occupancies: occ_i = offset[i] +
    factor[i] · v[index[i]]. A site of one species refines its occupancy; a site shared by two species refines
    the first one's fraction of the site's total, which stays fixed (the species sum to it). Sites related by the
    space group share their parameters."""

    index: np.ndarray  # [N] parameter of each atom
    offset: np.ndarray  # [N]
    factor: np.ndarray  # [N]
    start: np.ndarray  # [K] starting values
    labels: tuple  # [K] e.g. "La/Ba#0" (fraction of La), "O#1" (occupancy)


def occupancy_map(structure: Structure, symprec: float = 1e-3) -> OccupancyMap:
    """The occupancy parameters of a structure (see OccupancyMap).

    Raises:
        ScatterfitError: a site shared by more than two species.
    """
    from ase.data import chemical_symbols

    from scatterfit.errors import ScatterfitError

    n = len(structure)
    occ = structure.occupancy.detach().cpu().numpy().astype(float)
    site_of, orbit = _orbits(structure, symprec)
    n_orbits = int(orbit.max()) + 1
    index, offset, factor = np.zeros(n, int), np.zeros(n), np.zeros(n)
    start, labels = [0.0] * n_orbits, [""] * n_orbits
    numbers = structure.numbers.tolist()
    for s in range(int(site_of.max()) + 1):
        atoms = sorted(np.flatnonzero(site_of == s).tolist(), key=lambda i: numbers[i])
        k = int(orbit[atoms[0]])
        names = "/".join(chemical_symbols[numbers[i]] for i in atoms)
        if len(atoms) == 1:
            (i,) = atoms
            index[i], factor[i] = k, 1.0
            start[k], labels[k] = occ[i], f"{names}#{k}"
        elif len(atoms) == 2:
            a, b = atoms
            total = occ[a] + occ[b]
            index[[a, b]] = k
            factor[a], offset[b], factor[b] = total, total, -total
            start[k], labels[k] = occ[a] / total, f"{names}#{k}"
        else:
            raise ScatterfitError(f"occupancy refinement takes sites of one or two species; a site holds {names}")
    return OccupancyMap(index, offset, factor, np.asarray(start), tuple(labels))

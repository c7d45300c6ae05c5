"""Point groups, their site types (Wyckoff positions of a finite cluster) and symmetric random clusters.

A symmetric start is how random structure searches (AIRSS, PyXtal) shrink the space a cluster search must
explore: a 52-atom cluster has 156 coordinates, but in a point group of order 12 with atoms on general
positions it has 13. The group is a search variable: nothing says which one the data want.

Conventions: a point group is an array [G, 3, 3] of orthogonal matrices acting on column vectors (x' = R x),
in one fixed frame (scipy's: the cubic groups share the coordinate axes, the icosahedral group contains the
tetrahedral one). A site type is a subspace that a subgroup H fixes (the origin, an axis, a mirror plane or
all of space); an orbit of a site type has |G|/|H| atoms at R_j P r, where P [3, 3] projects onto the
subspace, r [3] (Å) is the orbit's free representative and R_j are coset representatives of G/H.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from scatterfit.errors import ScatterfitError

CLUSTER_GROUPS = ("C1", "Ci", "C2", "C3", "D2", "D3", "T", "Th", "Td", "O", "Oh", "I", "Ih")
"""The groups a symmetric cluster search offers by default: the rotation groups of cubic and icosahedral
clusters, their improper extensions, and small axial groups."""

_TOL = 1e-6


def _rotations(name: str) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.create_group(name).as_matrix()


def _unique(mats: np.ndarray) -> np.ndarray:
    out: list[np.ndarray] = []
    for m in mats:
        if not any(np.abs(m - o).max() < _TOL for o in out):
            out.append(m)
    return np.array(out)


def _minus(mats: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """Elements of ``mats`` not in ``sub``."""
    return np.array([m for m in mats if not any(np.abs(m - s).max() < _TOL for s in sub)])


@lru_cache(maxsize=None)
def point_group(name: str) -> np.ndarray:
    """The operations [G, 3, 3] of a point group named in Schoenflies notation: C1, Ci, Cn, Cnv, Cnh, Dn, Dnh,
    Dnd (n ≤ 12, main axis z), T, Th, Td, O, Oh, I, Ih."""
    e = np.eye(3)[None]
    m = re.fullmatch(r"([CD])(\d+)([vhd]?)", name)
    if name == "C1":
        ops = e
    elif name == "Ci":
        ops = np.concatenate([e, -e])
    elif name in ("T", "O", "I"):
        ops = _rotations(name)
    elif name in ("Th", "Oh", "Ih"):
        rot = _rotations(name[0])
        ops = np.concatenate([rot, -rot])
    elif name == "Td":
        t = _rotations("T")
        ops = np.concatenate([t, -_minus(_rotations("O"), t)])  # T and the improper images of O's other half
    elif m and 1 <= int(m.group(2)) <= 12 and not (m.group(1) == "C" and m.group(3) == "d"):
        n, suffix = int(m.group(2)), m.group(3)
        cn = _rotations(f"C{n}")
        dn = _rotations(f"D{n}") if n > 1 else np.concatenate([e, _rotations("D2")[1:2]])
        mirror_z = np.diag([1.0, 1.0, -1.0])[None]
        if m.group(1) == "C":
            if suffix == "":
                ops = cn
            elif suffix == "v":  # mirrors containing z: inversion × the perpendicular two-fold axes of Dn
                ops = np.concatenate([cn, -_minus(dn, cn)])
            else:  # "h"
                ops = np.concatenate([cn, mirror_z @ cn])
        else:
            if suffix == "":
                ops = dn
            elif suffix == "h":
                ops = np.concatenate([dn, mirror_z @ dn])
            else:  # "d": D2n's elements outside Dn enter as rotoreflections (mirror_z × rotation)
                d2n = _rotations(f"D{2 * n}")
                ops = np.concatenate([dn, mirror_z @ _minus(d2n, dn)])
    else:
        raise ScatterfitError(f"unknown point group '{name}' (use e.g. {', '.join(CLUSTER_GROUPS)}, Cnv, Dnh, Dnd)")
    ops = _unique(np.asarray(ops, dtype=float))
    closure = _unique(np.einsum("aij,bjk->abik", ops, ops).reshape(-1, 3, 3))
    if len(closure) != len(ops):  # a construction error, not a user error
        raise AssertionError(f"point group {name}: {len(ops)} operations are not closed")
    return ops


@dataclass(frozen=True)
class SiteType:
    """One kind of orbit of a point group.

    Attributes:
        size: atoms per orbit (|G| / |H|).
        dim: free coordinates per orbit (0 origin, 1 axis, 2 mirror plane, 3 general position).
        projector: [3, 3] onto the subspace the site symmetry H fixes.
        basis: [dim, 3] orthonormal rows spanning that subspace.
        ops: [size, 3, 3] coset representatives: the orbit of a representative r is ops @ (projector @ r).
    """

    size: int
    dim: int
    projector: np.ndarray
    basis: np.ndarray
    ops: np.ndarray


def _null_space(m: np.ndarray) -> np.ndarray:
    _, s, vt = np.linalg.svd(m)
    return vt[s < 1e-8]


@lru_cache(maxsize=None)
def site_types(group: str) -> tuple[SiteType, ...]:
    """The inequivalent site types of ``group``, smallest orbits first (the origin, then axes, planes, the
    general position)."""
    ops = point_group(group)
    rng = np.random.default_rng(20261126)  # a fixed generic point in each subspace
    spaces = [np.zeros((0, 3)), np.eye(3)] + [_null_space(g - np.eye(3)) for g in ops]
    found: list[SiteType] = []
    for basis in spaces:
        x = rng.normal(size=len(basis)) @ basis if len(basis) else np.zeros(3)
        stab = np.array([g for g in ops if np.abs(g @ x - x).max() < _TOL * max(1.0, np.abs(x).max())])
        projector = stab.mean(0)
        w, v = np.linalg.eigh((projector + projector.T) / 2)
        sub = v[:, w > 0.5].T
        images, reps = [], []
        for g in ops:
            y = g @ x
            if not any(np.abs(y - z).max() < 1e-6 for z in images):
                images.append(y)
                reps.append(g)
        site = SiteType(len(reps), len(sub), projector, sub, np.array(reps))
        equivalent = any(s.size == site.size and s.dim == site.dim and any(
            np.abs(g @ s.projector @ g.T - site.projector).max() < 1e-6 for g in ops) for s in found)
        if not equivalent:
            found.append(site)
    return tuple(sorted(found, key=lambda s: (s.size, s.dim)))


def fewest_orbits(count: int, sites: tuple[SiteType, ...], origin_free: bool = True) -> list[int] | None:
    """Indices into ``sites`` of the fewest orbits whose sizes add up to ``count``, each site type usable any
    number of times except zero-dimensional ones (the origin), which hold one orbit at most and only when
    ``origin_free``; among equally few, larger orbits first (general positions). None when impossible."""
    usable = [i for i, s in enumerate(sites) if s.dim > 0]
    best: dict[int, list[int]] = {0: []}
    for total in range(1, count + 1):
        options = []
        for i in usable:
            rest = best.get(total - sites[i].size)
            if rest is not None:
                options.append(sorted(rest + [i], key=lambda j: -sites[j].size))
        if options:
            best[total] = min(options, key=lambda o: (len(o), [-sites[j].size for j in o]))
    choices = [best.get(count)]
    if origin_free:
        for i, s in enumerate(sites):
            if s.dim == 0 and count - s.size in best:
                choices.append(best[count - s.size] + [i])
    choices = [c for c in choices if c is not None]
    if not choices:
        return None
    return min(choices, key=lambda o: (len(o), [-sites[j].size for j in o]))


@dataclass(frozen=True)
class SymmetryMap:
    """How a symmetric structure's atoms hang on its orbit representatives.

    Attributes:
        group: the point group's name.
        orbit: [N] the orbit of each atom (0 .. n_orbits − 1).
        transforms: [N, 3, 3] R_j P: atom i sits at transforms[i] @ r[orbit[i]] for representatives r [n_orbits, 3].
        sizes: atoms per orbit.
        dims: free coordinates per orbit.
    """

    group: str
    orbit: np.ndarray
    transforms: np.ndarray
    sizes: tuple[int, ...]
    dims: tuple[int, ...]

    @property
    def n_orbits(self) -> int:
        return len(self.sizes)

    @property
    def n_free(self) -> int:
        """Free coordinates of all orbits together."""
        return int(sum(self.dims))

    def positions(self, representatives: np.ndarray) -> np.ndarray:
        """[N, 3] Å from representatives [n_orbits, 3] Å."""
        return np.einsum("nij,nj->ni", self.transforms, np.asarray(representatives)[self.orbit])

    def representatives(self, positions):
        """[n_orbits, 3] Å: each orbit's representative, the average of its members mapped back onto it
        (transforms are g P with P a symmetric projector, so (g P)ᵀ x = P gᵀ x). The one place atoms are mapped to
        their orbits: ``positions`` [N, 3] may be a numpy array or a (differentiable) torch tensor."""
        import torch

        if isinstance(positions, torch.Tensor):
            t = torch.as_tensor(self.transforms, dtype=positions.dtype, device=positions.device)
            index = torch.as_tensor(self.orbit, device=positions.device)
            mapped = torch.einsum("nji,nj->ni", t, positions)
            sums = torch.zeros((self.n_orbits, 3), dtype=positions.dtype, device=positions.device)
            counts = torch.as_tensor(self.sizes, dtype=positions.dtype, device=positions.device)
            return sums.index_add(0, index, mapped) / counts[:, None]
        mapped = np.einsum("nji,nj->ni", self.transforms, np.asarray(positions, dtype=float))
        sums = np.zeros((self.n_orbits, 3))
        np.add.at(sums, self.orbit, mapped)
        return sums / np.asarray(self.sizes, dtype=float)[:, None]


def _ball(dim: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A point uniform in the ``dim``-ball of ``radius``."""
    if dim == 0:
        return np.zeros(0)
    v = rng.normal(size=dim)
    return v / np.linalg.norm(v) * radius * rng.random() ** (1 / dim)


def random_symmetric_cluster(counts: dict[int, int], group: str, radius: float, min_dist: float,
                             rng: np.random.Generator, tries: int = 2000):
    """Atoms of ``counts`` {Z: n} in orbits of ``group`` (the fewest orbits per element, general positions
    first), each orbit's representative uniform in the site's subspace within ``radius`` Å, no two atoms closer
    than ``min_dist`` Å.

    Returns (positions [N, 3] Å, numbers [N], SymmetryMap). Raises ScatterfitError when the counts do not split
    into the group's orbits or the orbits do not fit into the sphere.
    """
    sites = site_types(group)
    plan: list[tuple[int, int]] = []  # (Z, site index)
    origin_free = True
    for z, n in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])):
        split = fewest_orbits(int(n), sites, origin_free)
        if split is None:
            from ase.data import chemical_symbols

            sizes = sorted({s.size for s in sites})
            raise ScatterfitError(f"{n} {chemical_symbols[z]} do not split into orbits of {group} (sizes {sizes})")
        origin_free = origin_free and not any(sites[i].dim == 0 for i in split)
        plan += [(z, i) for i in split]
    pos, numbers, orbit, transforms = [], [], [], []
    for k, (z, i) in enumerate(plan):
        site = sites[i]
        for _ in range(tries):
            r = _ball(site.dim, radius, rng) @ site.basis if site.dim else np.zeros(3)
            images = np.einsum("nij,j->ni", site.ops, r)
            d_in = np.linalg.norm(images[:, None] - images[None], axis=-1)[np.triu_indices(len(images), 1)]
            d_out = np.linalg.norm(images[:, None] - np.array(pos)[None], axis=-1) if pos else np.full(1, np.inf)
            if (d_in.size == 0 or d_in.min() >= min_dist) and d_out.min() >= min_dist:
                break
        else:
            raise ScatterfitError(f"cannot place an orbit of {site.size} atoms in {group} within {radius:.1f} Å "
                                  f"at a minimum distance of {min_dist} Å")
        pos += list(images)
        numbers += [z] * site.size
        orbit += [k] * site.size
        transforms += list(site.ops @ site.projector)
    sym = SymmetryMap(group, np.array(orbit), np.array(transforms), tuple(sites[i].size for _, i in plan),
                      tuple(sites[i].dim for _, i in plan))
    return np.array(pos), np.array(numbers), sym


def cluster_radius(n_atoms: int, density: float) -> float:
    """Radius (Å) of a sphere holding ``n_atoms`` at ``density`` atoms/Å³."""
    return (3 * n_atoms / (4 * math.pi * density)) ** (1 / 3)


def orbit_map(positions: np.ndarray, numbers: np.ndarray, group: str, tol: float = 0.05) -> SymmetryMap | None:
    """The SymmetryMap of a structure that ``group`` (in the module's frame, centred at the origin) maps onto
    itself within ``tol`` Å, or None when it does not. Positions [N, 3] Å, numbers [N]."""
    ops = point_group(group)
    pos, z = np.asarray(positions, dtype=float), np.asarray(numbers)
    images = np.einsum("gij,nj->gni", ops, pos)  # [G, N, 3]
    d = np.linalg.norm(images[:, :, None] - pos[None, None], axis=-1)  # [G, N, N]
    d[:, z[:, None] != z[None, :]] = np.inf
    target = d.argmin(-1)  # [G, N]: the atom each operation sends each atom to
    if np.take_along_axis(d, target[..., None], -1).max() > tol:
        return None
    orbit = np.full(len(pos), -1)
    transforms = np.zeros((len(pos), 3, 3))
    sizes, dims = [], []
    for i in range(len(pos)):
        if orbit[i] >= 0:
            continue
        stab = ops[target[:, i] == i]
        projector = stab.mean(0)
        members = {}
        for g, j in zip(ops, target[:, i]):
            members.setdefault(int(j), g)
        for j, g in members.items():
            orbit[j] = len(sizes)
            transforms[j] = g @ projector
        sizes.append(len(members))
        dims.append(int(round(np.trace(projector))))
    return SymmetryMap(group, orbit, transforms, tuple(sizes), tuple(dims))


def with_point_group(structure, group: str, tol: float = 0.05):
    """``structure`` (finite, centred on the origin in this module's frame) carrying the SymmetryMap of ``group``.

    Raises:
        ScatterfitError: a periodic structure, an unknown group, or one that does not map the structure onto
            itself within ``tol`` Å.
    """
    if structure.cell is not None:
        raise ScatterfitError("a point group needs a finite structure (no cell)")
    sym = orbit_map(structure.positions.detach().cpu().numpy(), structure.numbers.cpu().numpy(), group, tol)
    if sym is None:
        raise ScatterfitError(f"the structure is not symmetric under {group} within {tol} Å about the origin")
    return structure.with_(symmetry=sym)


def symmetrise(positions: np.ndarray, sym: SymmetryMap) -> np.ndarray:
    """[N, 3] Å: each orbit rebuilt from the average of its members mapped back onto its representative."""
    return sym.positions(sym.representatives(positions))


def detect_point_group(positions: np.ndarray, numbers: np.ndarray, tol: float = 0.05,
                       groups=("Ih", "I", "Oh", "O", "Td", "Th", "T")) -> str | None:
    """The largest of ``groups`` (in this module's frame, about the origin) that maps the structure onto itself
    within ``tol`` Å, or None."""
    for g in sorted(groups, key=lambda name: -len(point_group(name))):
        if orbit_map(positions, numbers, g, tol) is not None:
            return g
    return None

"""Chemical restraints: smooth, differentiable flat-bottom penalties on a structure.

Every restraint has a ``name``, a ``weight`` and ``penalty(structure) -> (0-d tensor, breakdown dict)``; the
penalty is zero inside the allowed range and grows quadratically outside it:

    flat_bottom(x; lo, hi) = max(lo − x, 0)² + max(x − hi, 0)²

Penalties are averaged over the atoms (or angles) they concern, so a weight means the same for any size.
"""

from __future__ import annotations

import math

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.geometry import atomic_number, bond_angles, parse_pair, per_atom, species_mask, triplets
from scatterfit.structure.neighbours import neighbours, pair_distances, pair_vectors
from scatterfit.structure.structure import Structure


def flat_bottom(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Elementwise quadratic penalty outside [lo, hi]."""
    return torch.relu(lo - x) ** 2 + torch.relu(x - hi) ** 2


def _range(value, what: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ScatterfitError(f"{what}: expected a number or [lo, hi], got {value!r}") from None
    if lo > hi:
        raise ScatterfitError(f"{what}: empty range [{lo}, {hi}]")
    return lo, hi


def smooth_count(r: torch.Tensor, r0: float, width: float) -> torch.Tensor:
    """Smooth step 1 → 0 around r0 (Fermi function of width ``width`` Å) for counting neighbours."""
    return torch.sigmoid((r0 - r) / width)


class MinDistance:
    """Hard-core restraint: penalty Σ_pairs max(d_min − r, 0)² / N, Å².

    Args:
        distances: one minimum for all pairs (Å), or {"Si-O": 1.5, "O-O": 2.2, "*": 1.0} per element pair.
    """

    def __init__(self, distances, weight: float = 1.0, name: str = "min_distance"):
        self.weight, self.name = float(weight), name
        table = {"*-*": float(distances)} if isinstance(distances, (int, float)) else dict(distances)
        self.table = {}
        for k, v in table.items():
            a, b = ("*", "*") if k == "*" else parse_pair(k)
            self.table[(a, b)] = float(v)
        if not self.table or min(self.table.values()) <= 0:
            raise ScatterfitError("min_distance: give positive distances")
        self.cutoff = max(self.table.values())

    def _minimum(self, structure: Structure, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        z = structure.numbers
        dmin = torch.zeros(i.shape, dtype=structure.dtype, device=structure.device)
        general = [(k, v) for k, v in self.table.items() if "*" in k]
        specific = [(k, v) for k, v in self.table.items() if "*" not in k]
        for (a, b), v in general + specific:  # specific pairs override wildcards
            ma_i, mb_j = species_mask(z, a)[i], species_mask(z, b)[j]
            ma_j, mb_i = species_mask(z, a)[j], species_mask(z, b)[i]
            dmin = torch.where((ma_i & mb_j) | (ma_j & mb_i), torch.full_like(dmin, v), dmin)
        return dmin

    def penalty(self, structure: Structure):
        nb = neighbours(structure, self.cutoff)
        if len(nb) == 0:
            zero = structure.positions.sum() * 0.0
            return zero, {"violations": 0, "closest": None}
        r = pair_distances(structure, nb)
        dmin = self._minimum(structure, nb.i, nb.j)
        short = torch.relu(dmin - r)
        value = (short**2).sum() / len(structure)
        return value, {"violations": int((short > 0).sum()), "closest": float(r.detach().min())}


class Coordination:
    """Coordination of ``centre`` atoms by ``neighbour`` atoms within a target range.

    CN_i = Σ_j s(r_ij) with s a Fermi step at ``r0`` Å of width ``width`` Å; penalty = mean_i flat_bottom(CN_i).

    Args:
        pair: "Si-O" (centre-neighbour); "Si-Si" counts Si around Si.
        r0: bond cutoff, Å (between the first and second neighbour shells).
        target: a number or [lo, hi].
        required: when False, a structure without centre atoms scores zero instead of raising (a search whose
            candidates may lack them, e.g. a cluster with or without a central heteroatom).
    """

    def __init__(self, pair: str, r0: float, target, width: float = 0.05, weight: float = 1.0,
                 name: str | None = None, required: bool = True):
        self.required = bool(required)
        self.centre, self.neighbour = parse_pair(pair)
        self.r0, self.width, self.weight = float(r0), float(width), float(weight)
        self.lo, self.hi = _range(target, f"coordination {pair} target")
        self.name = name or f"coordination:{pair}"

    def numbers_per_atom(self, structure: Structure) -> tuple[torch.Tensor, torch.Tensor]:
        """[N_centre] coordination numbers and the centre atoms' indices."""
        nb = neighbours(structure, self.r0 + 12 * self.width, full=True)
        z = structure.numbers
        centres = species_mask(z, self.centre).nonzero().squeeze(1)
        keep = species_mask(z, self.centre)[nb.i] & species_mask(z, self.neighbour)[nb.j]
        r = pair_distances(structure, nb)[keep]
        s = smooth_count(r, self.r0, self.width) * structure.occupancy[nb.j[keep]]
        cn = torch.zeros(len(structure), dtype=structure.dtype, device=structure.device).index_add(0, nb.i[keep], s)
        return cn[centres], centres

    def penalty(self, structure: Structure):
        cn, centres = self.numbers_per_atom(structure)
        if centres.numel() == 0:
            if not self.required:
                return structure.positions.sum() * 0.0, {"mean": float("nan"), "fraction_in_range": float("nan")}
            raise ScatterfitError(f"{self.name}: the structure has no {self.centre} atoms")
        value = flat_bottom(cn, self.lo, self.hi).mean()
        inside = ((cn >= self.lo - 0.5) & (cn <= self.hi + 0.5)).double().mean()
        return value, {"mean": float(cn.detach().mean()), "fraction_in_range": float(inside)}


class BondAngle:
    """Bond angles A–B–C (centred on B, bonds shorter than ``bond_length`` Å) within [lo, hi] degrees.

    Penalty = mean over angles of flat_bottom(θ/1°)/100 (a 10° excursion costs 1).
    """

    def __init__(self, triplet: str, bond_length: float, target, weight: float = 1.0, name: str | None = None):
        parts = [p.strip() for p in triplet.split("-")]
        if len(parts) != 3:
            raise ScatterfitError(f"angle triplet '{triplet}' must look like 'O-Si-O'")
        parse_pair(f"{parts[0]}-{parts[1]}"), parse_pair(f"{parts[1]}-{parts[2]}")
        self.ends, self.centre = (parts[0], parts[2]), parts[1]
        self.bond_length, self.weight = float(bond_length), float(weight)
        self.lo, self.hi = _range(target, f"angle {triplet} target")
        self.name = name or f"angle:{triplet}"

    def angles(self, structure: Structure) -> torch.Tensor:
        """[T] angles, degrees."""
        nb = neighbours(structure, self.bond_length, full=True)
        z = structure.numbers
        within = species_mask(z, self.centre)[nb.i]
        a, b = triplets(nb, within)
        ja, jb = nb.j[a], nb.j[b]
        e0, e1 = self.ends
        ok = (species_mask(z, e0)[ja] & species_mask(z, e1)[jb]) | (species_mask(z, e1)[ja] & species_mask(z, e0)[jb])
        vec = pair_vectors(structure, nb)
        return bond_angles(vec, a[ok], b[ok])

    def penalty(self, structure: Structure):
        theta = self.angles(structure)
        if theta.numel() == 0:
            zero = structure.positions.sum() * 0.0
            return zero, {"angles": 0}
        value = flat_bottom(theta, self.lo, self.hi).mean() / 100.0
        return value, {"angles": int(theta.numel()), "mean": float(theta.detach().mean()),
                       "std": float(theta.detach().std()) if theta.numel() > 1 else 0.0}


def bond_valence_parameters() -> dict:
    """{element: {"r": Å, "c": dimensionless}}: O'Keeffe & Brese (1991) element parameters (package data)."""
    from importlib.resources import files

    text = files("scatterfit.constraints").joinpath("data/bond_valence_okeeffe_brese_1991.csv").read_text()
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith(("#", "element"))]
    return {e: {"r": float(r), "c": float(c)} for e, r, c in rows}


class BondValence:
    """Bond-valence sums against oxidation states: BVS_i = Σ_j exp((R0_ij − r_ij)/b) · s(r_ij) over
    cation–anion pairs, with a smooth taper s at ``cutoff``; penalty = mean_i (BVS_i − |V_i|)².

    R0 comes from the O'Keeffe & Brese (J. Am. Chem. Soc. 113, 3226 (1991)) element parameters r, c shipped as
    package data (constraints/data/, from pymatgen's copy of the table): R0 = r1 + r2 − r1 r2 (√c1 − √c2)² /
    (c1 r1 + c2 r2), b = 0.37 Å, unless ``r0`` gives a pair's value (e.g. Brown & Altermatt's 2.15 Å for Na–Cl).

    Args:
        oxidation: {element: oxidation state}; positive = cation.
        r0: optional {"Na-Cl": R0 in Å} overrides.
    """

    def __init__(self, oxidation: dict, r0: dict | None = None, b: float = 0.37, cutoff: float = 3.5,
                 weight: float = 1.0, name: str = "bond_valence"):
        if not oxidation:
            raise ScatterfitError("bond_valence: give oxidation states, e.g. {Na = 1, Cl = -1}")
        self.oxidation = {atomic_number(k): float(v) for k, v in oxidation.items()}
        self.overrides = {}
        for k, v in (r0 or {}).items():
            a, c = (atomic_number(x) for x in parse_pair(k))
            self.overrides[(a, c)] = self.overrides[(c, a)] = float(v)
        self.b, self.cutoff, self.weight, self.name = float(b), float(cutoff), float(weight), name

    def r0(self, za: int, zb: int) -> float:
        """R0 of a cation–anion pair, Å."""
        if (za, zb) in self.overrides:
            return self.overrides[(za, zb)]
        from ase.data import chemical_symbols

        table = bond_valence_parameters()
        try:
            pa, pb = table[chemical_symbols[za]], table[chemical_symbols[zb]]
        except KeyError:
            raise ScatterfitError(f"bond_valence: no parameters for {chemical_symbols[za]}-{chemical_symbols[zb]}; "
                                  "give r0 for this pair") from None
        r1, r2, c1, c2 = pa["r"], pb["r"], pa["c"], pb["c"]
        return r1 + r2 - r1 * r2 * (math.sqrt(c1) - math.sqrt(c2)) ** 2 / (c1 * r1 + c2 * r2)

    def sums(self, structure: Structure) -> tuple[torch.Tensor, torch.Tensor]:
        """[M] bond-valence sums of the atoms with a nonzero oxidation state, and their indices."""
        z = structure.numbers
        missing = sorted(set(z.tolist()) - set(self.oxidation))
        if missing:
            from ase.data import chemical_symbols

            names = ", ".join(chemical_symbols[m] for m in missing)
            raise ScatterfitError(f"bond_valence: no oxidation state for {names}")
        ox = per_atom(z, self.oxidation, structure.dtype)
        nb = neighbours(structure, self.cutoff, full=True)
        opposite = ox[nb.i] * ox[nb.j] < 0
        i, j = nb.i[opposite], nb.j[opposite]
        species = sorted(set(z.tolist()))
        r0_table = torch.zeros(int(z.max()) + 1, int(z.max()) + 1, dtype=structure.dtype, device=structure.device)
        for a in species:
            for c in species:
                if self.oxidation[a] * self.oxidation[c] < 0:
                    r0_table[a, c] = self.r0(a, c) if self.oxidation[a] > 0 else self.r0(c, a)
        r = pair_distances(structure, nb)[opposite]
        taper = 1 - torch.sigmoid((r - (self.cutoff - 0.25)) / 0.05)
        v = torch.exp((r0_table[z[i], z[j]] - r) / self.b) * taper * structure.occupancy[j]
        bvs = torch.zeros(len(structure), dtype=structure.dtype, device=structure.device).index_add(0, i, v)
        sites = (ox != 0).nonzero().squeeze(1)
        return bvs[sites], sites

    def penalty(self, structure: Structure):
        bvs, sites = self.sums(structure)
        target = torch.tensor([abs(self.oxidation[int(z)]) for z in structure.numbers[sites]], dtype=bvs.dtype,
                              device=bvs.device)
        value = ((bvs - target) ** 2).mean()
        return value, {"mean_abs_deviation": float((bvs - target).abs().mean().detach())}


class Density:
    """Number density of a periodic structure, Σ occupancy / V, within [lo, hi] atoms/Å³;
    penalty = flat_bottom(ρ)/ρ_mid² (relative)."""

    def __init__(self, target, weight: float = 1.0, name: str = "density"):
        self.lo, self.hi = _range(target, "density target")
        self.weight, self.name = float(weight), name

    def penalty(self, structure: Structure):
        if structure.cell is None or not any(structure.pbc):
            raise ScatterfitError("density: a number density needs a periodic structure with a cell")
        rho = structure.occupancy.sum() / structure.volume
        mid = 0.5 * (self.lo + self.hi)
        return flat_bottom(rho, self.lo, self.hi) / mid**2, {"density": float(rho.detach())}


class Composition:
    """Element fractions (occupancy-weighted) within ``tolerance`` of targets; penalty Σ_e flat_bottom(f_e).

    Args:
        fractions: {element: target fraction}; they are normalised to sum to 1.
    """

    def __init__(self, fractions: dict, tolerance: float = 0.0, weight: float = 1.0, name: str = "composition"):
        total = sum(float(v) for v in fractions.values())
        if not fractions or total <= 0:
            raise ScatterfitError("composition: give positive target fractions")
        self.targets = {atomic_number(k): float(v) / total for k, v in fractions.items()}
        self.tolerance, self.weight, self.name = float(tolerance), float(weight), name

    def penalty(self, structure: Structure):
        occ = structure.occupancy
        total = occ.sum()
        value = structure.positions.sum() * 0.0
        out = {}
        for z, t in self.targets.items():
            f = occ[structure.numbers == z].sum() / total
            value = value + flat_bottom(f, t - self.tolerance, t + self.tolerance)
            from ase.data import chemical_symbols

            out[chemical_symbols[z]] = float(f.detach())
        listed = torch.tensor(list(self.targets), device=structure.device)
        others = occ[~torch.isin(structure.numbers, listed)].sum() / total
        return value + others**2, {"fractions": out}


class ChargeNeutrality:
    """Total charge Σ occupancy_i q_i → 0; penalty (Q/N)², charges from ``oxidation`` or the structure."""

    def __init__(self, oxidation: dict | None = None, weight: float = 1.0, name: str = "charge"):
        self.oxidation = None if oxidation is None else {atomic_number(k): float(v) for k, v in oxidation.items()}
        self.weight, self.name = float(weight), name

    def penalty(self, structure: Structure):
        if self.oxidation is None:
            q = structure.charges.to(structure.dtype)
        else:
            q = per_atom(structure.numbers, self.oxidation, structure.dtype)
        total = (structure.occupancy * q).sum()
        return (total / len(structure)) ** 2, {"total_charge": float(total.detach())}


RESTRAINTS = {"min_distance": MinDistance, "coordination": Coordination, "angle": BondAngle,
              "bond_valence": BondValence, "density": Density, "composition": Composition,
              "charge": ChargeNeutrality}

"""A bundled library of crystal structures for hypotheses: the elements' reference structures and common
structure types instantiated by element substitution, with lattice parameters estimated from a bond length
(the sum of the elements' covalent radii, or an element's own reference nearest-neighbour distance) and refined
afterwards.

Each prototype is a space group, Wyckoff sites with their fractional coordinates, and the cell in units of the
nearest-neighbour A–X distance d of the type, so any substitution gets a cell of the right size. The sources
are the structure types' standard descriptions (International Tables settings; R. W. G. Wyckoff, Crystal
Structures, 2nd ed., Interscience 1963–1971), with the free coordinates of the named example compound.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure


@dataclass(frozen=True)
class Prototype:
    """A structure type.

    Attributes:
        name: e.g. "rock salt".
        formula: site roles and their counts per formula unit, e.g. ("A", 1, "X", 1); the roles are filled with
            elements.
        spacegroup: International Tables number (ASE's default setting).
        sites: ((role, (x, y, z)), ...) the asymmetric unit.
        cell: (a, b, c, α, β, γ) with lengths in units of the A–X (or A–A) nearest-neighbour distance.
        source: where the type and its coordinates come from.
        setting: the space group's setting the coordinates are given in (2: origin choice 2).
        bonds: the cell is in Å of the example compound (the AFLOW types, structure/aflow.py), scaled on
            substitution by the median ratio of the expected to the example's nearest-neighbour distances over
            the pairs of roles that touch (within BONDED of the shortest distance).
    """

    name: str
    formula: tuple
    spacegroup: int
    sites: tuple
    cell: tuple
    source: str
    setting: int = 1
    bonds: bool = False


WYCKOFF = "R. W. G. Wyckoff, Crystal Structures, 2nd ed. (Interscience, 1963–1971)"
PROTOTYPES = (
    Prototype("fcc", ("A", 1), 225, (("A", (0, 0, 0)),), (math.sqrt(2),) * 3 + (90,) * 3, f"Cu type; {WYCKOFF}"),
    Prototype("bcc", ("A", 1), 229, (("A", (0, 0, 0)),), (2 / math.sqrt(3),) * 3 + (90,) * 3, f"W type; {WYCKOFF}"),
    Prototype("hcp", ("A", 1), 194, (("A", (1 / 3, 2 / 3, 0.25)),), (1, 1, math.sqrt(8 / 3), 90, 90, 120),
              f"Mg type (ideal c/a); {WYCKOFF}"),
    Prototype("diamond", ("A", 1), 227, (("A", (0, 0, 0)),), (4 / math.sqrt(3),) * 3 + (90,) * 3,
              f"C (diamond) type; {WYCKOFF}"),
    Prototype("simple cubic", ("A", 1), 221, (("A", (0, 0, 0)),), (1, 1, 1, 90, 90, 90), f"α-Po type; {WYCKOFF}"),
    Prototype("rock salt", ("A", 1, "X", 1), 225, (("A", (0, 0, 0)), ("X", (0.5, 0.5, 0.5))),
              (2, 2, 2, 90, 90, 90), f"NaCl type (B1); {WYCKOFF}"),
    Prototype("cesium chloride", ("A", 1, "X", 1), 221, (("A", (0, 0, 0)), ("X", (0.5, 0.5, 0.5))),
              (2 / math.sqrt(3),) * 3 + (90,) * 3, f"CsCl type (B2); {WYCKOFF}"),
    Prototype("zinc blende", ("A", 1, "X", 1), 216, (("A", (0, 0, 0)), ("X", (0.25, 0.25, 0.25))),
              (4 / math.sqrt(3),) * 3 + (90,) * 3, f"ZnS sphalerite type (B3); {WYCKOFF}"),
    Prototype("wurtzite", ("A", 1, "X", 1), 186, (("A", (1 / 3, 2 / 3, 0)), ("X", (1 / 3, 2 / 3, 0.375))),
              (math.sqrt(8 / 3), math.sqrt(8 / 3), 8 / 3, 90, 90, 120), f"ZnS wurtzite type (B4, ideal); {WYCKOFF}"),
    Prototype("nickel arsenide", ("A", 1, "X", 1), 194, (("A", (0, 0, 0)), ("X", (1 / 3, 2 / 3, 0.25))),
              (1.48, 1.48, 2.06, 90, 90, 120), f"NiAs type (B8₁), NiAs a 3.602, c 5.009 Å; {WYCKOFF}"),
    Prototype("fluorite", ("A", 1, "X", 2), 225, (("A", (0, 0, 0)), ("X", (0.25, 0.25, 0.25))),
              (4 / math.sqrt(3),) * 3 + (90,) * 3, f"CaF2 type (C1); {WYCKOFF}"),
    Prototype("rutile", ("A", 1, "X", 2), 136, (("A", (0, 0, 0)), ("X", (0.3049, 0.3049, 0))),
              (2.353, 2.353, 1.516, 90, 90, 90), f"TiO2 rutile type (C4), a 4.594, c 2.959 Å; {WYCKOFF}"),
    Prototype("anatase", ("A", 1, "X", 2), 141, (("A", (0, 0, 0)), ("X", (0, 0, 0.2083))),
              (1.957, 1.957, 4.919, 90, 90, 90), f"TiO2 anatase type (C5), a 3.785, c 9.514 Å, z(O) 0.2083 (origin "
              f"choice 1); {WYCKOFF}"),
    Prototype("cadmium iodide", ("A", 1, "X", 2), 164, (("A", (0, 0, 0)), ("X", (1 / 3, 2 / 3, 0.25))),
              (1.42, 1.42, 2.29, 90, 90, 120), f"CdI2 type (C6), a 4.24, c 6.84 Å; {WYCKOFF}"),
    Prototype("corundum", ("A", 2, "X", 3), 167, (("A", (0, 0, 0.3523)), ("X", (0.3064, 0, 0.25))),
              (2.567, 2.567, 7.011, 90, 90, 120), f"α-Al2O3 type (D5₁), a 4.759, c 12.99 Å; {WYCKOFF}"),
    Prototype("perovskite", ("A", 1, "B", 1, "X", 3), 221,
              (("A", (0, 0, 0)), ("B", (0.5, 0.5, 0.5)), ("X", (0.5, 0.5, 0))), (2, 2, 2, 90, 90, 90),
              f"cubic SrTiO3 type (E2₁), d = B–X; {WYCKOFF}"),
    Prototype("spinel", ("A", 1, "B", 2, "X", 4), 227,
              (("A", (0.125, 0.125, 0.125)), ("B", (0.5, 0.5, 0.5)), ("X", (0.2625, 0.2625, 0.2625))),
              (4.19, 4.19, 4.19, 90, 90, 90), f"MgAl2O4 type (H1₁), a 8.08 Å, d = B–X; {WYCKOFF}", setting=2),
    Prototype("graphite", ("A", 1), 194, (("A", (0, 0, 0.25)), ("A", (1 / 3, 2 / 3, 0.25))),
              (math.sqrt(3), math.sqrt(3), 4.717, 90, 90, 120), f"C graphite type (A9), a 2.464, c 6.711 Å; {WYCKOFF}"),
    Prototype("tungsten carbide", ("A", 1, "X", 1), 187, (("A", (0, 0, 0)), ("X", (1 / 3, 2 / 3, 0.5))),
              (1.3227, 1.3227, 1.2913, 90, 90, 120), f"WC type (B_h), a 2.906, c 2.837 Å; {WYCKOFF}"),
    Prototype("pyrite", ("A", 1, "X", 2), 205, (("A", (0, 0, 0)), ("X", (0.3848, 0.3848, 0.3848))),
              (2.395, 2.395, 2.395, 90, 90, 90), f"FeS2 pyrite type (C2), a 5.418 Å, x(S) 0.3848; {WYCKOFF}"),
    Prototype("molybdenite", ("A", 1, "X", 2), 194, (("A", (1 / 3, 2 / 3, 0.25)), ("X", (1 / 3, 2 / 3, 0.621))),
              (1.3074, 1.3074, 5.086, 90, 90, 120), f"2H-MoS2 type (C7), a 3.160, c 12.294 Å, z(S) 0.621; {WYCKOFF}"),
    Prototype("aluminium diboride", ("A", 1, "X", 2), 191, (("A", (0, 0, 0)), ("X", (1 / 3, 2 / 3, 0.5))),
              (1.2627, 1.2627, 1.3689, 90, 90, 120), f"AlB2 type (C32), a 3.009, c 3.262 Å; {WYCKOFF}"),
    Prototype("rhenium trioxide", ("A", 1, "X", 3), 221, (("A", (0, 0, 0)), ("X", (0.5, 0, 0))),
              (2, 2, 2, 90, 90, 90), f"ReO3 type (D0₉), a 3.75 Å; {WYCKOFF}"),
    Prototype("Cu3Au", ("A", 3, "X", 1), 221, (("A", (0, 0.5, 0.5)), ("X", (0, 0, 0))),
              (math.sqrt(2),) * 3 + (90,) * 3, f"Cu3Au type (L1₂), a 3.75 Å; {WYCKOFF}"),
    Prototype("A15", ("A", 3, "X", 1), 223, (("A", (0.25, 0, 0.5)), ("X", (0, 0, 0))),
              (4 / math.sqrt(5),) * 3 + (90,) * 3, f"Cr3Si type (A15), a 4.56 Å; {WYCKOFF}"),
    Prototype("layered rock salt", ("A", 1, "B", 1, "X", 2), 166,
              (("A", (0, 0, 0.5)), ("B", (0, 0, 0)), ("X", (0, 0, 0.2604))), (1.4652, 1.4652, 7.312, 90, 90, 120),
              f"α-NaFeO2 type (LiCoO2: a 2.816, c 14.054 Å, z(O) 0.2604), d = B–X; {WYCKOFF}"),
    Prototype("calcite", ("A", 1, "B", 1, "X", 3), 167,
              (("A", (0, 0, 0)), ("B", (0, 0, 0.25)), ("X", (0.2578, 0, 0.25))), (3.879, 3.879, 13.27, 90, 90, 120),
              f"CaCO3 calcite type (G0₁), a 4.988, c 17.061 Å, x(O) 0.2578, d = B–X (C–O); {WYCKOFF}"),
    Prototype("ThCr2Si2", ("A", 1, "B", 2, "X", 2), 139,
              (("A", (0, 0, 0)), ("B", (0, 0.5, 0.25)), ("X", (0, 0, 0.354))), (1.65, 1.65, 5.42, 90, 90, 90),
              f"ThCr2Si2 type (BaFe2As2: a 3.96, c 13.0 Å), d = B–X; {WYCKOFF}"),
)


@functools.lru_cache(maxsize=1)
def prototypes() -> tuple:
    """The library: the hand-written PROTOTYPES above, then the AFLOW library's types (structure/aflow.py)."""
    from scatterfit.structure.aflow import aflow_types

    return PROTOTYPES + tuple(Prototype(**fields) for fields in aflow_types())


def parse_composition(formula: str) -> dict[str, float]:
    """{element: amount} of a formula such as "TiO2", "La0.5Ba0.5CoO3" or "Cd Se"."""
    import re

    from ase.data import atomic_numbers

    amounts: dict[str, float] = {}
    for symbol, number in re.findall(r"([A-Z][a-z]?)\s*([0-9.]*)", formula):
        if symbol not in atomic_numbers:
            raise ScatterfitError(f"unknown element '{symbol}' in '{formula}'")
        amounts[symbol] = amounts.get(symbol, 0.0) + (float(number) if number else 1.0)
    if not amounts:
        raise ScatterfitError(f"no element in the composition '{formula}'")
    return amounts


def formula_of(structure: Structure) -> str:
    """The occupancy-weighted composition of a structure's cell as a formula, elements in alphabetical order."""
    from ase.data import chemical_symbols

    counts: dict = {}
    for z, occ in zip(structure.numbers.tolist(), structure.occupancy.detach().cpu().tolist()):
        counts[chemical_symbols[z]] = counts.get(chemical_symbols[z], 0.0) + occ
    return "".join(f"{el}{'' if abs(n - 1) < 1e-9 else f'{n:g}'}" for el, n in sorted(counts.items()))


def _bond(a: str, b: str) -> float:
    """The expected A–B nearest-neighbour distance, Å: an element's own reference structure for A = B, else the
    sum of covalent radii (Cordero et al. 2008, as ASE tabulates them)."""
    from ase.data import atomic_numbers, covalent_radii, reference_states

    if a == b:
        ref = reference_states[atomic_numbers[a]]
        if ref and "a" in ref and ref.get("symmetry") in ("fcc", "bcc", "diamond", "hcp", "sc"):
            factor = {"fcc": math.sqrt(2) / 2, "bcc": math.sqrt(3) / 2, "diamond": math.sqrt(3) / 4, "hcp": 1.0,
                      "sc": 1.0}[ref["symmetry"]]
            return ref["a"] * factor
    return float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


@dataclass(frozen=True)
class Candidate:
    """A prototype with elements on its roles: what a crystal hypothesis starts from."""

    prototype: Prototype
    roles: dict  # role → element symbol (for a shared site, its host: the first of its elements)
    shared: tuple = ()  # ((host, ((element, fraction of the site), ...)), ...): the sites several elements share

    @property
    def label(self) -> str:
        return f"{self.prototype.name} {self.formula}"

    @property
    def formula(self) -> str:
        parts = self.prototype.formula
        shared = {host: "(" + "".join(f"{e}{f:g}" for e, f in members) + ")" for host, members in self.shared}
        return "".join(f"{shared.get(self.roles[parts[i]], self.roles[parts[i]])}"
                       f"{parts[i + 1] if parts[i + 1] != 1 else ''}" for i in range(0, len(parts), 2))

    def structure(self) -> Structure:
        """The crystal: the prototype's sites with these elements, the cell from the expected bond lengths (of a
        shared site's host element); a shared site holds each of its elements at its fraction (occupancies)."""
        if self.prototype.bonds:
            d = _bond_scale(self._atoms(self.prototype.cell))
        else:
            roles = list(dict.fromkeys(r for r, _ in self.prototype.sites))
            pair = ("A", "A") if len(roles) == 1 else (("B", "X") if "B" in roles else ("A", "X"))
            d = _bond(self.roles[pair[0]], self.roles[pair[1]])
        atoms = self._atoms([v * d for v in self.prototype.cell[:3]] + list(self.prototype.cell[3:]))
        if self.shared:
            atoms = _share_sites(atoms, dict(self.shared))
        return Structure.from_ase(atoms).with_(space_group=self.prototype.spacegroup)

    def _atoms(self, cellpar):
        from ase.spacegroup import crystal

        return crystal([self.roles[r] for r, _ in self.prototype.sites], [p for _, p in self.prototype.sites],
                       spacegroup=self.prototype.spacegroup, cellpar=cellpar, setting=self.prototype.setting)

    def key(self) -> tuple:
        """What makes two candidates the same crystal whatever their type's name or setting: the space group
        and its conventional cell's atom count, and per element the site symmetries, multiplicities and first
        neighbours (elements and counts within BONDED of the nearest) of its orbits (unlike Wyckoff letters, these
        do not depend on the choice of origin). The prototype's geometry does not depend on the elements, so its
        key with one stand-in element per role (:func:`_role_key`, computed once per type) names the elements."""
        from ase.data import atomic_numbers

        number, n_std, orbits = _role_key(self.prototype)
        z = {ROLE_STANDINS.index(k) + 1: atomic_numbers[self.roles[r]] for k, r in
             zip(ROLE_STANDINS, self.prototype.formula[0::2])}
        named = ((z[stand_in], tuple(sorted((symbol, count, tuple(sorted((z[n], c) for n, c in shell)))
                                            for symbol, count, shell in sites)))
                 for stand_in, sites in orbits)
        return (number, n_std, tuple(sorted(named)))


ROLE_STANDINS = ("H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne")  # elements 1, 2, ...: one per role


@functools.lru_cache(maxsize=None)
def _role_key(prototype: Prototype) -> tuple:
    """:meth:`Candidate.key` of ``prototype`` with its k-th role held by element number k + 1 (ROLE_STANDINS)."""
    import warnings

    import spglib

    roles = prototype.formula[0::2]
    stand_in = Candidate(prototype, {r: ROLE_STANDINS[k] for k, r in enumerate(roles)})
    atoms = stand_in._atoms(prototype.cell if prototype.bonds else
                            [v * 3.0 for v in prototype.cell[:3]] + list(prototype.cell[3:]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        data = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                           symprec=1e-3)
    orbits = {}
    equivalent = np.asarray(data.equivalent_atoms)
    shells = _first_shells(atoms)
    for i in sorted(set(int(k) for k in equivalent)):
        orbits.setdefault(int(atoms.numbers[i]), []).append(
            (data.site_symmetry_symbols[i], int(np.sum(equivalent == i)), shells[i]))
    return (int(data.number), len(data.std_types), tuple(sorted((z, tuple(sorted(w))) for z, w in orbits.items())))


BONDED = 1.15  # pairs within this factor of the shortest distance touch


def _share_sites(atoms, shared: dict):
    """``atoms`` with every atom of a host element of ``shared`` ({host: ((host, fraction), (element, fraction),
    ...)}) joined at its place by the site's other elements, each at its fraction (ASE's "occupancy" array)."""
    atoms = atoms.copy()
    occupancy = np.ones(len(atoms))
    symbols = np.array(atoms.get_chemical_symbols())
    parts = []
    for host, members in shared.items():
        on_site = np.flatnonzero(symbols == host)
        occupancy[on_site] = members[0][1]
        for element, fraction in members[1:]:
            part = atoms[on_site]
            part.set_chemical_symbols([element] * len(part))
            part.set_array("occupancy", np.full(len(part), fraction))
            parts.append(part)
    atoms.set_array("occupancy", occupancy)
    for part in parts:
        atoms += part
    return atoms


def shared_sites(amounts: dict) -> tuple[dict, tuple]:
    """Elements of a formula that share a site: runs of consecutive elements with fractional amounts that add up
    to a whole number ("La0.5Ba0.5" of "La0.5Ba0.5CoO3", "Mn0.2Fe0.8" of "Mn0.2Fe0.8O": a solid solution on one
    site). Returns ({element or the run's first element: amount}, ((host, ((element, fraction of the site),
    ...)), ...)); amounts that make no whole number stay as they are."""
    out, shared, run = {}, [], []
    for element, amount in amounts.items():
        whole = abs(amount - round(amount)) < 1e-6
        if whole and not run:
            out[element] = amount
            continue
        run.append((element, amount))
        total = sum(a for _, a in run)
        if abs(total - round(total)) < 1e-6 and round(total) > 0:
            if len(run) > 1:
                shared.append((run[0][0], tuple((e, a / total) for e, a in run)))
            out[run[0][0]] = float(round(total))
            run = []
    for element, amount in run:  # a run that never made a whole number: no shared site
        out[element] = amount
    return out, tuple(shared)


def _first_shells(atoms) -> list[tuple]:
    """Per atom, its first shell: ((element number, count), ...) of the neighbours within BONDED of its nearest."""
    i, j, d = _pairs(atoms)
    out = []
    for k in range(len(atoms)):
        mine = i == k
        near = j[mine][d[mine] <= BONDED * d[mine].min()]
        out.append(tuple(sorted(zip(*np.unique(atoms.numbers[near], return_counts=True)))))
    return [tuple((int(a), int(b)) for a, b in shell) for shell in out]


def _pairs(atoms):
    """(i, j, d) of every pair within a cutoff that holds each atom's nearest neighbours and their BONDED shell."""
    from ase.neighborlist import neighbor_list

    cutoff = 1.5 * (atoms.get_volume() / len(atoms)) ** (1 / 3)  # above most nearest-neighbour distances
    while True:
        i, j, d = neighbor_list("ijd", atoms, cutoff)
        nearest = np.full(len(atoms), np.inf)
        np.minimum.at(nearest, i, d)
        if np.all(BONDED * nearest <= cutoff):
            return i, j, d
        cutoff *= 1.5


def _bond_scale(atoms) -> float:
    """The factor that brings ``atoms``' touching pairs (within BONDED of the shortest distance) to their
    expected lengths (:func:`_bond`): the median of expected / present over those pairs of elements."""
    from ase.data import chemical_symbols

    i, j, d = _pairs(atoms)
    shortest = {}
    for a, b, dist in zip(atoms.numbers[i], atoms.numbers[j], d):
        key = (min(a, b), max(a, b))
        shortest[key] = min(shortest.get(key, np.inf), float(dist))
    least = min(shortest.values())
    ratios = [_bond(chemical_symbols[a], chemical_symbols[b]) / dist for (a, b), dist in shortest.items()
              if dist <= BONDED * least]
    return float(np.median(ratios))


def compounds(composition: str) -> list[str] | None:
    """The formulas of a composition that lists candidate compounds or phases ("ZnS + Ni", "Fe + Ni", "TiO2,
    BaCO3": parts separated by "+" or ";", or by commas when one of them is a compound of two or more elements),
    or None for a single formula or a list of elements ("Ti O", "Si,Ni")."""
    parts = [p.strip() for p in re.split(r"[+,;]", composition)]
    listed = any(sep in composition for sep in "+;") or any(len(parse_composition(p)) > 1 for p in parts if p)
    if len(parts) < 2 or not listed:
        return None
    if any(not p for p in parts):
        raise ScatterfitError(f"an empty compound in the composition '{composition}'")
    return parts


def candidates(composition: str) -> list[Candidate]:
    """Every prototype whose roles can hold the composition's elements: for a formula ("TiO2", "CdSe") the types
    of its stoichiometry, for elements only (separated by spaces or commas: "Ti O") every assignment of the
    elements to the roles of the types with as many roles as elements, and so for every subset of the elements
(the compounds of any two of three, each element's own structures); for a
    list of candidate compounds ("ZnS + Ni", :func:`compounds`) the types of each compound."""
    listed = compounds(composition)
    if listed is not None:
        unique = {}
        for c in (c for part in listed for c in candidates(part)):
            unique.setdefault(c.key(), c)
        return list(unique.values())
    amounts = parse_composition(composition)
    explicit = len(amounts) == 1 or not any(sep in composition.strip() for sep in (" ", ","))
    shared = ()
    if explicit:
        amounts, shared = shared_sites(amounts)
    elements = list(amounts)
    out = []
    for proto in prototypes():
        roles = proto.formula[0::2]
        counts = np.array(proto.formula[1::2], float)
        if len(roles) != len(elements):
            continue
        for order in itertools.permutations(elements):
            given = np.array([amounts[e] for e in order])
            if explicit and not np.allclose(given / given.sum(), counts / counts.sum(), atol=0.02):
                continue
            out.append(Candidate(proto, dict(zip(roles, order)), shared))
    if not explicit and len(elements) > 1:  # elements only: the sample may hold compounds of fewer of them (CdS and
        for size in range(len(elements) - 1, 0, -1):  # ZnS of "Cd Zn S") and the elements' own phases
            for subset in itertools.combinations(elements, size):
                out += candidates(" ".join(subset))
    unique = {}
    for c in out:  # one per distinct structure (rock salt AX = XA; an AFLOW type that repeats one above)
        unique.setdefault(c.key(), c)
    return list(unique.values())

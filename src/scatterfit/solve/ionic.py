"""What an ionic formula says before any data: the ions' oxidation states and the shortest bond; and, with the
first peak of its G(r), the restraints a chemist would put on a glass or melt of it without knowing its structure
(the cation's coordination from the peak's area, corner-sharing of small polyhedra)."""

from __future__ import annotations

import math

ANIONS = {"O": -2, "S": -2, "Se": -2, "Te": -2, "N": -3, "F": -1, "Cl": -1, "Br": -1, "I": -1}


def oxidation_states(counts: dict) -> dict | None:
    """{element: oxidation state} of an ionic formula ({element: count}), or None when it is not one: anions are
    the ANIONS elements present (at their usual states); each cation takes its highest common oxidation state
    (pymatgen's table) not above the charge the anions leave per cation, rounded up: W12O40 → W +6 (an
    oxo-anion: the ion's charge is what the formula leaves over), Fe3O4 → Fe +3, TiO2 → Ti +4. A formula
    without an anion, or of anions alone, is not ionic (C60, Au13)."""
    from pymatgen.core import Element

    anions = {e: ANIONS[e] for e in counts if e in ANIONS}
    cations = [e for e in counts if e not in anions]
    if not anions or not cations:
        return None
    share = -sum(anions[e] * counts[e] for e in anions) / sum(counts[e] for e in cations)
    out = dict(anions)
    for e in cations:
        common = sorted(s for s in Element(e).common_oxidation_states if s > 0)
        if not common:
            return None
        below = [s for s in common if s <= math.ceil(share - 1e-9)]
        out[e] = below[-1] if below else common[0]
    return out


def expected_bond(counts: dict) -> float:
    """The shortest bond a composition ({element: count}) is expected to have, Å: for an ionic formula
    (:func:`oxidation_states`) the smallest bond-valence R0 of a cation–anion pair (a bond of one valence
    unit), otherwise the smallest sum of two covalent radii (ASE's table) among its elements."""
    from ase.data import atomic_numbers, covalent_radii

    from scatterfit.constraints import BondValence

    oxidation = oxidation_states(counts)
    if oxidation is not None:
        bv = BondValence(oxidation)
        return min(bv.r0(atomic_numbers[c], atomic_numbers[a]) for c, vc in oxidation.items() if vc > 0
                   for a, va in oxidation.items() if va < 0)
    radii = [float(covalent_radii[atomic_numbers[e]]) for e in counts]
    return min(a + b for k, a in enumerate(radii) for b in radii[k:])


COORDINATION_RANGE = (2, 8)  # a cation's coordination number read from the first peak, within these
SHELL_CUTOFF = 1.25  # × the bond: where a coordination shell is counted to (silica's Si–O: 2.0 Å)
CORNER_SHARING = math.sqrt(3)  # × the bond: the closest cations of corner-sharing polyhedra (M–X–M ≥ 120°)


def network_restraints(counts: dict, first_peak: float, first_shell: float, lengths: dict) -> dict:
    """{"coordination": [args, ...], "cation_cores": {"A-A": Å}} of a glass or melt of a binary ionic formula
    ({element: count}; {} for any other formula), its first peak at ``first_peak`` Å being the cation–anion
    bond:

    - the cation's coordination by the anion from the first peak's area (``first_shell``:
      triage.first_shell_area, Σ_αβ c_α b_α b_β N_αβ/⟨b⟩² = 2 c_cat b_cat b_an N/⟨b⟩² with ``lengths`` {element:
      its scattering length or f(0)}), rounded (silica's NIMROD data: 3.7, so 4) within COORDINATION_RANGE,
      counted to SHELL_CUTOFF × the bond; and the anion's, as the stoichiometry requires (SiO2: 2);
    - Pauling's third rule: cations of coordination four or less share only the corners of their polyhedra, so
      two of them stay CORNER_SHARING × the bond apart (Si–Si 2.79 Å; edge-sharing tetrahedra would put them at
      2.3 Å).
    A formula of several cations or anions gets none: its first peak mixes their bonds.
    """
    oxidation = oxidation_states(counts)
    if oxidation is None or len(oxidation) != 2:
        return {}
    cation = next(e for e, v in oxidation.items() if v > 0)
    anion = next(e for e, v in oxidation.items() if v < 0)
    total = sum(counts.values())
    mean = sum(counts[e] * lengths[e] for e in counts) / total
    found = first_shell * mean**2 / (2 * counts[cation] / total * lengths[cation] * lengths[anion])
    n = int(min(max(round(found), COORDINATION_RANGE[0]), COORDINATION_RANGE[1]))
    cutoff = round(SHELL_CUTOFF * first_peak, 3)
    per_anion = n * counts[cation] / counts[anion]
    target = round(per_anion) if abs(per_anion - round(per_anion)) < 1e-6 else \
        [math.floor(per_anion), math.ceil(per_anion)]
    return {"coordination": [{"pair": f"{cation}-{anion}", "r0": cutoff, "target": n},
                             {"pair": f"{anion}-{cation}", "r0": cutoff, "target": target}],
            "cation_cores": {f"{cation}-{cation}": round(CORNER_SHARING * first_peak, 3)} if n <= 4 else {},
            "found": round(found, 2)}

"""Physical checks of refined hypotheses beyond the fit: the energy per atom from the default potential and the
chemistry of the refined structure (coordination, bond lengths, contacts that are too close).

Energies of different compositions are not comparable, so a hypothesis is judged by its energy above the lowest
refined hypothesis of the same formula (eV/atom), as a phase's energy above the hull. A mixture's energy is the
atom-fraction-weighted mean of its phases'; a nanoparticle inside an envelope is its crystal's. A crystal's phases
are also compared with the most stable structure type the library holds for their formula (each type at its
estimated cell, one energy each): a phase far above it is a chemist's warning sign (Millerite-type CdSe, 0.2 eV/atom
above wurtzite), whatever the fit says.
"""

from __future__ import annotations

from scatterfit.errors import ScatterfitError

TOO_CLOSE = 0.75  # a contact shorter than this × (sum of covalent radii) is unphysical
SHELL = 1.12  # first shell: within this factor of an atom's shortest distance
SHELL_CUTOFF = 6.0  # Å: the longest first-shell distance looked at


def _phase_structures(hypothesis) -> list[tuple]:
    """[(refined Structure, atom fraction)] of a refined hypothesis."""
    result = hypothesis.result
    states = result.state.phase_states()
    if len(states) == 1:
        return [(next(iter(states.values())).structure, 1.0)]
    params = result.parameters()
    return [(st.structure, float(params.get(f"fraction[{name}]", 1.0 / len(states)))) for name, st in states.items()]


def structure_energy(structure, potential) -> float | None:
    """The potential's energy per atom of one structure, eV/atom (None: the potential cannot evaluate it, e.g.
    sites shared by several elements)."""
    s = structure.with_(positions=structure.positions.detach(),
                        cell=None if structure.cell is None else structure.cell.detach())
    try:
        return float(potential.energy(s)) / len(s)
    except (ScatterfitError, RuntimeError, ValueError):
        return None


def phase_energies(hypothesis, potential) -> list[tuple] | None:
    """[(formula, atom fraction, eV/atom)] of the refined hypothesis' phases (None: not refined, or a phase the
    potential cannot evaluate)."""
    from scatterfit.structure.library import formula_of

    if hypothesis.result is None:
        return None
    out = []
    for structure, fraction in _phase_structures(hypothesis):
        energy = structure_energy(structure, potential)
        if energy is None:
            return None
        out.append((formula_of(structure), fraction, energy))
    return out


LIBRARY_CLASSES = ("crystal", "mixture", "nanoparticle")
"""The classes whose phases are compared with the library's types (a glass or liquid lies above its crystals by
nature; a cluster's formula has no crystal types)."""


def library_minima(candidates: list, formulas, potential) -> dict:
    """{formula_key: (label, eV/atom)}: the lowest energy per atom among the library ``candidates`` (structure
    types with elements on their sites, structure/library.py) of each of ``formulas``, each type at its
    estimated cell (an upper bound of its relaxed energy)."""
    wanted = {formula_key(f) for f in formulas}
    out = {}
    for candidate in candidates:
        key = formula_key(candidate.formula)
        if key not in wanted:
            continue
        try:
            structure = candidate.structure()
        except (ScatterfitError, ValueError):
            continue
        energy = structure_energy(structure, potential)
        if energy is not None and (key not in out or energy < out[key][1]):
            out[key] = (candidate.label, energy)
    return out


def first_shell_checks(structure) -> dict:
    """{"coordination": {element: mean first-shell size}, "bonds": {"A-B": mean first-shell distance, Å},
    "too_close": pairs closer than TOO_CLOSE × the covalent radii's sum} of one structure. An atom's first shell
    holds the neighbours within SHELL × its shortest distance (the effective coordination a crystallographer
    reads: 6 in rock salt, 8 in bcc, 4 in diamond), whatever the elements' radii."""
    import numpy as np
    from ase.data import chemical_symbols, covalent_radii

    from scatterfit.structure.neighbours import neighbours, pair_distances

    s = structure.with_(positions=structure.positions.detach(),
                        cell=None if structure.cell is None else structure.cell.detach()).to("cpu")
    z = s.numbers.numpy()
    nb = neighbours(s, SHELL_CUTOFF, full=True)
    r = pair_distances(s, nb).numpy()
    i, j = nb.i.numpy(), nb.j.numpy()
    nearest = np.full(len(z), np.inf)
    np.minimum.at(nearest, i, r)
    shell = r < SHELL * nearest[i]
    counts = np.bincount(i[shell], minlength=len(z))
    coordination = {chemical_symbols[a]: round(float(counts[z == a].mean()), 2) for a in sorted(set(z.tolist()))}
    bonds = {}
    for a in sorted(set(z.tolist())):
        for b in sorted(set(z.tolist())):
            m = shell & (z[i] == a) & (z[j] == b)
            if a <= b and m.any():
                bonds[f"{chemical_symbols[a]}-{chemical_symbols[b]}"] = round(float(r[m].mean()), 4)
    close = r < TOO_CLOSE * (covalent_radii[z[i]] + covalent_radii[z[j]])
    return {"coordination": coordination, "bonds": bonds, "too_close": int(close.sum()) // 2}


def chemistry_checks(hypothesis) -> dict:
    """:func:`first_shell_checks` of the refined structure ({phase: ...} for a mixture)."""
    states = hypothesis.result.state.phase_states()
    out = {name: first_shell_checks(state.structure) for name, state in states.items()}
    return out if len(states) > 1 else next(iter(out.values()))


def energetics(hypotheses: list, potential, candidates: list = ()) -> None:
    """Fill ``energy_per_atom`` and ``energy_above_best`` (eV/atom, against the same formula) of each refined
    hypothesis in ``hypotheses``, and for crystals, mixtures and particles inside envelopes (periodic phases)
    ``energy_above_library`` (the phases' atom-fraction-weighted energy above the most stable of the library
    ``candidates`` of their formulas) with ``library_reference`` (those types' labels); a discrete particle's
    energy holds its surface's, which says nothing of its phase."""
    phases = {id(h): phase_energies(h, potential) for h in hypotheses}
    for h in hypotheses:
        found = phases[id(h)]
        h.energy_per_atom = None if found is None else sum(fraction * energy for _, fraction, energy in found)
    compared = [h for h in hypotheses if h.kind in LIBRARY_CLASSES and phases[id(h)] is not None
                and all(s.cell is not None for s, _ in _phase_structures(h))]
    minima = library_minima(candidates, {f for h in compared for f, _, _ in phases[id(h)]}, potential)
    for h in compared:
        rows = phases[id(h)]
        if all(formula_key(f) in minima for f, _, _ in rows):
            h.energy_above_library = sum(fraction * (energy - minima[formula_key(f)][1])
                                         for f, fraction, energy in rows)
            h.library_reference = " + ".join(dict.fromkeys(minima[formula_key(f)][0] for f, _, _ in rows))
    best = {}
    for h in hypotheses:
        if h.energy_per_atom is not None:
            key = formula_key(h.formula)
            best[key] = min(best.get(key, h.energy_per_atom), h.energy_per_atom)
    for h in hypotheses:
        h.energy_above_best = None if h.energy_per_atom is None else h.energy_per_atom - best[formula_key(h.formula)]


def formula_key(formula: str) -> tuple:
    """A formula in a form that depends neither on the order of its elements nor on the number of formula units
    ("ClNa", "NaCl" and "Na4Cl4" are one: atom fractions; a mixture's phases are each normalised, in order)."""
    import re

    parts = []
    for part in formula.split(" + "):
        counts = {}
        for element, amount in re.findall(r"([A-Z][a-z]?)([0-9.]*)", part):
            counts[element] = counts.get(element, 0.0) + (float(amount) if amount else 1.0)
        total = sum(counts.values()) or 1.0
        parts.append(tuple(sorted((e, round(n / total, 4)) for e, n in counts.items())))
    return tuple(parts)

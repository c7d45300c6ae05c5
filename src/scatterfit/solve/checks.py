"""Physical checks of refined hypotheses beyond the fit: the energy per atom from the default potential and the
chemistry of the refined structure (coordination, bond lengths, contacts that are too close).

Energies of different compositions are not comparable, so a hypothesis is judged by its energy above the lowest
refined hypothesis of the same formula (eV/atom), as a phase's energy above the hull. A mixture's energy is the
atom-fraction-weighted mean of its phases'; a nanoparticle inside an envelope is its crystal's.
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


def energy_per_atom(hypothesis, potential) -> float | None:
    """The potential's energy per atom of the refined hypothesis, eV/atom (None: not refined, or the potential
    cannot evaluate it)."""
    if hypothesis.result is None:
        return None
    total = 0.0
    try:
        for structure, fraction in _phase_structures(hypothesis):
            s = structure.with_(positions=structure.positions.detach(),
                                cell=None if structure.cell is None else structure.cell.detach())
            total += fraction * float(potential.energy(s)) / len(s)
    except (ScatterfitError, RuntimeError, ValueError):
        return None
    return total


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


def energetics(hypotheses: list, potential) -> None:
    """Fill ``energy_per_atom`` and ``energy_above_best`` (eV/atom, against the same formula) of each refined
    hypothesis in ``hypotheses``."""
    for h in hypotheses:
        h.energy_per_atom = energy_per_atom(h, potential)
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

"""Subgroup hypotheses: the best crystal with its symmetry lowered, as a crystallographer tries when a structure
type fits well but not to the noise (a tetragonal → orthorhombic transition below its temperature).

The maximal translationengleiche subgroups of the refined crystal's space group (the same lattice, a lower
point group: where most displacive phase transitions go; pyxtal's Bilbao tables through
structure/subgroup.lower_symmetry) are each a new crystal hypothesis, started from the refined crystal nudged off
its symmetry inside the subgroup, and refined as warm hypotheses. Those whose lower symmetry frees no parameter
are not tried. A subgroup has more parameters and fits at least as well: it must improve on its parent by
hypotheses.MIN_GAIN["crystal"] (10 %) per parameter it frees to count (hypotheses.check_gain), and the
ranking's information criterion weighs the rest.
"""

from __future__ import annotations

from scatterfit.solve.hypotheses import (
    Hypothesis,
    crystal_free,
    phase_name,
    refined_start,
    structural_count,
)

SUBGROUP_FROM = 0.08  # the best crystal's mean Rw from which its subgroups are tried (measured Ni fits at 0.039,
#                       si.gr at 0.083, SrFe2As2 at 150 K in I4/mmm at 0.128 where Fmmm gives 0.108)
MAX_SUBGROUPS = 8  # at most this many subgroups of one crystal are refined


def translationengleiche(number: int) -> list[int]:
    """The space-group numbers of the maximal translationengleiche subgroups of space group ``number``, each once,
    in the order of the tables."""
    from scatterfit.structure.subgroup import maximal_subgroups

    out = []
    for h, _ in maximal_subgroups(number, kinds=("t",)):
        if h not in out:
            out.append(h)
    return out


def worth_lowering(crystal: Hypothesis) -> bool:
    """Whether a refined crystal (a PDF's) is one whose subgroups are worth refining: it fits (no error) with a
    mean Rw of SUBGROUP_FROM or more, and its structure declares a space group above P1."""
    if crystal.kind != "crystal" or crystal.error or crystal.result is None or crystal.model != "pdf":
        return False
    (structure,) = crystal.structures.values()
    mean = sum(crystal.rw.values()) / max(len(crystal.rw), 1)
    return mean >= SUBGROUP_FROM and (structure.space_group or 1) > 1


def subgroup_hypotheses(crystal: Hypothesis) -> tuple[list[Hypothesis], list[str]]:
    """The refined ``crystal`` in each maximal translationengleiche subgroup of its space group that frees more
    parameters (at most MAX_SUBGROUPS), as warm crystal hypotheses with ``crystal`` as their parent; and notes on
    the subgroups left out (no setting found, nothing freed)."""
    from scatterfit.errors import ScatterfitError
    from scatterfit.structure.spacegroup import space_group_symbol
    from scatterfit.structure.subgroup import lower_symmetry

    structures, values = refined_start(crystal)
    (structure,) = structures.values()
    parent = int(structure.space_group)
    base = structural_count(crystal)
    out, skipped = [], []
    for number in translationengleiche(parent):
        if len(out) >= MAX_SUBGROUPS:
            break
        symbol = space_group_symbol(number)
        try:
            lowered = lower_symmetry(structure, number)
        except ScatterfitError as exc:
            skipped.append(f"{symbol}: {exc}")
            continue
        label = f"{crystal.label} in {symbol} (subgroup)"
        h = Hypothesis("crystal", label, crystal.formula, {phase_name(label): lowered},
                       crystal_free(lowered, crystal.model), dict(values),
                       f"{crystal.source}; lowered from {space_group_symbol(parent)} (No. {parent}) to its "
                       f"maximal subgroup {symbol} (No. {number})", warm=True, parents=[crystal], model=crystal.model)
        if structural_count(h) <= base:
            skipped.append(f"{symbol}: frees no parameter")
            continue
        out.append(h)
    return out, skipped

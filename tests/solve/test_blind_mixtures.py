"""Blind draws of the mixture class (slow): two crystals of different compounds, each in a random one of the
common structure types of the library (rock salt, wurtzite, rutile, fcc, ...: its hand-written prototypes) with its
lattice scaled by ±3 % and a random Uiso, mixed so that each phase makes 30–70 % of the G(r) signal (a phase below
that is a question of detection limits, not of this test); their X-ray G(r) with noise. solve is given only the
pattern and the two compounds ("ZnS + Ni": what went into the vial), not their structure types or the fractions."""

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset

COMPOUNDS = ("ZnS", "NaCl", "MgO", "CdSe", "GaAs", "NiAs", "CaF2", "TiO2", "CsCl", "ZnO", "Al2O3", "SrTiO3",
             "MgAl2O4", "Ni", "Cu", "Ag", "Si", "Fe", "W")
SIGNAL = (0.3, 0.7)  # the first phase's share of the pattern's weights


def _elements(formula: str) -> set:
    from scatterfit.structure.library import parse_composition

    return set(parse_composition(formula))


def _phase(formula: str, rng):
    """A random one of the library's common structure types of ``formula`` (its hand-written prototypes), its
    lattice scaled by ±3 % and a random Uiso: (label, Structure)."""
    from scatterfit.structure.library import PROTOTYPES, candidates

    options = [c for c in candidates(formula) if c.prototype in PROTOTYPES]
    truth = options[rng.integers(len(options))]
    s = truth.structure().with_uiso(float(rng.uniform(0.003, 0.01)))
    scale = 1 + rng.uniform(-0.03, 0.03)
    return truth.label, s.with_(positions=s.positions * scale, cell=s.cell * scale)


def draw(seed: int):
    """(composition "A + B", [(label, atom fraction)] of the truth, Dataset): two compounds without a common
    element, a random type of each, the first making a share in SIGNAL of the phase weights (mixture.phase_weights,
    the X-ray ⟨f⟩² weighting of each phase's G(r)); the mixture's G(r) (Qmax 25 Å⁻¹, qdamp 0.03 Å⁻¹, delta2 1.5 Å²)
    over 0.5–30 Å with noise of 1 % of its largest value."""
    from scatterfit.scattering.mixture import phase_weights
    from scatterfit.scattering.pdf import pdf

    rng = np.random.default_rng(seed)
    while True:
        first, second = (str(f) for f in rng.choice(COMPOUNDS, 2, replace=False))
        if not _elements(first) & _elements(second):
            break
    (label1, s1), (label2, s2) = _phase(first, rng), _phase(second, rng)
    share = float(rng.uniform(*SIGNAL))
    per_atom = phase_weights([s1, s2], torch.tensor([0.5, 0.5], dtype=torch.float64), "pdf")  # ∝ ⟨f⟩² per phase
    c1 = float(share / per_atom[0] / (share / per_atom[0] + (1 - share) / per_atom[1]))  # the atom fraction
    weights = phase_weights([s1, s2], torch.tensor([c1, 1 - c1], dtype=torch.float64), "pdf")
    r = torch.arange(0.5, 30.0, 0.02, dtype=torch.float64)
    g = sum(w * pdf(s, r, qdamp=0.03, qmax=25.0, delta2=1.5) for w, s in zip(weights, (s1, s2))).numpy()
    g = g + 0.01 * np.abs(g).max() * rng.standard_normal(len(g))
    data = Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})
    return f"{first} + {second}", [(label1, c1), (label2, 1 - c1)], data


def check(seed: int) -> tuple[bool, str]:
    """(the mixture of the two true types is ranked first, or tied with the first (ΔBIC < ranking.INDISTINCT) in a
    solve that reports the tie; the line printed for the draw). A tie is what the data allow when the two
    compounds' atoms scatter X-rays alike: Fe and Ni, each in a one-element type, give the same mixture G(r)
    whichever element takes which type (seed 4: three assignments at the same Rw)."""
    from scatterfit.solve.ranking import INDISTINCT
    from scatterfit.solve.solve import solve

    composition, truth, data = draw(seed)
    solution = solve({"sim": data}, composition, potential=None)
    if not solution.ranked:
        return False, f"seed {seed}: {composition}: no hypothesis refined"
    def pair(h):
        return sorted(p.label for p in h.parents) if h.kind == "mixture" else [h.label]

    best = solution.ranked[0]["hypothesis"]
    wanted = sorted(label for label, _ in truth)
    right = best.kind == "mixture" and pair(best) == wanted
    tied = [row for row in solution.ranked[1:] if row["delta_bic"] < INDISTINCT and pair(row["hypothesis"]) == wanted]
    line = (f"seed {seed}: {composition}, truth {' + '.join(f'{label} ({c:.2f})' for label, c in truth)}; first "
            f"{best.kind} {best.label} Rw {best.rw['sim']:.4f}")
    if not right and tied and not solution.verdict["distinguishable"]:  # a tie the solve reports as one
        right, line = True, line + f"; tied with the truth (ΔBIC {tied[0]['delta_bic']:.2f}), reported as a tie"
    print(line, flush=True)
    return right, line


@pytest.mark.slow  # about 15 minutes (10 solves of 16–190 s, beside another job)
def test_blind_mixtures_rank_the_two_true_types_first():
    results = [check(seed) for seed in range(10)]
    misses = [line for right, line in results if not right]
    assert len(misses) <= 1, "\n".join(misses)


def three_phase_draw(seed: int = 0):
    """(composition, {label: atom fraction}, Dataset): zinc blende ZnS, rock salt MgO and CsCl-type CsCl making
    55 %, 20 % and 25 % of the G(r)'s phase weights (as in :func:`draw`; CsCl 6 % of the atoms), lattices scaled
    by ±2 %, Uiso 0.006 Å², X-ray G(r) (Qmax 25 Å⁻¹, qdamp 0.03 Å⁻¹, delta2 1.5 Å²) over 0.5–30 Å with noise of 1 %
    of its largest value."""
    from scatterfit.scattering.mixture import phase_weights
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.library import candidates

    rng = np.random.default_rng(seed)
    picks = (("ZnS", "zinc blende ZnS", 0.55), ("MgO", "rock salt MgO", 0.2), ("CsCl", "cesium chloride CsCl", 0.25))
    structures = []
    for formula, label, _ in picks:
        (c,) = [c for c in candidates(formula) if c.label == label]
        s = c.structure().with_uiso(0.006)
        k = 1 + rng.uniform(-0.02, 0.02)
        structures.append(s.with_(positions=s.positions * k, cell=s.cell * k))
    per_atom = phase_weights(structures, torch.full((3,), 1 / 3, dtype=torch.float64), "pdf")
    c = torch.tensor([share / float(p) for (_, _, share), p in zip(picks, per_atom)], dtype=torch.float64)
    c = c / c.sum()
    weights = phase_weights(structures, c, "pdf")
    r = torch.arange(0.5, 30.0, 0.02, dtype=torch.float64)
    g = sum(w * pdf(s, r, qdamp=0.03, qmax=25.0, delta2=1.5) for w, s in zip(weights, structures)).numpy()
    g = g + 0.01 * np.abs(g).max() * rng.standard_normal(len(g))
    data = Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})
    return "ZnS + MgO + CsCl", {label: float(x) for (_, label, _), x in zip(picks, c)}, data


@pytest.mark.slow  # about 3 minutes
def test_a_third_phase_is_found_beside_the_best_two_phase_mixture():
    """Three compounds in the vial, each in its common type: the two-phase screen and refinements find two of
    them (with the types of the two swapped as well: zinc blende MgO + rock salt ZnS fits as well, ΔBIC < 2), the
    screen beside each of those mixtures' fits finds the third, and the three-phase mixture of the true types is
    ranked first with the true atom fractions."""
    from scatterfit.solve.hypotheses import phase_name
    from scatterfit.solve.solve import solve

    composition, truth, data = three_phase_draw()
    solution = solve({"sim": data}, composition, potential=None)
    best = solution.ranked[0]["hypothesis"]
    phases = best.result.state.phase_states()
    assert best.kind == "mixture" and len(phases) == 3
    assert sorted(best.label.split(" + ")) == sorted(truth)
    assert best.rw["sim"] < 0.05
    fractions = best.result.parameters()
    for label, fraction in truth.items():
        assert fractions[f"fraction[{phase_name(label)}]"] == pytest.approx(fraction, abs=0.02)
    assert solution.ranked[1]["delta_bic"] > 6  # told apart from the swapped types, strongly

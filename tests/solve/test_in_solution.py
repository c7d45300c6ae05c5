"""The in-solution hint (solve --in-solution): a sample dissolved or dispersed in a solvent is answered with finite
objects only — the triage's classes become clusters and particles, a particle needs no gain over its crystal, and
the bulk crystals are refined only as the particles' parents."""

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.hypotheses import Hypothesis, check_gain
from scatterfit.solve.solve import solve
from scatterfit.solve.triage import Triage, in_solution
from scatterfit.structure.library import candidates


@pytest.mark.parametrize("classes, expected", [(["crystal", "mixture", "nanoparticle"], ["nanoparticle", "cluster"]),
                                               (["amorphous", "nanoparticle", "cluster"], ["nanoparticle", "cluster"]),
                                               (["cluster", "nanoparticle", "amorphous"], ["cluster", "nanoparticle"])])
def test_in_solution_tries_finite_objects_only_in_the_order_the_data_suggest(classes, expected):
    found = Triage("gr", (1.0, 30.0), 30.0, 2.5, -0.5, classes, reasons=["the first peak is at 2.50 Å"])
    given = in_solution(found)
    assert given.classes == expected and found.classes == classes  # a copy: the data's triage stays as it was
    assert given.reasons[:-1] == found.reasons and given.reasons[-1].startswith("in solution (given)")
    assert (f"the triage's '{classes[0]}' is not one" in given.reasons[-1]) == (classes[0] not in expected)


def test_in_solution_a_particle_needs_no_gain_over_its_crystal():
    def particle():
        crystal = Hypothesis("crystal", "fcc X", "X", {}, [], rw={"d": 0.100}, n_parameters=5)
        return Hypothesis("nanoparticle", "fcc X particle", "X", {}, [], rw={"d": 0.099}, n_parameters=6,
                          parents=[crystal])

    assert check_gain(particle()).error.startswith("not supported: Rw 0.0990 is only 1 % below")
    assert check_gain(particle(), finite=True).error is None
    mixture = Hypothesis("mixture", "A + B", "X", {}, [], rw={"d": 0.099}, n_parameters=8,
                         parents=[Hypothesis("crystal", "A", "X", {}, [], rw={"d": 0.1}, n_parameters=5)])
    assert check_gain(mixture, finite=True).error is not None  # the hint is about particles only


def test_a_powder_pattern_in_solution_is_refused():
    x = np.linspace(10.0, 80.0, 700)
    data = Dataset(x, 1.0 + np.exp(-0.5 * ((x - 44.5) / 0.1) ** 2), None, "xrd", "degrees",
                   metadata={"wavelength": 1.5406})
    with pytest.raises(ScatterfitError, match="a Bragg powder pattern is of a crystalline powder, not of a sample "
                                              "in solution"):
        solve({"d": data}, "Ni", in_solution=True, potential=None)


@pytest.mark.slow  # about 90 s
def test_a_colloid_whose_signal_outlasts_the_data_is_answered_with_its_particle():
    """A 60 Å fcc Ni particle's G(r) to 30 Å (1 % noise) looks like a crystal to the triage; in solution the solve
    ranks only particles (the fcc Ni particle first, its size found) and lists the crystals as parents only."""
    (c,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    s = c.structure().with_uiso(0.005)
    r = torch.arange(1.0, 30.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qmax=25.0, qdamp=0.03, spdiameter=60.0).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    data = {"d": Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})}
    solution = solve(data, "Ni", in_solution=True, potential=None)
    assert solution.triage.classes == ["nanoparticle", "cluster"]
    assert {row["hypothesis"].kind for row in solution.ranked} <= {"nanoparticle", "cluster"}
    best = solution.ranked[0]["hypothesis"]
    assert (best.kind, best.label) == ("nanoparticle", "fcc Ni particle") and best.rw["d"] < 0.06
    assert 45.0 < best.result.parameters()["spdiameter"] < 80.0
    parents = [h for h in solution.failed if h.kind == "crystal" and h.error.startswith("not a candidate")]
    assert "fcc Ni" in {h.label for h in parents}

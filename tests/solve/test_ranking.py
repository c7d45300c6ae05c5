"""The information criterion, the weights and the verdict (solve/ranking.py), and the gain rule for derived
hypotheses (solve/hypotheses.check_gain), on hand-made refined hypotheses."""

import math

import pytest

from scatterfit.solve.hypotheses import Hypothesis, check_gain
from scatterfit.solve.ranking import bic, independent_points, rank, verdict


def _h(kind, label, rw, k, parents=()):
    return Hypothesis(kind, label, "X", {}, [], rw={"d": rw}, n_parameters=k, parents=list(parents))


def test_bic_weights_and_verdict():
    points = {"d": independent_points(None, 1.5, 30.0, 25.0)}
    assert points["d"] == pytest.approx(28.5 * 25 / math.pi)
    a, b, c = _h("crystal", "A", 0.10, 5), _h("crystal", "B", 0.1002, 5), _h("crystal", "C", 0.30, 5)
    assert bic(a.rw, points, 5) == pytest.approx(points["d"] * math.log(0.01) + 5 * math.log(points["d"]))
    ranked = rank([c, b, a], points)
    assert [row["hypothesis"].label for row in ranked] == ["A", "B", "C"]
    assert sum(row["weight"] for row in ranked) == pytest.approx(1.0)
    assert ranked[1]["weight"] / ranked[0]["weight"] == pytest.approx(math.exp(-0.5 * ranked[1]["delta_bic"]))
    close = verdict(ranked)
    assert close["best"] == "A" and not close["distinguishable"] and "Bragg" in close["next_measurement"]
    clear = verdict(rank([a, c], points))
    assert clear["distinguishable"] and clear["evidence"] == "strong" and "next_measurement" not in clear
    # one more parameter must pay for itself: the same Rw with k + 1 ranks lower by ln N
    more = rank([_h("crystal", "A", 0.10, 5), _h("nanoparticle", "A particle", 0.10, 6)], points)
    assert more[1]["delta_bic"] == pytest.approx(math.log(points["d"]))
    # a crystal and its particle the data cannot tell apart: the instrument's calibration separates them
    assert "--qdamp" in verdict(more)["next_measurement"]


def test_derived_hypotheses_must_improve_on_their_parents():
    parent = _h("crystal", "fcc Ni", 0.0391, 5)
    spurious = check_gain(_h("mixture", "fcc Ni + hcp Ni", 0.0345, 10, [parent, _h("crystal", "hcp", 0.77, 6)]))
    assert spurious.error and "not supported" in spurious.error and "12 %" in spurious.error
    real = check_gain(_h("mixture", "Si + Ni", 0.10, 10, [_h("crystal", "Si", 0.35, 5), _h("crystal", "Ni", 0.8, 5)]))
    assert real.error is None
    particle = check_gain(_h("nanoparticle", "Pt particle", 0.12, 6, [_h("crystal", "Pt", 0.30, 5)]))
    assert particle.error is None


def test_a_ranking_whose_best_leaves_most_of_the_signal_says_nothing_fits():
    from types import SimpleNamespace

    from scatterfit.solve.ranking import NO_FIT, rank, verdict

    poor = SimpleNamespace(label="box", kind="amorphous", formula="SiO2", rw={"d": 1.0}, n_parameters=3,
                           error=None, energy_per_atom=None)
    out = verdict(rank([poor], {"d": 100.0}))
    assert out["fits"] is False and out["evidence"].startswith("none")
    good = SimpleNamespace(**{**vars(poor), "rw": {"d": 0.5 * NO_FIT}, "label": "crystal"})
    assert verdict(rank([poor, good], {"d": 100.0}))["fits"] is True


def test_a_particle_must_also_predict_the_data_beyond_the_fit_range():
    """hypotheses.check_holdout: a particle refined on r ≤ 30 Å that would end the signal the data still show
    beyond it is not supported; a real particle, whose data end there, is."""
    import numpy as np
    import torch

    from scatterfit.io.datasets import Dataset
    from scatterfit.scattering.pdf import pdf
    from scatterfit.solve.hypotheses import (
        check_holdout,
        crystal_hypothesis,
        holdout_rw,
        nanoparticle_hypothesis,
        refine_hypothesis,
    )
    from scatterfit.structure.library import candidates

    (fcc,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    truth = fcc.structure().with_uiso(0.005)
    r = torch.arange(0.5, 50.0, 0.02, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for diameter, supported in ((None, False), (28.0, True)):
        g = pdf(truth, r, qdamp=0.03, qmax=25.0, delta2=1.5, spdiameter=diameter).numpy()
        g = g + 0.01 * np.abs(g).max() * rng.standard_normal(len(g))
        data = {"d": Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})}
        crystal = refine_hypothesis(crystal_hypothesis(fcc.structure(), "fcc Ni", "Ni", "library"), data)
        particle = nanoparticle_hypothesis(crystal, 24.0)
        particle.bounds = {"spdiameter": (10.0, 34.0)}  # a particle that ends within the holdout
        particle = refine_hypothesis(particle, data)
        assert particle.error is None
        mine, theirs = holdout_rw(particle, data), holdout_rw(crystal, data)
        assert (mine <= theirs) is supported
        checked = check_holdout(particle, data)
        assert (checked.error is None) is supported
        if not supported:
            assert "beyond the fit range it predicts the data worse" in checked.error


def test_a_released_stage_frees_what_the_short_range_pressed_onto_a_bound():
    """The measured BaZn2As2 as the solve refines it (library ThCr2Si2 start, qdamp and delta2, the LM r-range
    ramp): the first stage (r ≤ 5 Å) drives Ba's Biso onto its 2.5 Å² bound, where it stays (Rw 0.163); with the
    longer stages releasing it (StageBase.release, as the default ramp's later stages do) it refines to the
    book's value (1.4 Å², Rw 0.117)."""
    import dataclasses

    import numba
    import torch

    from conftest import cmi_file
    from scatterfit.io import load_dataset
    from scatterfit.optim import Stage, pdf_range_ramp, refine
    from scatterfit.optim.runner import Problem
    from scatterfit.optim.stage import RELEASED
    from scatterfit.solve.hypotheses import BOUNDS, STEPS, crystal_hypothesis, hypothesis_loss
    from scatterfit.structure.library import candidates
    from scatterfit.structure.parametrisation import Parametrisation

    (bza,) = [c for c in candidates("BaZn2As2") if c.label == "ThCr2Si2 BaZn2As2"]
    data = load_dataset(cmi_file("pdf/ch06RefineCrystalStructureGen/data/BaZn2As2_K-Mn-doped_300K.gr"))
    data = data.with_(metadata={**data.metadata, "qmax": 25.0})
    h = crystal_hypothesis(bza.structure(), bza.label, bza.formula, "library")
    loss = hypothesis_loss(h, {"d": data})
    out = {}
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # as the command line runs it (the sums' order moves this refinement's path)
    try:
        for release in (False, True):
            param = Parametrisation(bza.structure(), free=h.free, values=h.values, bounds=BOUNDS)
            stages = [dataclasses.replace(s, release=release and k > 0)
                      for k, s in enumerate(pdf_range_ramp(param.free, "lm", STEPS))]
            result = refine(loss, param, stages)
            out[release] = (result.parameters()["Biso_Ba"], result.terms["d"].breakdown["rw"])
    finally:
        numba.set_num_threads(threads)
    assert out[False][0] == pytest.approx(2.5, abs=0.01) and out[False][1] > 0.15
    assert 1.0 < out[True][0] < 2.0 and out[True][1] < 0.125
    assert [s.release for s in pdf_range_ramp(param.free, "lm", STEPS)] == [False, True, True]
    # the release itself: θ on a bound moves to RELEASED, only for the stage's groups; values inside stay
    param = Parametrisation(bza.structure(), free=["lattice", "biso"])
    problem = Problem(None, param)
    theta = torch.full_like(param.initial_vector(), 30.0)
    released = Stage("lm", free=["biso"], release=True).released(problem, theta)
    a, b = problem.offsets["biso"]
    assert torch.all(released[a:b] == RELEASED) and torch.all(released[:a] == 30.0)
    inside = torch.full_like(theta, 3.0)
    assert torch.equal(Stage("lm", release=True).released(problem, inside), inside)


def test_the_verdict_cautions_when_the_best_misfit_is_mostly_the_models():
    """From a mean Rw of SYSTEMATIC the misfit is mostly systematic: the BIC, which counts it as noise, overstates
    the evidence, and the verdict says so (CdSe-1: "strong" evidence at Rw 0.49)."""
    from scatterfit.solve.ranking import SYSTEMATIC

    points = {"d": 170.0}
    good = verdict(rank([_h("crystal", "A", 0.10, 5), _h("crystal", "B", 0.15, 5)], points))
    assert "caution" not in good
    poor = verdict(rank([_h("crystal", "A", SYSTEMATIC + 0.1, 5), _h("crystal", "B", SYSTEMATIC + 0.2, 5)], points))
    assert poor["evidence"] == "strong" and f"Rw {SYSTEMATIC + 0.1:.2f}" in poor["caution"]

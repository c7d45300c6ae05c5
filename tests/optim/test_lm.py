"""Levenberg–Marquardt (optim/lm.py): its finite-difference Jacobian against autograd, recovery of known
parameters, the same minimum as L-BFGS on measured Ni with far fewer evaluations, early stop, and its limits."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from conftest import cmi_file
from scatterfit import ScatterfitError, Structure
from scatterfit.io import Dataset, load_dataset
from scatterfit.loss import DataTerm, EnergyTerm, Loss
from scatterfit.optim import LevenbergMarquardt, Stage, pdf_range_ramp, refine
from scatterfit.optim.lm import LMRun
from scatterfit.optim.runner import Problem
from scatterfit.optim.stages import default_optimizer
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.parametrisation import Parametrisation

FREE = ["lattice", "biso", "qdamp", "delta2"]


def _simulated_ni(noise=0.01, seed=0):
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.5240, cubic=True)).with_(
        biso=torch.full((4,), 0.50, dtype=torch.float64))
    r = torch.arange(1.0, 20.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.04, delta2=1.5, qmax=25.0)
    y = g.numpy() + noise * np.random.default_rng(seed).standard_normal(len(r))
    return Dataset(r.numpy(), y, np.full(len(r), noise), "gr", "angstrom")


def test_jacobian_transpose_residual_is_the_autograd_gradient_of_the_loss():
    """With r scaled as the module says, Jᵀr (forward differences) equals ∇(weight · Rw) (autograd), for two
    data terms of different weights at once."""
    data = _simulated_ni()
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.55, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, name="a", weight=1.0, xmax=12.0),
                 DataTerm(PDFModel(qmax=25.0), data, name="b", weight=0.3, metric="chi2")])
    param = Parametrisation(start, free=FREE)
    theta = param.initial_vector() + 0.01
    run = LMRun(Problem(loss, param), LevenbergMarquardt(), theta)
    factors = run._factors(run.last_terms)
    r0 = run._residuals(run.last_terms, factors)
    jac = []
    for j in range(theta.numel()):
        moved = theta.clone()
        moved[j] += 1e-6
        jac.append((run._residuals(run._evaluate(moved)[1], factors) - r0) / 1e-6)
    gradient_lm = torch.stack(jac, 1).T @ r0
    t = theta.clone().requires_grad_(True)
    value, _ = loss.evaluate(param.state(t))
    (gradient,) = torch.autograd.grad(value, t)
    np.testing.assert_allclose(gradient_lm.numpy(), gradient.numpy(), rtol=1e-4, atol=1e-6 * gradient.abs().max())


def test_recovers_known_parameters_and_stops_on_its_own():
    data = _simulated_ni()
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.58, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    res = refine(loss, Parametrisation(start, free=FREE), pdf_range_ramp(FREE, "lm"))
    p = res.parameters()
    assert abs(p["a"] - 3.5240) < 1e-3
    assert abs(p["Biso_Ni"] - 0.50) / 0.50 < 0.05
    assert abs(p["qdamp"] - 0.04) < 0.004
    assert len(res.history) < 40  # three stages of at most 30, 30 and 100 steps: each ended on convergence


def test_a_cubic_cell_read_from_a_p1_file_refines_with_its_angles_free(tmp_path):
    """From a P1 file (as ASE and most programs write one) the cell refines as triclinic: at the cubic start the
    angles change the misfit only at second order, where a forward difference reads h·∂²/2 as a slope and the step
    sent the angles off by 1/h, so that no step was accepted and every stage stopped at the start (Rw 0.61 here).
    The lattice must reach the truth, the angles stay at 90°."""
    from scatterfit.structure import read_structure

    bulk("Ni", "fcc", a=3.58, cubic=True).write(str(tmp_path / "start.cif"))
    start = read_structure(tmp_path / "start.cif")
    assert start.space_group == 1
    loss = Loss([DataTerm(PDFModel(qmax=25.0), _simulated_ni())])
    res = refine(loss, Parametrisation(start, free=FREE), pdf_range_ramp(FREE, "lm"))
    p = res.parameters()
    assert [p[k] for k in ("a", "b", "c")] == pytest.approx([3.5240] * 3, abs=1e-3)
    assert [p[k] for k in ("alpha", "beta", "gamma")] == pytest.approx([90.0] * 3, abs=1e-6)
    assert res.terms["sim" if "sim" in res.terms else next(iter(res.terms))].breakdown["rw"] < 0.02


def test_same_minimum_as_lbfgs_on_measured_nickel_with_forward_evaluations_only(monkeypatch):
    """LM reaches L-BFGS's minimum with no more evaluations, each a forward pass only where L-BFGS's are forward
    and backward (about three forwards' cost). L-BFGS itself needs 96 evaluations since it keeps the accepted
    point's gradient (optim/quasi_newton.py; torch.optim.LBFGS needed about 173)."""
    data = load_dataset(cmi_file("pdf/ch03NiModelling/data/Ni.gr"))
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.60, cubic=True))
    calls = {"n": 0}
    original = PDFModel.__call__

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PDFModel, "__call__", counted)
    results = {}
    for optimizer in ("lm", "lbfgs"):
        calls["n"] = 0
        loss = Loss([DataTerm(PDFModel(qmax=25.0), data, xmin=1.5, xmax=30.0, name="Ni")])
        res = refine(loss, Parametrisation(start, free=FREE), pdf_range_ramp(FREE, optimizer))
        results[optimizer] = (res.terms["Ni"].breakdown["rw"], res.parameters(), calls["n"])
    (rw_lm, p_lm, n_lm), (rw_lbfgs, p_lbfgs, n_lbfgs) = results["lm"], results["lbfgs"]
    assert abs(rw_lm - rw_lbfgs) < 1e-6 and rw_lm < 0.0392
    assert abs(p_lm["a"] - p_lbfgs["a"]) < 1e-5 and abs(p_lm["delta2"] - p_lbfgs["delta2"]) < 1e-3
    assert n_lm <= 1.05 * n_lbfgs  # forward evaluations only, against L-BFGS's forward + backward


def test_lm_refuses_terms_that_are_not_least_squares():
    from scatterfit.energy.pair import LennardJones

    data = _simulated_ni()
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.55, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, name="gr"),
                 EnergyTerm(LennardJones({"Ni-Ni": {"epsilon": 0.1, "sigma": 2.2}}), weight=0.1)])
    param = Parametrisation(start, free=["lattice"])
    with pytest.raises(ScatterfitError, match=r"lm stage fits data terms only; \['energy'\] is switched on"):
        refine(loss, param, Stage("lm", steps=5))
    refine(loss, param, Stage("lm", steps=2, weights={"energy": 0}))  # switched off in this stage: fine
    assert default_optimizer(loss, param) == "lbfgs"
    assert default_optimizer(Loss([loss.terms[0]]), param) == "lm"

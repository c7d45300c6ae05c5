"""Refinement: recovery of known parameters from simulated data, checkpoint/resume, and the Ni fit against the
PDFfit2 reference run in the same session."""

import math
import os

import numpy as np
import pytest
import torch
from ase.build import bulk

from conftest import cmi_file
from scatterfit import ScatterfitError, Structure
from scatterfit.io import Dataset, load_dataset
from scatterfit.loss import DataTerm, Loss, rw
from scatterfit.models import PDFModel
from scatterfit.optim import Stage, refine
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.parametrisation import Parametrisation

STAGES = [Stage("lbfgs", free=["lattice", "biso"], steps=40, xmax=5.0), Stage("lbfgs", steps=40, xmax=12.0),
          Stage("lbfgs", steps=150)]


def _simulated_ni(noise=0.01, seed=0):
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.5240, cubic=True)).with_(
        biso=torch.full((4,), 0.50, dtype=torch.float64))
    r = torch.arange(1.0, 20.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.04, delta2=1.5, qmax=25.0)
    rng = np.random.default_rng(seed)
    y = g.numpy() + noise * rng.standard_normal(len(r))
    return Dataset(r.numpy(), y, np.full(len(r), noise), "gr", "angstrom")


def test_recovers_lattice_and_biso_from_noisy_simulation():
    data = _simulated_ni()
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.58, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    res = refine(loss, Parametrisation(start, free=["lattice", "biso", "qdamp", "delta2"]), STAGES, progress=False)
    p = res.parameters()
    assert abs(p["a"] - 3.5240) < 1e-3
    assert abs(p["Biso_Ni"] - 0.50) / 0.50 < 0.05
    assert abs(p["qdamp"] - 0.04) < 0.004


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    data = _simulated_ni(seed=1)
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.55, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    stages = [Stage("adam", free=["lattice"], steps=12, lr=0.02), Stage("lbfgs", steps=10)]
    make = lambda: Parametrisation(start, free=["lattice", "biso"])  # noqa: E731
    full = refine(loss, make(), stages, progress=False)

    class Kill(Exception):
        pass

    def killer(stage, step, value, terms):
        if stage == 1 and step == 4:
            raise Kill

    ck = tmp_path / "ck.pt"
    with pytest.raises(Kill):
        refine(loss, make(), stages, checkpoint=ck, checkpoint_every=2, observers=[killer], progress=False)
    resumed = refine(loss, make(), stages, checkpoint=ck, checkpoint_every=2, resume=True, progress=False)
    assert torch.allclose(resumed.theta, full.theta, atol=1e-10)
    assert resumed.history == pytest.approx(full.history, rel=1e-10)


def test_bad_settings():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52))
    with pytest.raises(ScatterfitError, match="unknown parameter group"):
        Parametrisation(s, free=["lattices"])
    with pytest.raises(ScatterfitError, match="optimizer"):
        Stage("sgd")
    with pytest.raises(ScatterfitError, match="metric"):
        DataTerm(PDFModel(), _simulated_ni(), metric="r2")


@pytest.mark.parametrize("with_qbroad", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_nickel_fit_matches_pdffit2(with_qbroad):
    """Our fit from a = 3.60 Å and PDFfit2's (run here, same data and range) reach the same minimum."""
    pytest.importorskip("diffpy.pdffit2")
    from scatterfit.testing import pdffit2_nickel_reference

    path = cmi_file("pdf/ch03NiModelling/data/Ni.gr")
    data = load_dataset(path)
    ref = pdffit2_nickel_reference(data, qbroad=with_qbroad)
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.60, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, xmin=1.5, xmax=30.0)])
    free = ["lattice", "biso", "qdamp", "delta2"] + (["qbroad"] if with_qbroad else [])
    res = refine(loss, Parametrisation(start, free=free), STAGES, progress=False)
    ours = res.terms[loss.terms[0].name].breakdown["rw"]
    p = res.parameters()
    assert abs(p["a"] - ref["a"]) < 0.002
    assert ours <= (0.029 if with_qbroad else 0.045)
    assert ours <= ref["rw"] + 1e-3
    assert abs(p["Uiso_Ni"] - ref["uiso"]) < 0.05 * ref["uiso"]
    assert abs(p["qdamp"] - ref["qdamp"]) < 0.05 * ref["qdamp"]

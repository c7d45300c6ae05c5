"""The search targets of the swarm issue, on simulated data (slow: minutes; run with `make test-all`)."""

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.models import PDFModel
from scatterfit.optim import Stage
from scatterfit.optim.search import CandidateEvaluator, search
from scatterfit.optim.space import Choice, Integer, Real, SearchSpace
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.builders import SHAPES, nanoparticle, random_alloy
from scatterfit.structure.candidates import ParticleCandidates

pytestmark = pytest.mark.slow


def noisy_pdf(truth, rmax=20.0, noise=0.005, seed=0):
    r = torch.arange(1.5, rmax, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.03, qmax=25.0)
    sigma = noise * float(g.abs().max())
    y = g.numpy() + sigma * np.random.default_rng(seed).standard_normal(len(r))
    return Dataset(r.numpy(), y, np.full(len(r), sigma), "gr", "angstrom")


def _truth_rw(truth, data):
    from scatterfit.structure.parametrisation import Parametrisation

    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    p = Parametrisation(truth, values={"qdamp": 0.03})
    return loss.evaluate(p.state(p.initial_vector()))[1]["data:gr"].breakdown["rw"]


@pytest.mark.parametrize("element,shape,size,nn,atoms", [("Au", "cuboctahedron", 3, 2.884, 147),
                                                          ("Pt", "icosahedron", 4, 2.775, 309)])
def test_search_recovers_shape_family_and_atom_count(element, shape, size, nn, atoms):
    truth = nanoparticle(element, shape, size, nn_distance=nn)
    truth = truth.with_(biso=torch.full((len(truth),), 0.6, dtype=torch.float64))
    data = noisy_pdf(truth)
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    evaluator = CandidateEvaluator(ParticleCandidates(element), loss, free=["expansion", "biso"],
                                   stages=[Stage("lbfgs", steps=5, tol=1e-4, patience=1)], values={"qdamp": 0.03})
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 5)])
    res = search(evaluator, space, size=12, budget=30, stall=4, seed=0, top_k=2,
                 final_stages=[Stage("lbfgs", steps=40)], progress=False)
    assert res.best == {"shape": shape, "size": size}
    assert len(res.refined.structure) == atoms
    rw = res.refined.terms["data:gr"].breakdown["rw"]
    truth_rw = _truth_rw(truth, data)
    print(f"\n{element}{atoms} {shape}: found {res.best}, {len(res.refined.structure)} atoms, Rw {rw:.4f} "
          f"(truth {truth_rw:.4f}), {res.evaluations} candidates, {res.wall_time:.0f} s")
    assert rw <= 0.05 and rw <= 1.05 * truth_rw


def test_search_recovers_alloy_composition():
    """The alloy spacing follows Vegard's law (the builder's assumption, see ParticleCandidates); the swarm
    searches the fraction, each candidate's Biso is refined (its spacing is fixed by the fraction)."""
    from scatterfit.structure.builders import bulk_nn_distance

    rng = np.random.default_rng(4)
    nn = 0.7 * bulk_nn_distance("Ni") + 0.3 * bulk_nn_distance("Pt")
    base = nanoparticle("Ni", "cuboctahedron", 3, nn_distance=nn)
    truth = random_alloy(base, {"Ni": 0.7, "Pt": 0.3}, seed=rng)
    truth = truth.with_(biso=torch.full((len(truth),), 0.6, dtype=torch.float64))
    data = noisy_pdf(truth)
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    evaluator = CandidateEvaluator(ParticleCandidates("Ni", second_element="Pt", shape="cuboctahedron"), loss,
                                   free=["biso"], stages=[Stage("lbfgs", steps=5, tol=1e-4, patience=1)],
                                   values={"qdamp": 0.03})
    space = SearchSpace([Integer("size", 3, 3), Real("fraction", 0.0, 1.0)])
    res = search(evaluator, space, size=10, budget=60, stall=4, seed=0, top_k=3,
                 final_stages=[Stage("lbfgs", steps=30)], progress=False)
    rw = res.refined.terms["data:gr"].breakdown["rw"]
    print(f"\nPt0.3Ni0.7: found fraction {res.best['fraction']:.3f}, Rw {rw:.4f} (truth {_truth_rw(truth, data):.4f}), "
          f"{res.evaluations} candidates, {res.wall_time:.0f} s")
    assert abs(res.best["fraction"] - 0.3) <= 0.05

"""The search targets of the swarm issue, on simulated data (slow: minutes; run with `make test-all`)."""

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import Stage
from scatterfit.optim.search import CandidateEvaluator, search
from scatterfit.optim.space import Choice, Integer, Real, SearchSpace
from scatterfit.scattering.models import PDFModel
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
                 final_stages=[Stage("lbfgs", steps=40)])
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
                 final_stages=[Stage("lbfgs", steps=30)])
    rw = res.refined.terms["data:gr"].breakdown["rw"]
    print(f"\nPt0.3Ni0.7: found fraction {res.best['fraction']:.3f}, Rw {rw:.4f} (truth {_truth_rw(truth, data):.4f}), "
          f"{res.evaluations} candidates, {res.wall_time:.0f} s")
    assert abs(res.best["fraction"] - 0.3) <= 0.05


def test_amorphous_silicon_from_a_random_start():
    """Target of the issue: Rw ≤ 0.05 on S(Q) with ≥ 85 % four-coordinated Si, from a random box. Protocol: a
    Langevin melt-and-quench with the Stillinger–Weber energy alone (3000 K → 300 K in 6 ps; the data and the
    coordination restraint off), then L-BFGS on S(Q) + energy + coordination. The reference model was made with
    a different potential (Vink's modified SW, tests/data/make_amorphous_si.py), so the search does not share
    its generator's energy landscape. Measured: Rw 0.011 (the true model's: 0.010), 94 % four-fold."""
    from pathlib import Path

    from scatterfit.analysis.chemistry import chemistry_report
    from scatterfit.constraints import Coordination
    from scatterfit.energy import StillingerWeber
    from scatterfit.loss import EnergyTerm
    from scatterfit.optim import refine
    from scatterfit.scattering.models import BoxScatteringModel
    from scatterfit.structure import read_structure
    from scatterfit.structure.builders import amorphous_box
    from scatterfit.structure.parametrisation import Parametrisation, State

    truth = read_structure(Path(__file__).resolve().parents[1] / "data" / "a-Si_216.extxyz")
    truth = truth.with_(biso=torch.full((216,), 0.5, dtype=torch.float64))
    q = torch.arange(0.8, 20.0, 0.02, dtype=torch.float64)
    sq = BoxScatteringModel("sq")(State(truth, {}), q)
    y = sq.numpy() + 0.01 * np.random.default_rng(0).standard_normal(len(q))
    data = Dataset(q.numpy(), y, np.full(len(q), 0.01), "sq", "1/angstrom")

    def four_fold(s):
        counts = chemistry_report(s, cutoffs={"Si-Si": 2.85})["coordination"]["Si"]["total"]
        return counts.get(4, 0) / len(s)

    assert 0.85 < four_fold(truth) < 1.0  # an amorphous network (the reference made earlier was diamond)
    start = amorphous_box("Si", 216, float(216 / truth.volume), min_dist=2.1, seed=1).with_(
        biso=torch.full((216,), 0.5, dtype=torch.float64))
    terms = [DataTerm(BoxScatteringModel("sq"), data, fit_scale=False),
             EnergyTerm(StillingerWeber(), weight=0.05, reference=-4.3366),
             Coordination("Si-Si", r0=2.85, target=4, width=0.1, weight=0.05)]
    half_cell = 0.5 * float(truth.cell[0, 0])
    network_only = {"data:sq": 0.0, "coordination:Si-Si": 0.0}
    res = refine(Loss(terms), Parametrisation(start, free=["positions"], bounds={"positions": half_cell / 0.96 + 0.1}),
                 [Stage("anneal", steps=6000, timestep=1.0, t_start=3000, t_end=300, weights=network_only,
                        local_steps=100),
                  Stage("lbfgs", steps=400)])
    rw, frac = res.terms["data:sq"].breakdown["rw"], four_fold(res.structure)
    print(f"\na-Si 216 from random, anneal (SW) then S(Q) + SW + coordination: Rw {rw:.4f}, four-fold {frac:.1%}")
    assert frac >= 0.85
    assert rw <= 0.05

"""The hand-written L-BFGS and Adam (optim/quasi_newton.py) against torch.optim's, step by step, and the point of
having them: a refinement that never imports torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from scatterfit.optim.quasi_newton import AdamOptimizer, LBFGSOptimizer


def _rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def _least_squares():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(60, 40, generator=gen, dtype=torch.float64)
    b = torch.randn(60, generator=gen, dtype=torch.float64)
    return lambda x: ((a @ x - b) ** 2).sum()


def _trajectory(make, f, x0, steps):
    x = x0.clone().requires_grad_(True)
    opt = make(x)
    calls = [0]

    def closure():
        opt.zero_grad()
        value = f(x)
        value.backward()
        calls[0] += 1
        return value

    out = []
    for _ in range(steps):
        opt.step(closure)
        out.append(x.detach().clone())
    return torch.stack(out), calls[0]


@pytest.mark.parametrize("f, x0", [(_rosenbrock, torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)),
                                   (_least_squares(), torch.zeros(40, dtype=torch.float64))],
                         ids=["rosenbrock", "least-squares"])
def test_lbfgs_follows_torchs_iterates_with_half_the_evaluations(f, x0):
    """The same iterates as torch.optim.LBFGS (strong Wolfe, one iteration per step, history 20) to rounding
    over 40 iterations, at the minimum; torch evaluates the loss again at the start of every step, this one
    keeps the accepted point's loss and gradient."""
    mine, mine_calls = _trajectory(lambda x: LBFGSOptimizer(x, history=20, max_evaluations=30), f, x0, 40)
    ref, ref_calls = _trajectory(lambda x: torch.optim.LBFGS([x], max_iter=1, max_eval=30, history_size=20,
                                                             line_search_fn="strong_wolfe"), f, x0, 40)
    assert torch.allclose(mine, ref, rtol=0, atol=1e-9)
    assert mine_calls < 0.7 * ref_calls


def test_adam_follows_torchs_iterates():
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)
    mine, _ = _trajectory(lambda x: AdamOptimizer(x, lr=0.01), _rosenbrock, x0, 200)
    ref, _ = _trajectory(lambda x: torch.optim.Adam([x], lr=0.01), _rosenbrock, x0, 200)
    assert torch.allclose(mine, ref, rtol=0, atol=1e-12)


def test_lbfgs_resumes_from_its_state():
    """A run saved after 10 iterations and resumed in a new optimiser ends where an uninterrupted one does."""
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)
    whole, _ = _trajectory(lambda x: LBFGSOptimizer(x), _rosenbrock, x0, 20)
    x = x0.clone().requires_grad_(True)
    first = LBFGSOptimizer(x)

    def closure(opt):
        opt.zero_grad()
        value = _rosenbrock(x)
        value.backward()
        return value

    for _ in range(10):
        first.step(lambda: closure(first))
    second = LBFGSOptimizer(x)
    second.load_state_dict(first.state_dict())
    for _ in range(10):
        second.step(lambda: closure(second))
    assert torch.allclose(x.detach(), whole[-1], rtol=0, atol=1e-12)


def test_a_refinement_does_not_import_torch_dynamo():
    """L-BFGS refinement of a simulated PDF in a fresh interpreter: torch._dynamo (1–2 s to import, pulled in by
    any torch.optim optimiser) never loads."""
    code = """
import sys, torch
from ase.build import bulk
from scatterfit import Structure
from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import Stage, refine
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.parametrisation import Parametrisation
s = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True)).with_uiso(0.005)
r = torch.arange(1.5, 10.0, 0.02, dtype=torch.float64)
data = Dataset(r.numpy(), pdf(s, r, qmax=25.0).numpy(), None, "gr", "angstrom")
loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
param = Parametrisation(Structure.from_ase(bulk("Ni", "fcc", a=3.56, cubic=True)).with_uiso(0.005), free=["lattice"])
for optimizer in ("lbfgs", "adam"):
    refine(loss, param, [Stage(optimizer, steps=5)])
print("dynamo" if "torch._dynamo" in sys.modules else "clean")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"

"""The README's "Extending scatterfit": a new stage type, forward model and energy model are each one small class
and one registry line, and a config file can use them at once."""

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from scatterfit.cli import main
from scatterfit.energy.registry import register_potential
from scatterfit.optim.stage import StageBase, setting
from scatterfit.optim.stages import register_stage
from scatterfit.scattering.models import register_forward_model
from scatterfit.structure.neighbours import neighbours, pair_distances
from scatterfit.testing import check_energy_model, check_forward_model, random_cluster


# --- a stage type: plain gradient descent ------------------------------------------------------------------------
class DescentRun:
    def __init__(self, problem, stage, theta, resumed):
        self.problem, self.stage = problem, stage
        self.mask = problem.mask(theta, stage.groups(problem.parametrisation))
        self.x = theta.clone()

    def step(self):
        x = self.x.clone().requires_grad_(True)
        value, terms = self.problem.loss.evaluate(self.problem.parametrisation.state(x), weights=self.stage.weights)
        (grad,) = torch.autograd.grad(value, x)
        self.x = (x - self.stage.rate * grad * self.mask).detach()
        return float(value.detach()), terms

    @property
    def theta(self):
        return self.x.clone()

    def state_dict(self):
        return None


@register_stage
@dataclass
class Descent(StageBase):
    optimizer: ClassVar[str] = "descent"
    rate: float = setting(0.01, "step = rate × gradient", low=0.0, open_low=True)

    def start(self, problem, theta, resumed, rng):
        return DescentRun(problem, self, theta, resumed)


# --- a forward model: a sum of Gaussians at the pair distances ------------------------------------------------
class PairGaussians:
    def __init__(self, width: float = 0.1):
        self.width = width

    def __call__(self, state, r):
        s = state.structure
        d = pair_distances(s, neighbours(s, float(r.max()) + 5 * self.width))
        peaks = torch.exp(-0.5 * ((r[:, None] - d[None, :]) / self.width) ** 2).sum(1)
        scale = state.params.get("scale")
        return peaks * (1.0 if scale is None else scale)


register_forward_model("pair-gaussians", lambda data, **options: PairGaussians())


# --- an energy model: harmonic springs between near neighbours --------------------------------------------------
class Springs:
    name = "springs"

    def __init__(self, length: float = 2.5, cutoff: float = 3.2, k: float = 1.0):
        self.length, self.cutoff, self.k = length, cutoff, k

    def energy(self, structure):
        d = pair_distances(structure, neighbours(structure, self.cutoff))
        return 0.5 * self.k * ((d - self.length) ** 2).sum()


register_potential("springs", lambda **args: Springs(**args))

CONFIG = """
[structure]
file = "start.xyz"

[[datasets]]
name = "toy"
file = "toy.dat"
kind = "gr"

[[terms]]
kind = "data"
dataset = "toy"
model = "pair-gaussians"
metric = "mse"

[[terms]]
kind = "energy"
potential = "springs"
args = {{ length = 2.5 }}
weight = 0.001

[parameters]
free = ["expansion"]

[[strategy]]
optimizer = "descent"
steps = 300
rate = {rate}
"""


def test_the_toy_extensions_pass_the_validators():
    s = random_cluster(5, min_dist=2.3, seed=0)
    check_forward_model(PairGaussians(), s, torch.arange(1.5, 6.0, 0.05, dtype=torch.float64))
    check_energy_model(Springs(), s)


def test_a_config_uses_a_registered_stage_forward_model_and_potential(tmp_path, capsys):
    from ase import Atoms

    from scatterfit.structure.parametrisation import State

    triangle = np.array([[0.0, 0, 0], [2.5, 0, 0], [1.25, 2.165, 0]])
    truth = random_cluster(3, seed=0).with_(positions=torch.tensor(triangle), numbers=torch.tensor([14] * 3))
    r = torch.arange(1.5, 4.0, 0.02, dtype=torch.float64)
    np.savetxt(tmp_path / "toy.dat", np.column_stack([r.numpy(), PairGaussians()(State(truth, {}), r).numpy()]))
    Atoms("Si3", positions=triangle * 1.03).write(str(tmp_path / "start.xyz"))  # 3 % too large
    (tmp_path / "toy.toml").write_text(CONFIG.format(rate=0.01))
    assert main(["refine", str(tmp_path / "toy.toml"), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["terms"]["toy"]["rw"] < 2e-3
    assert abs(summary["parameters"]["expansion"] - 1 / 1.03) < 1e-3
    assert "springs" in summary["terms"]["energy"]["potential"]
    (tmp_path / "bad.toml").write_text(CONFIG.format(rate=-1.0))
    assert main(["refine", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "bad")]) == 2
    assert "[[strategy]][0].rate: must be > 0" in capsys.readouterr().err

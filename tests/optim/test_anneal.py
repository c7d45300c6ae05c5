"""Simulated annealing by Langevin dynamics (optim/anneal.py and the "anneal" stage of optim/refine.py)."""

import math

import pytest
import torch

from scatterfit import Structure
from scatterfit.energy.pair import LennardJones
from scatterfit.errors import ScatterfitError
from scatterfit.loss import EnergyTerm, Loss, TermValue
from scatterfit.optim import Stage, refine
from scatterfit.optim.anneal import BOLTZMANN_EV, LangevinIntegrator, kinetic_temperature, thermal_velocities
from scatterfit.structure.builders import random_molecule
from scatterfit.structure.parametrisation import Parametrisation

LJ13_GLOBAL_MINIMUM = -44.326801  # ε (Wales & Doye 1997)


class HarmonicWell:
    """U = ½ k Σ |r_i − r_i⁰|² in eV (k in eV/Å²), as a loss term (the loss is U itself: use energy_scale = 1)."""

    def __init__(self, reference: torch.Tensor, k: float):
        self.reference, self.k, self.name, self.weight = reference, k, "well", 1.0
        self.samples = []

    def evaluate(self, state, xmax=None) -> TermValue:
        u = 0.5 * self.k * ((state.structure.positions - self.reference) ** 2).sum()
        self.samples.append(float(u.detach()))
        return TermValue(u, {})


def test_langevin_samples_the_canonical_ensemble_of_a_harmonic_well():
    """Equipartition: ⟨U⟩ = ⟨KE⟩ = (3/2) N kT in a harmonic well. With 64 atoms (192 degrees of freedom) and
    ~60 correlation times averaged, the statistical error of either mean is about 1 %; 4 % is allowed."""
    n, temperature = 64, 300.0
    start = Structure(torch.rand(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 20,
                      torch.full((n,), 18))
    well = HarmonicWell(start.positions.clone(), k=2.0)
    param = Parametrisation(start, free=["positions"], bounds={"positions": 3.0})
    stage = Stage("anneal", steps=6000, timestep=2.0, friction=20.0, t_start=temperature, t_end=temperature,
                  energy_scale=1.0, local_steps=0)
    result = refine(Loss([well]), param, stage, seed=3)
    expected = 1.5 * n * BOLTZMANN_EV * temperature  # eV
    potential = sum(well.samples[1000:]) / len(well.samples[1000:])
    assert potential == pytest.approx(expected, rel=0.04)
    assert result.history[-1] > 0  # the stage ends on a thermal configuration, not a minimum


def test_integrator_kinetic_temperature_is_the_thermostat_temperature():
    masses = torch.full((500,), 39.948, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    integrator = LangevinIntegrator(lambda x: (0.0, torch.zeros_like(x)), masses, timestep=2.0, friction=50.0)
    x = torch.zeros(500, 3, dtype=torch.float64)
    v = thermal_velocities(masses, 50.0, g)
    f = torch.zeros_like(x)
    temps = []
    for _ in range(400):  # the thermostat drives 50 K to 400 K (1/friction = 20 fs)
        x, v, f, _u = integrator.step(x, v, f, 400.0, g)
        temps.append(kinetic_temperature(v, masses))
    mean = sum(temps[200:]) / 200
    assert mean == pytest.approx(400.0, rel=0.03)  # 1,500 degrees of freedom: ~1 % per-sample spread


def _lj13(seed: int):
    start = random_molecule("Ar13", min_dist=0.9, density=0.5, seed=seed)
    lj = LennardJones({"Ar-Ar": {"epsilon": 1.0, "sigma": 1.0}}, cutoff=6.0, r_on=5.5)  # ε = 1 eV, σ = 1 Å
    return Loss([EnergyTerm(lj)]), Parametrisation(start, free=["positions"], bounds={"positions": 6.0})


def test_melt_and_quench_of_lj13_reaches_the_icosahedron():
    """From a random start (seed 2, where L-BFGS alone stops above −41.3 ε; test_basin_resolution.py) a melt at
    3,500 K (kT = 0.30 ε, above LJ13's melting near 0.28 ε) cooled to 50 K over 3 ps, then L-BFGS, reaches the
    Mackay icosahedron. The energy scale defaults to atoms / weight, so the potential is the cluster's energy."""
    loss, param = _lj13(2)
    result = refine(loss, param, [Stage("anneal", steps=3000, timestep=1.0, friction=5.0, t_start=3500, t_end=50),
                                  Stage("lbfgs", steps=300, tol=1e-12)], seed=0)
    assert result.loss * 13 == pytest.approx(LJ13_GLOBAL_MINIMUM, abs=1e-3)


class Killed(Exception):
    pass


def _kill_at(step_to_die: int):
    def observer(stage, step, loss, terms):
        if step >= step_to_die:
            raise Killed()
    return observer


def test_anneal_stage_resumes_exactly_from_its_checkpoint(tmp_path):
    """A run killed at step 250 (last checkpoint at 200: positions, velocities, random generator) and resumed
    ends on the same structure as the uninterrupted run."""
    loss, param = _lj13(0)
    stage = Stage("anneal", steps=300, timestep=1.0, t_start=2000, t_end=100)
    whole = refine(loss, param, stage, seed=4)
    ckpt = tmp_path / "anneal.pt"
    with pytest.raises(Killed):
        refine(loss, param, stage, seed=4, checkpoint=ckpt, checkpoint_every=100,
               observers=[_kill_at(250)])
    assert torch.load(ckpt, weights_only=False)["step"] == 200
    resumed = refine(loss, param, stage, seed=4, checkpoint=ckpt, resume=True)
    assert torch.equal(resumed.theta, whole.theta)
    assert resumed.history == whole.history


def test_anneal_stage_errors_are_one_line():
    loss, param = _lj13(0)
    with pytest.raises(ScatterfitError, match="timestep"):
        Stage("anneal", timestep=0.0)
    with pytest.raises(ScatterfitError, match="needs 'positions'"):
        refine(loss, Parametrisation(param.structure, free=["biso"]), Stage("anneal", steps=2))
    well = HarmonicWell(param.structure.positions.clone(), 1.0)
    with pytest.raises(ScatterfitError, match="energy_scale"):
        refine(Loss([well]), param, Stage("anneal", steps=2))


def test_periodic_anneal_folds_displacements_and_checks_the_bounds():
    """In a periodic box the displacements are folded to the minimum image (atoms may diffuse across the
    cell); bounds smaller than half the cell are refused with the bound needed."""
    from scatterfit.testing import random_box

    box = random_box(32, 0.02, numbers=(18,), min_dist=3.0, seed=0)
    lj = LennardJones({"Ar-Ar": {"epsilon": 0.0104, "sigma": 3.4}}, cutoff=8.0, r_on=7.0)
    loss = Loss([EnergyTerm(lj)])
    half = 0.5 * float(box.cell[0, 0])
    with pytest.raises(ScatterfitError, match="bounds positions ≥"):
        refine(loss, Parametrisation(box, free=["positions"], bounds={"positions": half * 0.8}),
               Stage("anneal", steps=2))
    param = Parametrisation(box, free=["positions"], bounds={"positions": half * 1.1})
    result = refine(loss, param, Stage("anneal", steps=400, timestep=10.0, t_start=3000, t_end=3000),
                    seed=1)
    disp = param.unpack(result.theta)["positions"]
    assert float(disp.abs().max()) <= half + 1e-9
    assert math.isfinite(result.loss)



def test_anneal_stage_from_a_config_file(tmp_path):
    from scatterfit.config import load_config
    from scatterfit.config.builders import build_strategy

    text = """
[structure]
bulk = { name = "Ar", crystalstructure = "fcc", a = 5.26, cubic = true }
[[datasets]]
name = "d"
file = "d.gr"
[[terms]]
dataset = "d"
[parameters]
free = ["positions"]
[[strategy]]
optimizer = "anneal"
steps = 10
t_start = 500
t_end = 20
timestep = 2.0
friction = 5.0
local_steps = 0
max_move = 0.1
"""
    (tmp_path / "a.toml").write_text(text)
    (stage,) = build_strategy(load_config(tmp_path / "a.toml"))
    assert (stage.optimizer, stage.t_start, stage.t_end, stage.timestep, stage.friction, stage.local_steps,
            stage.max_move) == ("anneal", 500, 20, 2.0, 5.0, 0, 0.1)
    (tmp_path / "b.toml").write_text(text.replace("max_move = 0.1", "max_move = -1.0"))
    with pytest.raises(ScatterfitError, match="max_move"):
        build_strategy(load_config(tmp_path / "b.toml"))
    (tmp_path / "c.toml").write_text(text.replace("friction = 5.0", "frictoin = 5.0"))
    with pytest.raises(ScatterfitError, match="frictoin"):
        load_config(tmp_path / "c.toml")

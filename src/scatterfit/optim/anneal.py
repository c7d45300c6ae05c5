"""Simulated annealing by Langevin molecular dynamics on the loss: a melt-and-quench of the atom positions.

The potential is U(x) = energy_scale · L(x) in eV, where L is the stage's loss (data, energy and restraint terms
at the stage's weights). With an energy term of weight w in the stage, the default energy_scale = N / w makes
that term exactly the structure's potential energy in eV (minus a constant), so temperatures are physical
Kelvin for the interatomic potential, and the data and restraint terms act as extra potentials (as in hybrid
reverse Monte Carlo or EPSR's empirical potential). The temperature falls linearly from t_start to t_end K.

Integrator: BAOAB Langevin splitting (Leimkuhler & Matthews, Appl. Math. Res. Express 2013, 34), which samples
exp(−U/kT) with a small configurational error at the usual MD time steps. Units: positions Å, time fs, masses
amu, forces eV/Å, velocities Å/fs.

Positions here are the "positions" group's displacements (Å) from the starting structure. In a periodic cell
they are folded back to the minimum image of a lattice translation (the same structure), so atoms may diffuse
freely; a finite structure's displacements stay inside the group's bounds (velocities reflected there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.optim.stage import StageBase, setting

BOLTZMANN_EV = 8.617333262e-5  # eV/K
ACCELERATION = 9.648533212e-3  # (eV/Å)/amu in Å/fs²


def langevin_coefficients(timestep: float, friction: float) -> tuple[float, float]:
    """(c1, c2) of the O step, v ← c1·v + c2·sqrt(kT/m)·ξ, for a time step in fs and friction in 1/ps."""
    c1 = math.exp(-friction * 1e-3 * timestep)
    return c1, math.sqrt(max(1.0 - c1 * c1, 0.0))


def thermal_velocities(masses: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Maxwell–Boltzmann velocities [N, 3] (Å/fs) at ``temperature`` K for masses [N] (amu)."""
    sigma = torch.sqrt(BOLTZMANN_EV * temperature * ACCELERATION / masses)[:, None]  # [N, 1] Å/fs
    xi = torch.randn((masses.shape[0], 3), generator=generator, dtype=masses.dtype).to(masses.device)
    return sigma * xi


def kinetic_temperature(velocities: torch.Tensor, masses: torch.Tensor) -> float:
    """Instantaneous temperature (K) of velocities [N, 3] (Å/fs) with masses [N] (amu): 2 KE / (3 N k_B)."""
    ke = 0.5 * float((masses[:, None] * velocities**2).sum()) / ACCELERATION  # eV
    return 2.0 * ke / (3 * velocities.shape[0] * BOLTZMANN_EV)


class LangevinIntegrator:
    """BAOAB steps of x [N, 3] (Å) and v [N, 3] (Å/fs) under forces from ``force(x) -> (U, F)``.

    Args:
        force: callable x [N, 3] → (U in eV as float, F [N, 3] eV/Å).
        masses: [N] amu.
        timestep: fs.
        friction: 1/ps.
        fold: callable x → (x, flips) applied after every drift (minimum image or reflection at bounds); flips
            multiplies the velocities (±1 per component) or is None.
        max_speed: Å/fs; faster atoms are slowed to it, direction kept (a guard against a start far from any
            minimum, whose released energy would otherwise blow the system apart; None: no cap).
    """

    def __init__(self, force, masses: torch.Tensor, timestep: float, friction: float, fold=None,
                 max_speed: float | None = None):
        self.force, self.masses, self.dt, self.fold = force, masses, float(timestep), fold
        self.max_speed = max_speed
        self.c1, self.c2 = langevin_coefficients(timestep, friction)
        self.inv_m = (ACCELERATION / masses)[:, None]  # [N, 1] (Å/fs²)/(eV/Å)

    def step(self, x, v, f, temperature: float, generator: torch.Generator):
        """One BAOAB step at ``temperature`` K; returns (x, v, f, U) with f the force at the new x."""
        half = 0.5 * self.dt
        v = v + half * f * self.inv_m                                   # B
        x, v = self._drift(x, v, half)                                  # A
        sigma = torch.sqrt(BOLTZMANN_EV * max(temperature, 0.0) * self.inv_m)  # [N, 1] Å/fs
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        v = self.c1 * v + self.c2 * sigma * xi                          # O
        x, v = self._drift(x, v, half)                                  # A
        u, f = self.force(x)
        v = v + half * f * self.inv_m                                   # B
        return x, v, f, u

    def _drift(self, x, v, dt):
        if self.max_speed is not None:
            speed = v.norm(dim=1, keepdim=True)
            v = v * torch.clamp(self.max_speed / speed.clamp_min(1e-300), max=1.0)
        x = x + dt * v
        if self.fold is not None:
            x, flip = self.fold(x)
            if flip is not None:
                v = v * flip
        return x, v


def energy_scale(loss, n_atoms: int, weights: dict | None, explicit: float | None = None) -> float:
    """eV per unit of loss: ``explicit``, or atoms / the weight (after the stage's ``weights``) of the first
    active energy term, so that term is the structure's energy in eV."""
    from scatterfit.loss import EnergyTerm

    if explicit is not None:
        return float(explicit)
    weights = weights or {}
    energy = [t for t in loss.terms if isinstance(t, EnergyTerm) and weights.get(t.name, t.weight) != 0]
    if not energy:
        raise ScatterfitError("an anneal stage without an energy term needs energy_scale (eV per unit of loss)")
    return n_atoms / float(weights.get(energy[0].name, energy[0].weight))


def displacement_fold(parametrisation, theta: torch.Tensor):
    """The fold of the "positions" displacements [N, 3] Å after a Langevin drift: the minimum image of a
    lattice translation in a periodic cell (the bounds must reach half the cell, else a one-line error says
    how far), reflection at 95 % of the bounds for a finite structure."""
    from scatterfit.structure.parametrisation import EDGE

    lo, hi = parametrisation.bounds["positions"]
    limit = min(-float(lo), float(hi)) * (1 - 2 * EDGE)
    structure = parametrisation.state(theta.detach()).structure
    if structure.cell is not None and all(structure.pbc):
        cell = structure.cell.detach()
        inverse = torch.linalg.inv(cell)
        reach = 0.5 * float(cell.abs().sum(0).max())  # the largest component of a minimum-image vector
        if reach > limit:
            raise ScatterfitError(f"an anneal stage in this cell needs bounds positions ≥ "
                                  f"{reach / (1 - 2 * EDGE) + 0.05:.1f} Å (half the cell), got {hi}")

        def fold(x):
            frac = x @ inverse
            return (frac - torch.round(frac)) @ cell, None
    else:
        wall = 0.95 * limit

        def fold(x):
            over, under = x > wall, x < -wall
            x = torch.where(over, 2 * wall - x, torch.where(under, -2 * wall - x, x))
            flip = 1.0 - 2.0 * (over | under).to(x.dtype)
            return x.clamp(-wall, wall), flip
    return fold


class AnnealRun:
    """A running melt-and-quench: each ``step()`` is one BAOAB step at the scheduled temperature; ``theta`` holds
    the current positions. Its state (positions, velocities, generator, step) resumes exactly.

    Args:
        problem: the runner's Problem.
        stage: an Anneal stage.
        theta: [n_params] start.
        resumed: the state_dict of a checkpoint, or None.
        rng: the run's generator (seeds this stage's own generator on a fresh start).
    """

    def __init__(self, problem, stage, theta: torch.Tensor, resumed: dict | None, rng: torch.Generator):
        from ase.data import atomic_masses

        from scatterfit.optim.local import relax

        groups = stage.groups(problem.parametrisation)
        if "positions" not in groups:
            raise ScatterfitError("annealing needs 'positions' among the free groups")
        param = problem.parametrisation
        self.problem, self.stage = problem, stage
        self.scale = energy_scale(problem.loss, len(param.structure), stage.weights, stage.energy_scale)
        fold = displacement_fold(param, theta)
        if resumed is None and stage.local_steps > 0:  # a random start must not turn its excess energy into heat
            theta = relax(problem, theta, ["positions"], stage.local_steps, problem.history, stage.xmax,
                          stage.weights)
        self.theta0 = theta
        masses = torch.as_tensor(atomic_masses[param.structure.numbers.cpu().numpy()], dtype=theta.dtype,
                                 device=theta.device)
        self.last: dict = {}
        self.integrator = LangevinIntegrator(self._force, masses, stage.timestep, stage.friction, fold,
                                             max_speed=stage.max_move / stage.timestep)
        self.generator = torch.Generator()
        x = param.unpack(theta.detach())["positions"].clone()
        if resumed is None:
            self.k = 0
            self.generator.manual_seed(int(torch.randint(0, 2**62, (), generator=rng)))
            self.v = thermal_velocities(masses, stage.t_start, self.generator)
        else:
            self.k = int(resumed.get("step", 0))
            x, self.v = resumed["positions"].to(x), resumed["velocities"].to(x)  # exact (θ's logit map rounds)
            self.generator.set_state(resumed["generator"])
        self.x = fold(x)[0]
        self.f = self._force(self.x)[1]

    def _force(self, x):
        x = x.detach().requires_grad_(True)
        param, stage = self.problem.parametrisation, self.stage
        value, terms = self.problem.loss.evaluate(param.state(self.theta0, {"positions": x}), xmax=stage.xmax,
                                                  weights=stage.weights)
        if not torch.isfinite(value):
            raise ScatterfitError("the loss became NaN or infinite during annealing; lower the timestep or t_start")
        (grad,) = torch.autograd.grad(value, x)
        if not bool(torch.isfinite(grad).all()):
            raise ScatterfitError("the forces became infinite during annealing (atoms on top of each other?); "
                                  "lower the timestep or t_start, or add a min_distance restraint")
        self.last["value"], self.last["terms"] = float(value.detach()), terms
        return float(value.detach()) * self.scale, -self.scale * grad

    def step(self) -> tuple[float, dict]:
        stage = self.stage
        span = max(stage.steps - 1, 1)
        temperature = stage.t_start + (stage.t_end - stage.t_start) * self.k / span
        self.x, self.v, self.f, _ = self.integrator.step(self.x, self.v, self.f, temperature, self.generator)
        self.k += 1
        return self.last["value"], self.last["terms"]

    @property
    def theta(self) -> torch.Tensor:
        return self.problem.parametrisation.with_values(self.theta0, "positions", self.x)

    def state_dict(self) -> dict:
        return {"positions": self.x.detach().clone(), "velocities": self.v.detach().clone(),
                "generator": self.generator.get_state(), "step": self.k}

    @staticmethod
    def observe_every(every: int) -> int:
        return max(every, 50)

    @staticmethod
    def checkpoint_every(every: int) -> int:
        return max(every, 100)


@dataclass
class Anneal(StageBase):
    """A melt-and-quench of the positions by Langevin molecular dynamics on the loss (optim/anneal.py):
    ``steps`` MD steps of ``timestep`` fs with the temperature falling linearly from t_start to t_end K; it
    first relaxes the start by ``local_steps`` L-BFGS steps; the stage ends on the quenched structure."""

    optimizer: ClassVar[str] = "anneal"

    t_start: float = setting(3000.0, "start temperature, K", low=0.0)
    t_end: float = setting(300.0, "end temperature, K", low=0.0)
    timestep: float = setting(1.0, "MD time step, fs", low=0.0, open_low=True)
    friction: float = setting(10.0, "Langevin friction, 1/ps", low=0.0)
    energy_scale: float | None = setting(None, "eV per unit of loss (default: atoms / energy weight)", low=0.0,
                                         open_low=True)
    local_steps: int = setting(40, "L-BFGS steps relaxing the start before the melt (0: none)", low=0)
    max_move: float = setting(0.2, "largest move of an atom in one step, Å", low=0.0, open_low=True)

    def start(self, problem, theta, resumed, rng):
        return AnnealRun(problem, self, theta, resumed, rng)

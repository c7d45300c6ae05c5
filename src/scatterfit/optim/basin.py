"""Basin hopping on atom positions (or on the orbits of a symmetric structure): a global search for structures
whose loss landscape has many local minima (a cluster or a network built from atoms at random positions).

Each hop perturbs the current positions, relaxes them with a short local minimisation and accepts the result
by the Metropolis rule on the relative loss change, exp(−(L_new − L_cur) / (T · L_cur)), so the temperature T
is dimensionless whatever the loss's units. Two moves, chosen at random:
    jitter     every atom displaced by a Gaussian of ``step`` Å per coordinate;
    relocate   one to three atoms moved to random points inside the structure (a sphere about its centroid
               for a finite structure, the cell for a periodic one): what lets a misplaced atom escape.
Reference: D. J. Wales & J. P. K. Doye, J. Phys. Chem. A 101, 5111 (1997).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from scatterfit.optim.stage import StageBase, setting


def perturb_positions(parametrisation, theta: torch.Tensor, step: float, generator: torch.Generator,
                      group: str = "positions") -> torch.Tensor:
    """θ with its "positions" (or "orbits") group perturbed by one random move (jitter or relocate).

    Args:
        parametrisation: the Parametrisation (``group`` must be free).
        theta: [n_params] current vector.
        step: jitter standard deviation, Å.
        generator: the torch random generator driving the moves.
        group: "positions" (atoms move) or "orbits" (orbit representatives of a symmetric structure move, so
            every move keeps the point group; relocation then draws points in a sphere about the origin, the
            group's centre).
    Returns:
        [n_params] perturbed vector; displacements stay inside the group's bounds.
    """
    disp = parametrisation.unpack(theta.detach())[group].clone()  # [N or n_orbits, 3] Å
    if group == "orbits":
        base = parametrisation.orbit_representatives(theta.detach()) - disp  # [n_orbits, 3] Å
    else:
        base = parametrisation.state(theta.detach()).structure.positions.detach() - disp  # [N, 3] Å
    n = disp.shape[0]
    dev = disp.device  # the random numbers come from the CPU generator, whatever the device
    if torch.rand((), generator=generator) < 0.5 or n < 2:
        disp = disp + step * torch.randn(disp.shape, generator=generator, dtype=disp.dtype).to(dev)
    else:
        k = int(torch.randint(1, min(3, n) + 1, (), generator=generator))
        atoms = torch.randperm(n, generator=generator)[:k]
        cell = parametrisation.structure.cell
        if cell is not None and any(parametrisation.structure.pbc):
            frac = torch.rand((k, 3), generator=generator, dtype=disp.dtype).to(dev)
            target = frac @ cell.detach().to(disp.dtype)
        else:
            pos = base + disp
            centre = torch.zeros_like(pos[0]) if group == "orbits" else pos.mean(0)
            radius = float((pos - centre).norm(dim=1).max())
            u = torch.randn((k, 3), generator=generator, dtype=disp.dtype).to(dev)
            u = u / u.norm(dim=1, keepdim=True)
            r = radius * torch.rand((k, 1), generator=generator, dtype=disp.dtype).to(dev) ** (1 / 3)
            target = centre + u * r
        atoms = atoms.to(dev)
        disp[atoms] = target - base[atoms]
    return parametrisation.with_values(theta, group, disp)  # clamps just inside the bounds


def accept(new: float, current: float, temperature: float, generator: torch.Generator) -> bool:
    """Metropolis rule on the relative loss change (always accepts a lower loss)."""
    if not math.isfinite(new):
        return False
    if new <= current:
        return True
    if temperature <= 0:
        return False
    x = (new - current) / (temperature * max(abs(current), 1e-300))
    return bool(torch.rand((), generator=generator) < math.exp(-x))


class BasinRun:
    """A running basin-hopping stage: each ``step()`` is one hop (move, relaxation, Metropolis test); ``theta`` is
    the best structure met. Its state (current and best θ, their losses, the hops' generator) makes a resumed
    stage continue exactly where a killed one stopped.

    Args:
        problem: the runner's Problem.
        stage: a Basin stage.
        theta: [n_params] start.
        resumed: the state_dict of a checkpoint, or None.
        rng: the run's generator (seeds this stage's own generator on a fresh start).
    """

    def __init__(self, problem, stage, theta: torch.Tensor, resumed: dict | None, rng: torch.Generator):
        from scatterfit.errors import ScatterfitError
        from scatterfit.optim.local import relax

        self.problem, self.stage, self.history = problem, stage, []
        self.groups = stage.groups(problem.parametrisation)
        if "positions" not in self.groups and "orbits" not in self.groups:
            raise ScatterfitError("basin hopping needs 'positions' or 'orbits' among the free groups")
        self.moved = "orbits" if "orbits" in self.groups else "positions"  # symmetric structures hop whole orbits
        self.generator = torch.Generator()
        if resumed is None:
            self.generator.manual_seed(int(torch.randint(0, 2**62, (), generator=rng)))
            theta = relax(problem, theta, self.groups, stage.local_steps, problem.history, stage.xmax, stage.weights)
            self.current, self.current_value = theta, problem.stage_loss(theta, stage)[0]
            self.best, self.best_value = self.current, self.current_value
        else:
            self.generator.set_state(resumed["generator"])
            self.current, self.current_value = resumed["current"], resumed["current_value"]
            self.best, self.best_value = theta, resumed["best_value"]

    def step(self) -> tuple[float, dict]:
        from scatterfit.optim.local import relax

        stage, problem = self.stage, self.problem
        trial = perturb_positions(problem.parametrisation, self.current, stage.step_size, self.generator, self.moved)
        trial = relax(problem, trial, self.groups, stage.local_steps, problem.history, stage.xmax, stage.weights)
        value, terms = problem.stage_loss(trial, stage)
        if accept(value, self.current_value, stage.temperature, self.generator):
            self.current, self.current_value = trial, value
            if value < self.best_value:
                self.best, self.best_value = trial, value
        return self.best_value, terms

    @property
    def theta(self) -> torch.Tensor:
        return self.best.clone()

    def state_dict(self) -> dict:
        return {"current": self.current.clone(), "current_value": self.current_value, "best_value": self.best_value,
                "generator": self.generator.get_state()}

    @staticmethod
    def checkpoint_every(every: int) -> int:
        return 1  # a hop is expensive: keep every one


@dataclass
class Basin(StageBase):
    """Basin hopping on the positions (or on the orbits of a symmetric structure when "orbits" is free; see
    optim/basin.py): ``steps`` hops, each a random move relaxed by ``local_steps`` L-BFGS steps and accepted by the
    Metropolis rule at the relative ``temperature``; the stage ends on the best structure met."""

    optimizer: ClassVar[str] = "basin"

    local_steps: int = setting(40, "L-BFGS steps relaxing each hop", low=1)
    step_size: float = setting(0.3, "jitter of a hop, Å", low=0.0, open_low=True)
    temperature: float = setting(0.02, "Metropolis temperature relative to the loss", low=0.0)

    def start(self, problem, theta, resumed, rng):
        return BasinRun(problem, self, theta, resumed, rng)

"""Gradient refinement: stages of Adam or L-BFGS over chosen parameter groups, convergence criteria, observers,
checkpoint/resume, seeds.

A stage frees a subset of the parametrisation's groups (the others keep their current values). The loop calls
observers every ``every`` steps (the command line attaches a progress bar, report/progress.py; the library
prints nothing). A checkpoint (θ, optimiser state, stage, step, history, the run's random generator) is written
every ``checkpoint_every`` steps, so a killed run resumed from it ends at the same result as an uninterrupted one.
The random generator is the run's own, seeded by ``seed``: no global random state is touched.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.loss import Loss
from scatterfit.structure.parametrisation import Parametrisation, State


@dataclass
class Stage:
    """One refinement stage.

    Attributes:
        optimizer: "lbfgs" or "adam".
        free: groups refined in this stage (None: all free groups of the parametrisation).
        steps: maximum optimiser steps.
        lr: learning rate (Adam) or initial step (L-BFGS).
        tol: stop when the relative loss change stays below tol for ``patience`` steps.
        patience: see tol.
        xmax: fit only data points with x ≤ xmax in this stage (an r-range ramp: short range first, where a
            wrong lattice still overlaps the peaks).
        weights: {term name: weight} for this stage, overriding the terms' weights (0 switches a term off:
            e.g. build a physical network from energy and restraints first, then fit the data).
        local_steps, step_size, temperature: for optimizer "basin" (basin hopping on the positions, or on the
            orbits of a symmetric structure when "orbits" is free, see optim/basin.py): ``steps`` hops, each a
            random move (jitter of step_size Å or relocation of 1–3 atoms or orbits) relaxed by local_steps L-BFGS steps and accepted by the Metropolis rule at the relative
            temperature; the stage ends on the best structure met.
        t_start, t_end, timestep, friction, energy_scale: for optimizer "anneal" (a melt-and-quench by Langevin
            molecular dynamics of the positions, see optim/anneal.py): ``steps`` MD steps of ``timestep`` fs
            with the temperature falling linearly from t_start to t_end K, friction in 1/ps, potential
            energy_scale × loss in eV (default: atoms / the stage weight of the energy term, which makes that
            term the physical energy); it first relaxes the start by local_steps L-BFGS steps (0: none), so a
            random start does not turn its excess energy into heat; no atom moves more than max_move Å in one
            step (the cap acts only on such violent starts); the stage ends on the final (quenched) structure.
    """

    optimizer: str = "lbfgs"
    free: list | None = None
    steps: int = 100
    lr: float = 1.0
    tol: float = 1e-9
    patience: int = 5
    xmax: float | None = None
    weights: dict | None = None
    local_steps: int = 40
    step_size: float = 0.3
    temperature: float = 0.02
    t_start: float = 3000.0
    t_end: float = 300.0
    timestep: float = 1.0
    friction: float = 10.0
    energy_scale: float | None = None
    max_move: float = 0.2

    def __post_init__(self):
        if self.optimizer not in ("lbfgs", "adam", "basin", "anneal"):
            raise ScatterfitError(f"unknown optimizer '{self.optimizer}' (use lbfgs, adam, basin or anneal)")
        if self.optimizer == "anneal" and not (self.t_start >= 0 and self.t_end >= 0 and self.timestep > 0
                                               and self.friction >= 0
                                               and (self.energy_scale is None or self.energy_scale > 0)):
            raise ScatterfitError("an anneal stage needs t_start, t_end ≥ 0 K, timestep > 0 fs, friction ≥ 0 "
                                  "and a positive energy_scale")
        if self.optimizer == "anneal" and (self.local_steps < 0 or not self.max_move > 0):
            raise ScatterfitError("an anneal stage needs local_steps ≥ 0 and max_move > 0 Å")
        if self.optimizer == "basin" and (self.local_steps < 1 or not self.step_size > 0 or self.temperature < 0):
            raise ScatterfitError("a basin stage needs local_steps ≥ 1, step_size > 0 and temperature ≥ 0")
        if self.steps < 1:
            raise ScatterfitError(f"a stage needs at least one step, got {self.steps}")
        if not self.lr > 0:
            raise ScatterfitError(f"lr must be positive, got {self.lr}")


def pdf_range_ramp() -> list[Stage]:
    """The default PDF strategy: an r-range ramp (5 Å → 12 Å → all), L-BFGS. A wrong lattice still overlaps the
    short-range peaks, so those are fitted first (lattice and ADPs only), then everything on longer ranges."""
    return [Stage("lbfgs", free=["lattice", "biso"], steps=60, xmax=5.0),
            Stage("lbfgs", steps=60, xmax=12.0),
            Stage("lbfgs", steps=200)]


@dataclass
class Result:
    """Outcome of a refinement: final θ, state, loss history and the terms' final values."""

    theta: torch.Tensor
    state: State
    parametrisation: Parametrisation
    loss: float
    terms: dict
    history: list = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def structure(self):
        return self.state.structure

    def parameters(self) -> dict:
        return self.parametrisation.report(self.theta)


def _save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def refine(loss: Loss, parametrisation: Parametrisation, strategy: list[Stage] | Stage, *, seed: int = 0,
           checkpoint: str | Path | None = None, checkpoint_every: int = 10, resume: bool = False,
           observers: list | None = None, every: int = 1, fingerprint: str | None = None) -> Result:
    """Minimise ``loss`` over the free parameters by the stages of ``strategy``.

    Args:
        loss: the Loss.
        parametrisation: θ ↔ State mapping.
        strategy: a Stage or list of Stages run in order.
        seed: seeds the run's random generator (basin hops, anneal velocities).
        checkpoint: file to write the run state to (and to resume from with resume=True).
        checkpoint_every: steps between checkpoints.
        observers: callables (stage, step, loss, terms) called every ``every`` steps.
        fingerprint: a digest of the problem (config and data); stored in the checkpoint, and a resume from a
            checkpoint with another fingerprint is refused.
    """
    stages = [strategy] if isinstance(strategy, Stage) else list(strategy)
    if not stages:
        raise ScatterfitError("the strategy has no stages")
    rng = torch.Generator().manual_seed(int(seed))
    theta = parametrisation.initial_vector().clone()
    history: list[float] = []
    start_stage, start_step, opt_state = 0, 0, None
    ckpt = Path(checkpoint) if checkpoint else None
    if resume:
        if ckpt is None or not ckpt.is_file():
            raise ScatterfitError(f"cannot resume: checkpoint {ckpt} not found")
        try:
            saved = torch.load(ckpt, weights_only=False)
        except Exception as exc:
            raise ScatterfitError(f"{ckpt}: not a readable scatterfit checkpoint ({type(exc).__name__})") from None
        if not isinstance(saved, dict) or "theta" not in saved:
            raise ScatterfitError(f"{ckpt}: not a scatterfit refinement checkpoint")
        if fingerprint is not None and saved.get("fingerprint") != fingerprint:
            raise ScatterfitError(f"{ckpt}: the checkpoint was written by a different config or data; "
                                  "run without --resume (or with another --out) to start afresh")
        if saved["theta"].shape != theta.shape:
            raise ScatterfitError(f"{ckpt}: checkpoint does not match this refinement's parameters")
        theta, history = saved["theta"], saved["history"]
        start_stage, start_step, opt_state = saved["stage"], saved["step"], saved["optimizer"]
        if saved.get("rng") is not None:
            rng.set_state(saved["rng"])
    observers = list(observers or [])
    t0 = time.perf_counter()
    offsets, k = {}, 0
    for g in parametrisation.free:
        n = int(math.prod(parametrisation.shapes[g]))
        offsets[g] = (k, k + n)
        k += n

    for si in range(start_stage, len(stages)):
        stage = stages[si]
        groups = parametrisation.free if stage.free is None else stage.free
        missing = [g for g in groups if g not in offsets]
        if missing:
            raise ScatterfitError(f"stage {si + 1} frees {missing}, which the parametrisation does not have free")
        mask = _mask(offsets, theta, groups)
        if stage.optimizer == "basin":
            if "positions" not in groups and "orbits" not in groups:
                raise ScatterfitError(f"stage {si + 1}: basin hopping needs 'positions' or 'orbits' among the free "
                                      "groups")
            resumed = (start_step, opt_state) if si == start_stage and opt_state is not None else None
            theta = _basin_stage(loss, parametrisation, theta, mask, stage, si, resumed, history, observers, every,
                                 ckpt, rng, fingerprint)
        elif stage.optimizer == "anneal":
            if "positions" not in groups:
                raise ScatterfitError(f"stage {si + 1}: annealing needs 'positions' among the free groups")
            resumed = (start_step, opt_state) if si == start_stage and opt_state is not None else None
            theta = _anneal_stage(loss, parametrisation, theta, _mask(offsets, theta, ["positions"]), stage, si,
                                  resumed, history, observers, max(every, 50), ckpt, max(checkpoint_every, 100), rng,
                                  fingerprint)
        else:
            theta = _minimise(loss, parametrisation, theta, mask, stage, si, history, observers, every,
                              ckpt, checkpoint_every, opt_state if si == start_stage else None,
                              start_step if si == start_stage else 0, rng, fingerprint)
        opt_state = None
        if ckpt:
            _save_checkpoint(ckpt, {"theta": theta, "history": list(history), "stage": si + 1, "step": 0,
                                    "optimizer": None, "rng": rng.get_state(), "fingerprint": fingerprint})
    with torch.no_grad():
        state = parametrisation.state(theta)
        value, terms = loss.evaluate(state, report_all=True)
    return Result(theta, state, parametrisation, float(value), terms, history, time.perf_counter() - t0)


def _minimise(loss, parametrisation, theta, mask, stage, si, history, observers, every, ckpt=None,
              checkpoint_every=10, opt_state=None, step0=0, rng=None, fingerprint=None):
    """Local minimisation (L-BFGS, or Adam for an "adam" stage) of the masked entries of θ, at most
    ``stage.steps`` steps; returns the new θ."""
    steps = stage.steps
    param = theta.clone().requires_grad_(True)
    if stage.optimizer == "adam":
        opt = torch.optim.Adam([param], lr=stage.lr)
    else:
        opt = torch.optim.LBFGS([param], lr=stage.lr, max_iter=1, max_eval=30, history_size=20,
                                line_search_fn="strong_wolfe")
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    last = {}

    def closure():
        opt.zero_grad()
        value, terms = loss.evaluate(parametrisation.state(param), xmax=stage.xmax, weights=stage.weights)
        value = value + 0.0 * param.sum()  # a stage whose terms are all switched off still has a gradient
        if not torch.isfinite(value):
            raise ScatterfitError("the loss became NaN or infinite; check the starting model and bounds")
        value.backward()
        param.grad.mul_(mask)
        last["value"], last["terms"] = float(value.detach()), terms
        return value

    stall = 0
    for step in range(step0, steps):
        prev = history[-1] if history else None
        opt.step(closure)
        history.append(last["value"])
        if observers and (step % every == 0 or step == steps - 1):
            for ob in observers:
                ob(si, step, last["value"], last["terms"])
        if ckpt and (step + 1) % checkpoint_every == 0:
            _save_checkpoint(ckpt, {"theta": param.detach().clone(), "history": list(history), "stage": si,
                                    "step": step + 1, "optimizer": opt.state_dict(),
                                    "rng": None if rng is None else rng.get_state(), "fingerprint": fingerprint})
        if prev is not None and abs(prev - last["value"]) <= stage.tol * max(abs(prev), 1e-300):
            stall += 1
            if stall >= stage.patience:
                break
        else:
            stall = 0
    return param.detach().clone()


def _stage_loss(loss, parametrisation, theta, stage) -> tuple[float, dict]:
    with torch.no_grad():
        value, terms = loss.evaluate(parametrisation.state(theta), xmax=stage.xmax, weights=stage.weights)
    return float(value), terms


def _basin_stage(loss, parametrisation, theta, mask, stage, si, resumed, history, observers, every, ckpt, rng,
                 fingerprint):
    """Basin hopping (optim/basin.py): ``stage.steps`` hops from θ; returns the best θ met. Checkpoints after
    every hop (current and best θ, their losses, the hop count and the hops' generator), so a resumed stage
    continues exactly where the killed one stopped."""
    from scatterfit.optim.basin import accept, perturb_positions

    local = Stage("lbfgs", steps=stage.local_steps, tol=1e-6, patience=2, xmax=stage.xmax, weights=stage.weights)
    groups = parametrisation.free if stage.free is None else stage.free
    moved = "orbits" if "orbits" in groups else "positions"  # symmetric structures hop whole orbits
    generator = torch.Generator()
    if resumed is None:
        hop0 = 0
        generator.manual_seed(int(torch.randint(0, 2**62, (), generator=rng)))
        theta = _minimise(loss, parametrisation, theta, mask, local, si, history, [], every)
        current, current_value = theta, _stage_loss(loss, parametrisation, theta, stage)[0]
        best, best_value = current, current_value
    else:
        hop0, saved = resumed
        generator.set_state(saved["generator"])
        current, current_value = saved["current"], saved["current_value"]
        best, best_value = theta, saved["best_value"]
    for hop in range(hop0, stage.steps):
        trial = perturb_positions(parametrisation, current, stage.step_size, generator, moved)
        trial = _minimise(loss, parametrisation, trial, mask, local, si, history, [], every)
        value, terms = _stage_loss(loss, parametrisation, trial, stage)
        if accept(value, current_value, stage.temperature, generator):
            current, current_value = trial, value
            if value < best_value:
                best, best_value = trial, value
        if observers and (hop % every == 0 or hop == stage.steps - 1):
            for ob in observers:
                ob(si, hop, best_value, terms)
        if ckpt:
            _save_checkpoint(ckpt, {"theta": best.clone(), "history": list(history), "stage": si, "step": hop + 1,
                                    "rng": rng.get_state(), "fingerprint": fingerprint,
                                    "optimizer": {"current": current.clone(), "current_value": current_value,
                                                  "best_value": best_value, "generator": generator.get_state()}})
    return best


def _mask(offsets: dict, theta: torch.Tensor, groups) -> torch.Tensor:
    """1 on the entries of θ that belong to ``groups``, 0 elsewhere."""
    mask = torch.zeros_like(theta)
    for g in groups:
        a, b = offsets[g]
        mask[a:b] = 1.0
    return mask


def _anneal_stage(loss, parametrisation, theta, mask, stage, si, resumed, history, observers, every, ckpt,
                  checkpoint_every, rng, fingerprint):
    """Langevin melt-and-quench of the positions (optim/anneal.py), after local_steps L-BFGS steps on the
    positions (``mask``) unless resumed; returns θ at the end of the quench. Checkpoints (positions,
    velocities, generator state) every ``checkpoint_every`` steps."""
    from ase.data import atomic_masses

    from scatterfit.optim.anneal import LangevinIntegrator, displacement_fold, energy_scale, thermal_velocities

    scale = energy_scale(loss, len(parametrisation.structure), stage.weights, stage.energy_scale)
    fold = displacement_fold(parametrisation, theta)
    if resumed is None and stage.local_steps > 0:
        relax = Stage("lbfgs", steps=stage.local_steps, tol=1e-6, patience=2, xmax=stage.xmax,
                      weights=stage.weights)
        theta = _minimise(loss, parametrisation, theta, mask, relax, si, history, [], every)
    structure = parametrisation.structure
    masses = torch.as_tensor(atomic_masses[structure.numbers.cpu().numpy()], dtype=theta.dtype, device=theta.device)
    last = {}

    def force(x):
        x = x.detach().requires_grad_(True)
        value, terms = loss.evaluate(parametrisation.state(theta, {"positions": x}), xmax=stage.xmax,
                                     weights=stage.weights)
        if not torch.isfinite(value):
            raise ScatterfitError("the loss became NaN or infinite during annealing; lower the timestep or t_start")
        (grad,) = torch.autograd.grad(value, x)
        if not bool(torch.isfinite(grad).all()):
            raise ScatterfitError("the forces became infinite during annealing (atoms on top of each other?); "
                                  "lower the timestep or t_start, or add a min_distance restraint")
        last["value"], last["terms"] = float(value.detach()), terms
        return float(value.detach()) * scale, -scale * grad

    integrator = LangevinIntegrator(force, masses, stage.timestep, stage.friction, fold,
                                    max_speed=stage.max_move / stage.timestep)
    generator = torch.Generator()
    x = parametrisation.unpack(theta.detach())["positions"].clone()
    if resumed is None:
        step0 = 0
        generator.manual_seed(int(torch.randint(0, 2**62, (), generator=rng)))
        v = thermal_velocities(masses, stage.t_start, generator)
    else:
        step0, saved = resumed
        x, v = saved["positions"].to(x), saved["velocities"].to(x)  # exact (θ's logit map rounds)
        generator.set_state(saved["generator"])
    x = fold(x)[0]
    f = force(x)[1]
    span = max(stage.steps - 1, 1)
    for step in range(step0, stage.steps):
        temperature = stage.t_start + (stage.t_end - stage.t_start) * step / span
        x, v, f, _ = integrator.step(x, v, f, temperature, generator)
        history.append(last["value"])
        if observers and (step % every == 0 or step == stage.steps - 1):
            for ob in observers:
                ob(si, step, last["value"], last["terms"])
        if ckpt and (step + 1) % checkpoint_every == 0:
            _save_checkpoint(ckpt, {"theta": parametrisation.with_values(theta, "positions", x),
                                    "history": list(history),
                                    "stage": si, "step": step + 1, "rng": rng.get_state(), "fingerprint": fingerprint,
                                    "optimizer": {"positions": x.detach().clone(), "velocities": v.detach().clone(),
                                                  "generator": generator.get_state()}})
    return parametrisation.with_values(theta, "positions", x)

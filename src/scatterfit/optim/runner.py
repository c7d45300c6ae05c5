"""The one step loop of every optimiser: stages run in order, each stage's run stepped by :func:`drive`, with
observers attached at an interval (as ASE's ``Dynamics.attach``), stall and target checks, and one checkpoint
writer. A checkpoint (θ, the stage's run state, stage, step, history, the run's random generator and the problem's
fingerprint) lets a killed run resume to the same result as an uninterrupted one.

The library prints nothing: the command line attaches a progress observer (report/progress.py). The random
generator is the run's own, seeded by ``seed``; no global random state is touched.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.loss import Loss
from scatterfit.optim.checkpoint import load_checkpoint, save_checkpoint
from scatterfit.optim.stage import StageBase
from scatterfit.structure.parametrisation import Parametrisation, State


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


@dataclass
class Problem:
    """What every stage's run works on: the loss, the parametrisation and the slices of θ per free group."""

    loss: Loss
    parametrisation: Parametrisation
    history: list = field(default_factory=list)  # the loss after every step of every stage (and inner relaxation)

    def __post_init__(self):
        self.offsets, k = {}, 0
        for g in self.parametrisation.free:
            n = int(math.prod(self.parametrisation.shapes[g]))
            self.offsets[g] = (k, k + n)
            k += n

    def mask(self, theta: torch.Tensor, groups) -> torch.Tensor:
        """1 on the entries of θ that belong to ``groups``, 0 elsewhere."""
        mask = torch.zeros_like(theta)
        for g in groups:
            a, b = self.offsets[g]
            mask[a:b] = 1.0
        return mask

    def stage_loss(self, theta: torch.Tensor, stage) -> tuple[float, dict]:
        """The loss of θ as ``stage`` sees it (its xmax and weights), without gradients."""
        with torch.no_grad():
            value, terms = self.loss.evaluate(self.parametrisation.state(theta), xmax=stage.xmax,
                                              weights=stage.weights)
        return float(value), terms


class Checkpointer:
    """Writes the run state atomically (temporary file, then rename) every ``every`` steps of a stage."""

    def __init__(self, path: Path | None, every: int, fingerprint: str | None, rng: torch.Generator):
        self.path, self.every, self.fingerprint, self.rng = path, int(every), fingerprint, rng

    def save(self, theta: torch.Tensor, history: list, stage: int, step: int, run_state) -> None:
        if self.path is None:
            return
        save_checkpoint(self.path, "refine", self.fingerprint,
                        {"theta": theta, "history": list(history), "stage": stage, "step": step,
                         "optimizer": run_state, "rng": self.rng.get_state()})

    def load(self, theta_shape) -> dict:
        if self.path is None:
            raise ScatterfitError("cannot resume: no checkpoint file given")
        saved = load_checkpoint(self.path, "refine", self.fingerprint)
        if tuple(saved["theta"].shape) != tuple(theta_shape):
            raise ScatterfitError(f"{self.path}: checkpoint does not match this refinement's parameters")
        if saved.get("rng") is not None:
            self.rng.set_state(saved["rng"])
        return saved


def drive(run, stage: StageBase, history: list, *, step0: int = 0, stage_index: int = 0, observers=(),
          every: int = 1, checkpointer: Checkpointer | None = None) -> torch.Tensor:
    """Step ``run`` up to ``stage.steps`` times; returns its θ.

    Each step's loss is appended to ``history``; observers (stage_index, step, loss, terms) are called every
    ``run.observe_every(every)`` steps and at the last; the checkpointer writes every
    ``run.checkpoint_every(checkpointer.every)`` steps. The stage stops early at its target loss, when the run
    says it has converged, or (local optimisers) when the relative loss change stays below ``stage.tol`` for
    ``stage.patience`` steps.
    """
    observe = run.observe_every(every) if hasattr(run, "observe_every") else every
    save_every = None
    if checkpointer is not None and checkpointer.path is not None:
        save_every = checkpointer.every
        if hasattr(run, "checkpoint_every"):
            save_every = run.checkpoint_every(save_every)
    stall = 0
    for step in range(step0, stage.steps):
        previous = history[-1] if history else None
        value, terms = run.step()
        history.append(value)
        if observers and (step % observe == 0 or step == stage.steps - 1):
            for observer in observers:
                observer(stage_index, step, value, terms)
        if save_every and (step + 1) % save_every == 0:
            checkpointer.save(run.theta, history, stage_index, step + 1, run.state_dict())
        if stage.target is not None and value <= stage.target:
            break
        if getattr(run, "converged", False):  # the optimiser knows it is done (Levenberg–Marquardt)
            break
        if stage.stops_on_stall and previous is not None \
                and abs(previous - value) <= stage.tol * max(abs(previous), 1e-300):
            stall += 1
            if stall >= stage.patience:
                break
        else:
            stall = 0
    return run.theta


def evaluate(loss: Loss, parametrisation: Parametrisation) -> Result:
    """The loss and its terms at the parametrisation's start, nothing refined (PDFgui's "calculation"): the Result
    a refinement with no steps would return. Build ``parametrisation`` with no free group to evaluate the values
    as given (a free group's start is moved off its bounds, see to_unbounded)."""
    t0 = time.perf_counter()
    theta = parametrisation.initial_vector().clone()
    loss = loss.to(parametrisation.structure.device)
    with torch.no_grad():
        state = parametrisation.state(theta)
        value, terms = loss.evaluate(state, report_all=True)
    return Result(theta, state, parametrisation, float(value), terms, [float(value)], time.perf_counter() - t0)


def refine(loss: Loss, parametrisation: Parametrisation, strategy: list[StageBase] | StageBase, *, seed: int = 0,
           checkpoint: str | Path | None = None, checkpoint_every: int = 10, resume: bool = False,
           observers: list | None = None, every: int = 1, fingerprint: str | None = None) -> Result:
    """Minimise ``loss`` over the free parameters by the stages of ``strategy``.

    Args:
        loss: the Loss.
        parametrisation: θ ↔ State mapping.
        strategy: a stage or list of stages (optim/stages.py) run in order.
        seed: seeds the run's random generator (basin hops, anneal velocities).
        checkpoint: file to write the run state to (and to resume from with resume=True).
        checkpoint_every: steps between checkpoints.
        observers: callables (stage, step, loss, terms) called every ``every`` steps.
        fingerprint: a digest of the problem (config and data); stored in the checkpoint, and a resume from a
            checkpoint with another fingerprint is refused.
    """
    stages = [strategy] if isinstance(strategy, StageBase) else list(strategy)
    if not stages:
        raise ScatterfitError("the strategy has no stages")
    rng = torch.Generator().manual_seed(int(seed))
    theta = parametrisation.initial_vector().clone()
    history: list[float] = []
    checkpointer = Checkpointer(Path(checkpoint) if checkpoint else None, checkpoint_every, fingerprint, rng)
    start_stage, start_step, run_state = 0, 0, None
    if resume:
        saved = checkpointer.load(theta.shape)
        theta, history = saved["theta"], saved["history"]
        start_stage, start_step, run_state = saved["stage"], saved["step"], saved["optimizer"]
    loss = loss.to(parametrisation.structure.device)  # data moved once, not on every step
    problem = Problem(loss, parametrisation, history)
    observers = list(observers or [])
    t0 = time.perf_counter()
    for si in range(start_stage, len(stages)):
        stage = stages[si]
        resumed = run_state if si == start_stage else None
        if stage.release and resumed is None:
            theta = stage.released(problem, theta)
        try:
            run = stage.start(problem, theta, resumed, rng)
        except ScatterfitError as exc:
            raise ScatterfitError(f"stage {si + 1}: {exc}") from None
        theta = drive(run, stage, history, step0=start_step if si == start_stage else 0, stage_index=si,
                      observers=observers, every=every, checkpointer=checkpointer)
        checkpointer.save(theta, history, si + 1, 0, None)
    with torch.no_grad():
        state = parametrisation.state(theta)
        value, terms = loss.evaluate(state, report_all=True)
    return Result(theta, state, parametrisation, float(value), terms, history, time.perf_counter() - t0)

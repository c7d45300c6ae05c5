"""Local gradient optimisation of the masked entries of θ: L-BFGS (strong-Wolfe line search, one iteration per
step) or Adam (optim/quasi_newton.py). One ``step()`` is one optimiser iteration; the runner (optim/runner.py)
owns the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.optim.quasi_newton import AdamOptimizer, LBFGSOptimizer
from scatterfit.optim.stage import StageBase, setting


class LocalRun:
    """A running L-BFGS or Adam stage.

    Args:
        problem: the runner's Problem (loss, parametrisation, masks).
        stage: an LBFGS or Adam stage.
        theta: [n_params] start.
        resumed: the optimiser's state_dict from a checkpoint, or None.
    """

    def __init__(self, problem, stage, theta: torch.Tensor, resumed: dict | None = None):
        self.problem, self.stage = problem, stage
        self.mask = problem.mask(theta, stage.groups(problem.parametrisation))
        self.param = theta.clone().requires_grad_(True)
        if stage.optimizer == "adam":
            self.opt = AdamOptimizer(self.param, lr=stage.lr)
        else:
            self.opt = LBFGSOptimizer(self.param, lr=stage.lr, history=20, max_evaluations=30)
        if resumed is not None:
            self.opt.load_state_dict(resumed)
        self.last: dict = {}

    def _closure(self):
        self.opt.zero_grad()
        loss, param = self.problem.loss, self.param
        value, terms = loss.evaluate(self.problem.parametrisation.state(param), xmax=self.stage.xmax,
                                     weights=self.stage.weights)
        value = value + 0.0 * param.sum()  # a stage whose terms are all switched off still has a gradient
        if not torch.isfinite(value):
            raise ScatterfitError("the loss became NaN or infinite; check the starting model and bounds")
        value.backward()
        param.grad.mul_(self.mask)
        self.last["value"], self.last["terms"] = float(value.detach()), terms
        return value

    def step(self) -> tuple[float, dict]:
        """One optimiser iteration; returns the loss it evaluated last and its terms (an iteration that needed no
        evaluation, such as a converged L-BFGS resumed from its checkpoint, evaluates the current point)."""
        self.last.clear()
        self.opt.step(self._closure)
        if "value" not in self.last:
            self._closure()
        return self.last["value"], self.last["terms"]

    @property
    def theta(self) -> torch.Tensor:
        return self.param.detach().clone()

    def state_dict(self) -> dict:
        return self.opt.state_dict()


def relax(problem, theta: torch.Tensor, groups: list, steps: int, history: list, xmax=None,
          weights=None) -> torch.Tensor:
    """A short L-BFGS relaxation of ``groups`` (tol 1e-6, patience 2), as basin hops and the anneal start use; its
    losses are appended to ``history``."""
    from scatterfit.optim.runner import drive

    stage = LBFGS(free=groups, steps=steps, tol=1e-6, patience=2, xmax=xmax, weights=weights)
    return drive(LocalRun(problem, stage, theta), stage, history)


@dataclass
class LocalStage(StageBase):
    """Settings of the local (gradient) optimisers."""

    stops_on_stall: ClassVar[bool] = True

    lr: float = setting(1.0, "learning rate (adam) or initial step (lbfgs)", low=0.0, open_low=True)
    tol: float = setting(1e-9, "stop when the relative loss change stays below tol for patience steps", low=0.0)
    patience: int = setting(5, "see tol", low=1)

    def start(self, problem, theta, resumed, rng):
        return LocalRun(problem, self, theta, resumed)


@dataclass
class LBFGS(LocalStage):
    """L-BFGS with a strong-Wolfe line search (one iteration per step)."""

    optimizer: ClassVar[str] = "lbfgs"


@dataclass
class Adam(LocalStage):
    """Adam (for noisy or very many-parameter problems)."""

    optimizer: ClassVar[str] = "adam"

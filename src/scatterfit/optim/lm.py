"""Levenberg–Marquardt for least-squares refinements with few parameters (a crystal's cell, ADPs, instrument
parameters), as PDFfit2 and Rietveld programs refine: one step solves (JᵀJ + λ diag JᵀJ) δ = −Jᵀr, accepted when
the misfit falls (λ shrinks) and retried with a larger λ when it does not.

The residuals are those of the stage's data terms, r_k = √(c_k w) (y − s·y_model − background) with the
analytic scale s inside (variable projection), as each term's evaluation gives them: for an Rw term
c_k = weight_k / (Σ w y² · Rw_k) at the step's start, for chi2 and mse terms c_k = 2 weight_k / N_k, so that
Jᵀr is the gradient of the loss Σ weight_k metric_k and the stationary points are the loss's, with several
terms too. The Jacobian is built column by column from forward differences of the forward model: P forward
evaluations per step, one more for the trial, and no backward pass (the forward models' own kernels need no
forward-mode rules). A column under SMALL_COLUMN of the largest is taken again by central differences: at a
symmetric point (the angles of a cubic cell refined as triclinic, from a P1 file) the misfit changes only at second
order, a forward difference then reads h·∂²/2 as a slope and the step sends the parameter off by 1/h; parameters
whose central column is nil (BLIND) are held in that step, as the data do not move them. Energy and restraint
terms are not least squares: a stage where one of them is switched on is refused.

The stage ends on its own when a step no longer lowers the loss by a relative ``tol`` at small damping (or no
damping finds a lower loss), instead of waiting out a patience.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.optim.local import LocalStage
from scatterfit.optim.stage import setting

MAX_RETRIES = 12  # damping increases per step before it gives up
FD_STEP = 1e-6  # forward-difference step, relative to max(1, |θ_j|)
SMALL_COLUMN = 1e-4  # a Jacobian column this small (relative to the largest) is checked by central differences
BLIND = 1e-9  # a central column this small: a parameter the data do not move at first order, held in the step


@dataclass
class LevenbergMarquardt(LocalStage):
    """Levenberg–Marquardt on the data terms' residuals (one accepted step, or a failed search, per step)."""

    optimizer: ClassVar[str] = "lm"

    damping: float = setting(1e-3, "starting Marquardt damping λ (relative to diag JᵀJ)", low=0.0, open_low=True)

    def start(self, problem, theta, resumed, rng):
        return LMRun(problem, self, theta, resumed)


def least_squares_terms(loss, weights: dict | None) -> list:
    """The data terms a stage fits, or a ScatterfitError naming an active term that is not one."""
    from scatterfit.loss import DataTerm

    weights = weights or {}
    active = [t for t in loss.terms if weights.get(t.name, t.weight) != 0]
    other = [t.name for t in active if not isinstance(t, DataTerm)]
    if other:
        raise ScatterfitError(f"the lm stage fits data terms only; {other} is switched on (use lbfgs for this "
                              "stage, or give it weight 0 here)")
    if not active:
        raise ScatterfitError("the lm stage has no data term switched on")
    return active


class LMRun:
    """A running Levenberg–Marquardt stage (see the module docstring).

    Args:
        problem: the runner's Problem; stage: a LevenbergMarquardt stage; theta: [n_params] start;
        resumed: {"damping": λ} from a checkpoint, or None.
    """

    def __init__(self, problem, stage, theta: torch.Tensor, resumed: dict | None = None):
        self.problem, self.stage = problem, stage
        self.terms = least_squares_terms(problem.loss, stage.weights)
        mask = problem.mask(theta, stage.groups(problem.parametrisation))
        self.free = torch.nonzero(mask, as_tuple=True)[0]
        self._theta = theta.detach().clone()
        self.damping = float((resumed or {}).get("damping", stage.damping))
        self.converged = False
        self.value, self.last_terms = problem.stage_loss(self._theta, stage)

    def _factors(self, terms: dict) -> dict:
        """{term: c_k} at the current point (see the module docstring)."""
        weights = self.stage.weights or {}
        out = {}
        for term in self.terms:
            weight = weights.get(term.name, term.weight)
            residual = terms[term.name].curve_tensors["residual"]
            if term.metric == "rw":
                rw = max(terms[term.name].breakdown["rw"], 1e-12)
                norm = float((residual * residual).sum()) / rw**2  # Σ w y²
                out[term.name] = weight / (norm * rw) if norm > 0 else weight
            else:
                out[term.name] = 2 * weight / residual.numel()
        return out

    def _residuals(self, terms: dict, factors: dict) -> torch.Tensor:
        """r [N]: the data terms' residuals √w (y − ŷ), each times √c_k."""
        return torch.cat([terms[t.name].curve_tensors["residual"] * factors[t.name] ** 0.5 for t in self.terms])

    def _evaluate(self, theta: torch.Tensor) -> tuple[float, dict]:
        return self.problem.stage_loss(theta, self.stage)

    def _jacobian(self, r0: torch.Tensor, factors: dict) -> torch.Tensor:
        """J [N, free] of the residuals: forward differences, and central ones for columns under SMALL_COLUMN."""
        jac = torch.empty((r0.numel(), self.free.numel()), dtype=r0.dtype, device=r0.device)
        steps = []
        for col, j in enumerate(self.free.tolist()):
            h = FD_STEP * max(1.0, abs(float(self._theta[j])))
            moved = self._theta.clone()
            moved[j] += h
            jac[:, col] = (self._residuals(self._evaluate(moved)[1], factors) - r0) / h
            steps.append(h)
        norms = jac.norm(dim=0)
        for col in torch.nonzero(norms <= SMALL_COLUMN * float(norms.max()), as_tuple=True)[0].tolist():
            j, h = int(self.free[col]), steps[col]
            moved = self._theta.clone()
            moved[j] -= h
            plus = r0 + h * jac[:, col]
            jac[:, col] = (plus - self._residuals(self._evaluate(moved)[1], factors)) / (2 * h)
        return jac

    def step(self) -> tuple[float, dict]:
        """One Levenberg–Marquardt step; returns the loss at the (possibly unchanged) θ and its terms."""
        if self.converged:
            return self.value, self.last_terms
        factors = self._factors(self.last_terms)
        r0 = self._residuals(self.last_terms, factors)
        jac = self._jacobian(r0, factors)
        norms = jac.norm(dim=0)
        moving = norms > BLIND * float(norms.max())
        if not bool(moving.any()):
            self.converged = True  # the data move none of the parameters here
            return self.value, self.last_terms
        jac = jac[:, moving]
        a, g = jac.T @ jac, jac.T @ r0
        diagonal = torch.diagonal(a).clamp(min=1e-12 * float(torch.diagonal(a).max().clamp(min=1e-300)))
        s0 = float(r0 @ r0)
        for _ in range(MAX_RETRIES):
            delta = torch.linalg.solve(a + self.damping * torch.diag(diagonal), -g)
            predicted = -float(2 * delta @ g + delta @ a @ delta)
            trial = self._theta.clone()
            trial[self.free[moving]] += delta
            value, terms = self._evaluate(trial)
            r1 = self._residuals(terms, factors)
            s1 = float(r1 @ r1)
            if torch.isfinite(r1).all() and s1 < s0:
                ratio = (s0 - s1) / max(predicted, 1e-300)
                damping_used = self.damping
                self.damping = max(self.damping / 3, 1e-12) if ratio > 0.25 else self.damping * 2
                change = (self.value - value) / max(abs(self.value), 1e-300)
                self._theta, self.value, self.last_terms = trial, value, terms
                if change < self.stage.tol and damping_used < 1.0:
                    self.converged = True
                return value, terms
            self.damping *= 4
        self.converged = True  # no damping lowers the misfit: a minimum to the precision of the Jacobian
        return self.value, self.last_terms

    @property
    def theta(self) -> torch.Tensor:
        return self._theta.clone()

    def state_dict(self) -> dict:
        return {"damping": self.damping}

"""L-BFGS and Adam on one flat parameter tensor, written here rather than taken from torch.optim: constructing any
torch.optim optimiser imports torch._dynamo (about 1–2 s a process, a large part of a short refinement or of a
job a lab calls many times).

L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., algorithms 7.4 and 3.5–3.6): the two-loop recursion
over the last ``history`` (s, y) pairs with the initial Hessian γI, γ = sᵀy / yᵀy (pairs with sᵀy ≤ 1e-10 are not
kept), and a strong-Wolfe line search (c1 = 1e-4, c2 = 0.9) that brackets by cubic extrapolation and zooms by
safeguarded cubic interpolation. The first step is min(1, 1/‖g‖₁) × lr, later ones lr. One ``step()`` is one
iteration; the loss and gradient at the accepted point are kept for the next one, so an iteration costs its line
search's evaluations only.

Both take a ``closure`` that evaluates the loss at the tensor's current value, fills its ``.grad`` (masked as the
caller wishes) and returns the loss.
"""

from __future__ import annotations

import torch

C1, C2 = 1e-4, 0.9  # sufficient decrease and curvature (strong Wolfe)
MAX_LINE_SEARCH = 25  # iterations of one line search
TOLERANCE_CHANGE = 1e-9  # a step or a directional derivative smaller than this ends the iteration
TOLERANCE_GRAD = 1e-7  # a gradient whose largest entry is below this: converged
CURVATURE_FLOOR = 1e-10  # sᵀy at or below this: the pair is not kept


def _cubic_minimum(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                   bounds: tuple[float, float] | None = None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, within ``bounds`` (default:
    the interval of x1 and x2); its middle when the cubic has no minimum."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    square = d1 * d1 - g1 * g2
    if square < 0:
        return (lo + hi) / 2
    d2 = square**0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def strong_wolfe(evaluate, t: float, direction: torch.Tensor, f0: float, g0: torch.Tensor, slope0: float,
                 max_evaluations: int) -> tuple[float, torch.Tensor, float, int]:
    """A step length t along ``direction`` meeting the strong Wolfe conditions (or the best point found).

    Args:
        evaluate: t -> (loss, gradient [n]) at x0 + t·direction.
        t: the trial step; f0, g0 [n], slope0 = g0·direction: at t = 0.
        max_evaluations: the most calls of ``evaluate``.
    Returns:
        (loss, gradient [n], t, evaluations) at the accepted step.
    """
    scale = float(direction.abs().max())
    f, g = evaluate(t)
    slope = float(g @ direction)
    evaluations = 1
    t_prev, f_prev, g_prev, slope_prev = 0.0, f0, g0, slope0
    bracket = None
    done = False
    limit = min(MAX_LINE_SEARCH, max_evaluations)
    while evaluations < limit:
        if f > f0 + C1 * t * slope0 or (evaluations > 1 and f >= f_prev):
            bracket = [[t_prev, f_prev, g_prev, slope_prev], [t, f, g, slope]]
            break
        if abs(slope) <= -C2 * slope0:
            bracket, done = [[t, f, g, slope]], True
            break
        if slope >= 0:
            bracket = [[t_prev, f_prev, g_prev, slope_prev], [t, f, g, slope]]
            break
        # still descending: extrapolate, between a little beyond t and ten times it
        t_next = _cubic_minimum(t_prev, f_prev, slope_prev, t, f, slope, (t + 0.01 * (t - t_prev), 10 * t))
        t_prev, f_prev, g_prev, slope_prev = t, f, g, slope
        t = t_next
        f, g = evaluate(t)
        slope = float(g @ direction)
        evaluations += 1
    if bracket is None:  # out of evaluations while still descending
        bracket = [[0.0, f0, g0, slope0], [t, f, g, slope]]
    stalled = False
    low, high = (0, 1) if len(bracket) == 1 or bracket[0][1] <= bracket[1][1] else (1, 0)
    while not done and evaluations < limit and len(bracket) == 2:
        (ta, fa, _, sa), (tb, fb, _, sb) = bracket
        if abs(tb - ta) * scale < TOLERANCE_CHANGE:
            break
        t = _cubic_minimum(ta, fa, sa, tb, fb, sb)
        top, bottom = max(ta, tb), min(ta, tb)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:  # too near an end: keep a tenth of the interval away
            if stalled or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f, g = evaluate(t)
        slope = float(g @ direction)
        evaluations += 1
        if f > f0 + C1 * t * slope0 or f >= bracket[low][1]:
            bracket[high] = [t, f, g, slope]
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(slope) <= -C2 * slope0:
                done = True
            elif slope * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = [t, f, g, slope]
    t, f, g, _ = bracket[low]
    return f, g, t, evaluations


class LBFGSOptimizer:
    """L-BFGS on ``param`` (a flat [n] tensor with requires_grad), one iteration per :meth:`step` (see the module
    docstring).

    Args:
        param: [n] the parameters, updated in place.
        lr: the step scale.
        history: (s, y) pairs kept.
        max_evaluations: closure calls of one iteration's line search.
    """

    def __init__(self, param: torch.Tensor, lr: float = 1.0, history: int = 20, max_evaluations: int = 30):
        self.param, self.lr, self.history, self.max_evaluations = param, float(lr), int(history), int(max_evaluations)
        self.iterations = 0
        self.steps: list[torch.Tensor] = []  # s_k = x_{k+1} − x_k
        self.changes: list[torch.Tensor] = []  # y_k = g_{k+1} − g_k
        self.direction: torch.Tensor | None = None
        self.t = 0.0
        self.gamma = 1.0
        self.previous_grad: torch.Tensor | None = None
        self.here: tuple | None = None  # (x, loss, gradient) at the accepted point

    def zero_grad(self) -> None:
        self.param.grad = None

    def _evaluate(self, closure) -> tuple[float, torch.Tensor]:
        with torch.enable_grad():
            loss = float(closure().detach())
        return loss, self.param.grad.detach().clone()

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """−H g by the two-loop recursion."""
        q = -g
        alphas = []
        for s, y in zip(reversed(self.steps), reversed(self.changes)):
            alpha = float(s @ q) / float(y @ s)
            alphas.append(alpha)
            q = q - alpha * y
        r = q * self.gamma
        for (s, y), alpha in zip(zip(self.steps, self.changes), reversed(alphas)):
            beta = float(y @ r) / float(y @ s)
            r = r + s * (alpha - beta)
        return r

    def step(self, closure) -> float:
        """One iteration; returns the loss at the point it started from."""
        x = self.param.detach().clone()
        if self.here is not None and torch.equal(self.here[0], x):
            loss, g = self.here[1], self.here[2]
        else:
            loss, g = self._evaluate(closure)
        if float(g.abs().max()) <= TOLERANCE_GRAD:
            return loss
        self.iterations += 1
        if self.iterations == 1 or self.previous_grad is None:
            direction = -g
            self.steps, self.changes, self.gamma = [], [], 1.0
        else:
            y = g - self.previous_grad
            s = self.direction * self.t
            curvature = float(y @ s)
            if curvature > CURVATURE_FLOOR:
                if len(self.steps) == self.history:
                    self.steps.pop(0)
                    self.changes.pop(0)
                self.steps.append(s)
                self.changes.append(y)
                self.gamma = curvature / float(y @ y)
            direction = self._direction(g)
        self.previous_grad = g
        self.direction = direction
        t = min(1.0, 1.0 / float(g.abs().sum())) * self.lr if self.iterations == 1 else self.lr
        slope = float(g @ direction)
        if slope > -TOLERANCE_CHANGE:
            self.t = 0.0
            return loss

        def evaluate(step: float):
            with torch.no_grad():
                self.param.copy_(x + step * direction)
            return self._evaluate(closure)

        f, g_new, t, _ = strong_wolfe(evaluate, t, direction, loss, g, slope, self.max_evaluations)
        self.t = t
        with torch.no_grad():
            self.param.copy_(x + t * direction)
        self.here = (self.param.detach().clone(), f, g_new)
        return loss

    def state_dict(self) -> dict:
        return {"iterations": self.iterations, "steps": list(self.steps), "changes": list(self.changes),
                "direction": self.direction, "t": self.t, "gamma": self.gamma, "previous_grad": self.previous_grad,
                "here": self.here}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class AdamOptimizer:
    """Adam (Kingma & Ba 2015) on ``param`` [n]: β1 0.9, β2 0.999, ε 1e-8, step size ``lr``."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, param: torch.Tensor, lr: float = 1e-3):
        self.param, self.lr = param, float(lr)
        self.iterations = 0
        self.m = torch.zeros_like(param.detach())
        self.v = torch.zeros_like(param.detach())

    def zero_grad(self) -> None:
        self.param.grad = None

    def step(self, closure) -> float:
        with torch.enable_grad():
            loss = float(closure().detach())
        g = self.param.grad.detach()
        b1, b2 = self.BETAS
        self.iterations += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = self.m / (1 - b1**self.iterations)
        v_hat = self.v / (1 - b2**self.iterations)
        with torch.no_grad():
            self.param.sub_(self.lr * m_hat / (v_hat.sqrt() + self.EPS))
        return loss

    def state_dict(self) -> dict:
        return {"iterations": self.iterations, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

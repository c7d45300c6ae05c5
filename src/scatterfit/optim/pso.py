"""Particle swarm optimisation over a SearchSpace, with an ask/tell interface and a serialisable state.

Velocity update (Clerc–Kennedy constriction, global-best topology):

    v ← w v + c1 r1 (p_best − x) + c2 r2 (g_best − x),   x ← x + v

with w = 0.7298, c1 = c2 = 1.49618, |v| ≤ ``max_velocity`` × range per coordinate and absorbing bounds (a
particle reaching a bound stops there). Discrete coordinates are decoded by rounding / arg-max (see space.py);
with probability ``mutation`` per particle and generation one discrete coordinate (integer or choice) is redrawn at
random, which keeps the swarm exploring categories and counts after it has contracted.

Two engines share this interface: ``ParticleSwarm`` (ours) and ``NevergradSwarm`` (nevergrad's ConfPSO).
``benchmarks/pso_compare.py`` measures both on the same problems.
"""

from __future__ import annotations

import numpy as np

from scatterfit.errors import ScatterfitError, require
from scatterfit.optim.space import SearchSpace


class ParticleSwarm:
    """Args:
        space: the variables.
        size: number of particles.
        inertia, cognitive, social: w, c1, c2.
        max_velocity: velocity clamp as a fraction of each coordinate's range.
        mutation: probability per particle and generation of redrawing one coordinate.
        seed: seeds the generator (the run is reproducible).
        The first generation is a Latin-hypercube sample: every option of a choice and the whole range of
        every number are covered as evenly as the swarm size allows.
        initial: optional candidates (dicts) placed as the first particles.
    """

    name = "scatterfit-pso"

    def __init__(self, space: SearchSpace, size: int = 20, inertia: float = 0.7298, cognitive: float = 1.49618,
                 social: float = 1.49618, max_velocity: float = 0.5, mutation: float = 0.1, seed: int = 0,
                 initial: list[dict] | None = None):
        if size < 2:
            raise ScatterfitError(f"a swarm needs at least 2 particles, got {size}")
        self.space, self.size = space, int(size)
        self.w, self.c1, self.c2 = float(inertia), float(cognitive), float(social)
        self.vmax = float(max_velocity) * (space.high - space.low)
        self.mutation = float(mutation)
        self.discrete = space.discrete_coordinates()
        self.rng = np.random.default_rng(seed)
        self.x = space.stratified_sample(self.rng, self.size)
        for k, cand in enumerate((initial or [])[: self.size]):
            self.x[k] = space.encode(cand, self.rng)
        self.v = self.rng.uniform(-1, 1, self.x.shape) * self.vmax * 0.5
        self.p_best = self.x.copy()
        self.p_loss = np.full(self.size, np.inf)
        self.g_best = self.x[0].copy()
        self.g_loss = np.inf
        self.generation = 0
        self._asked = False

    def ask(self) -> list[dict]:
        """The candidates of the current generation, one per particle."""
        if self._asked:
            raise ScatterfitError("ask() called twice without tell()")
        self._asked = True
        return [self.space.decode(x) for x in self.x]

    def tell(self, losses) -> None:
        """Losses of the candidates from the last ask(), in order; then moves the swarm."""
        losses = np.asarray(losses, dtype=float)
        if not self._asked or losses.shape != (self.size,):
            raise ScatterfitError(f"tell() needs {self.size} losses for the last ask()")
        self._asked = False
        losses = np.where(np.isfinite(losses), losses, np.inf)
        better = losses < self.p_loss
        self.p_best[better], self.p_loss[better] = self.x[better], losses[better]
        k = int(np.argmin(self.p_loss))
        if self.p_loss[k] < self.g_loss:
            self.g_best, self.g_loss = self.p_best[k].copy(), float(self.p_loss[k])
        r1, r2 = self.rng.random(self.x.shape), self.rng.random(self.x.shape)
        self.v = self.w * self.v + self.c1 * r1 * (self.p_best - self.x) + self.c2 * r2 * (self.g_best - self.x)
        self.v = np.clip(self.v, -self.vmax, self.vmax)
        self.x = self.x + self.v
        hit = (self.x < self.space.low) | (self.x > self.space.high)
        self.x = np.clip(self.x, self.space.low, self.space.high)
        self.v[hit] = 0.0
        if self.discrete.size:
            for i in np.nonzero(self.rng.random(self.size) < self.mutation)[0]:
                d = self.discrete[self.rng.integers(self.discrete.size)]
                self.x[i, d] = self.rng.uniform(self.space.low[d], self.space.high[d])
        self.generation += 1

    @property
    def best(self) -> tuple[dict, float]:
        return self.space.decode(self.g_best), self.g_loss

    def state_dict(self) -> dict:
        return {"x": self.x, "v": self.v, "p_best": self.p_best, "p_loss": self.p_loss, "g_best": self.g_best,
                "g_loss": self.g_loss, "generation": self.generation, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        for k in ("x", "v", "p_best", "p_loss", "g_best"):
            setattr(self, k, np.asarray(state[k], dtype=float).copy())
        self.g_loss, self.generation = float(state["g_loss"]), int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        self._asked = False


class NevergradSwarm:
    """nevergrad's ConfPSO behind the same ask/tell interface (variables mapped to Scalar / integer Scalar /
    Choice). Its state is not serialisable here: checkpointed searches use ParticleSwarm."""

    name = "nevergrad-pso"

    def __init__(self, space: SearchSpace, size: int = 20, seed: int = 0, **_unused):
        from scatterfit.optim.space import Integer, Real

        ng = require("nevergrad", "the nevergrad swarm engine")

        params = {}
        for v in space.variables:
            if isinstance(v, Real):
                params[v.name] = ng.p.Scalar(lower=float(v.low), upper=float(v.high))
            elif isinstance(v, Integer):
                params[v.name] = ng.p.Scalar(lower=int(v.low), upper=int(v.high)).set_integer_casting()
            else:
                params[v.name] = ng.p.Choice(list(v.options))
        parametrization = ng.p.Dict(**params)
        parametrization.random_state = np.random.RandomState(seed)
        self.space, self.size = space, int(size)
        self.optimizer = ng.optimizers.ConfPSO(popsize=self.size)(parametrization=parametrization, budget=None,
                                                                   num_workers=self.size)
        self._pending = []
        self.generation = 0
        self._best = (None, np.inf)

    def ask(self) -> list[dict]:
        self._pending = [self.optimizer.ask() for _ in range(self.size)]
        return [dict(p.value) for p in self._pending]

    def tell(self, losses) -> None:
        for p, loss in zip(self._pending, losses):
            loss = float(loss) if np.isfinite(loss) else 1e300
            self.optimizer.tell(p, loss)
            if loss < self._best[1]:
                self._best = (dict(p.value), loss)
        self._pending = []
        self.generation += 1

    @property
    def best(self) -> tuple[dict, float]:
        return self._best


def make_swarm(space: SearchSpace, engine: str = "scatterfit", **kwargs):
    """A swarm by engine name: "scatterfit" (ParticleSwarm, default) or "nevergrad"."""
    if engine == "scatterfit":
        return ParticleSwarm(space, **kwargs)
    if engine == "nevergrad":
        return NevergradSwarm(space, **kwargs)
    raise ScatterfitError(f"unknown swarm engine '{engine}' (use scatterfit or nevergrad)")


def minimize(objective, space: SearchSpace, *, budget: int = 1000, target: float | None = None, stall: int = 50,
             engine: str = "scatterfit", size: int = 20, seed: int = 0, evaluate_batch=None, cache: bool = True,
             **swarm_kwargs) -> dict:
    """Minimise ``objective(candidate) -> float`` with a swarm.

    Args:
        budget: maximum number of objective evaluations (cached repeats of a discrete candidate are free).
        target: stop when the best loss is ≤ target.
        stall: stop after this many generations without improvement.
        evaluate_batch: optional callable(list of candidates) -> list of losses (a whole generation at once,
            e.g. through an executor or a batched forward model); default calls ``objective`` one by one.
        cache: reuse the loss of a candidate seen before (same discrete values, same reals).

    Returns:
        {"best": candidate, "loss": float, "evaluations": int, "generations": int, "history": [best per gen]}.
    """
    from scatterfit.optim.swarm import run_swarm

    swarm = make_swarm(space, engine, size=size, seed=seed, **swarm_kwargs)

    def evaluate(items):
        candidates = [c for c, _ in items]
        values = evaluate_batch(candidates) if evaluate_batch else [objective(c) for c in candidates]
        return [{"loss": float(v)} for v in values]

    state = run_swarm(swarm, space, evaluate, budget=budget, stall=stall, target=target, cache=cache)
    cand, loss = swarm.best
    return {"best": cand, "loss": loss, "evaluations": state.evaluations, "generations": swarm.generation,
            "history": state.history}

"""The one ask/tell loop of every swarm search: candidates proposed by a swarm (optim/pso.py), repeats answered
from memory, new ones evaluated in one batch per generation (serially or through an executor), losses told back,
stopped by budget, stall or target. ``pso.minimize`` (a plain objective) and the memetic ``search`` (candidates
built and refined) both run it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

IDLE_GENERATIONS = 20  # generations in a row that propose only known candidates: the space near the swarm is spent


@dataclass
class SwarmState:
    """Everything a swarm loop has learnt (checkpointable with the swarm's own state_dict).

    Attributes:
        seen: {candidate key: {"candidate": ..., "loss": float, ...}} every evaluated candidate.
        history: best loss after every generation.
        evaluations: candidates evaluated so far.
        since_best: generations (that evaluated something) since the best loss improved.
        best: best loss so far.
        idle: generations in a row that proposed no new candidate.
    """

    seen: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    evaluations: int = 0
    since_best: int = 0
    best: float = math.inf
    idle: int = 0

    def leader(self) -> dict:
        """The best evaluated entry ({} before any)."""
        return min(self.seen.values(), key=lambda v: v["loss"]) if self.seen else {}


def run_swarm(swarm, space, evaluate, *, budget: int, stall: int, target: float | None = None, cache: bool = True,
              state: SwarmState | None = None, after_generation=None) -> SwarmState:
    """Ask, evaluate, tell until the budget is spent, ``stall`` generations bring no improvement, or the best loss
    reaches ``target``.

    Args:
        swarm: an ask/tell swarm (``ask() -> list of candidates``, ``tell(losses)``).
        space: the SearchSpace (its ``key`` identifies repeats).
        evaluate: callable([(candidate, key), ...]) -> [{"loss": float, ...}, ...] for one generation's new
            candidates.
        budget: maximum evaluations.
        stall: generations without improvement (among those that evaluated something) before stopping.
        target: stop when the best loss is ≤ target.
        cache: answer a repeated candidate from memory (False: evaluate it again).
        state: a state to continue (a resumed run), or None.
        after_generation: optional callable(state) after every generation (checkpoints, progress, tests).
    """
    state = state or SwarmState()
    while state.evaluations < budget and state.since_best < stall and not (target is not None and state.best <= target):
        candidates = swarm.ask()
        keys = [space.key(c) for c in candidates]
        todo: dict = {}
        for c, k in zip(candidates, keys):
            if (not cache or k not in state.seen) and k not in todo:
                todo[k] = c
        items = [(c, k) for k, c in todo.items()][: budget - state.evaluations]
        outcomes = evaluate(items) if items else []
        for (c, k), out in zip(items, outcomes):
            state.seen[k] = {"candidate": c, **out}
        state.evaluations += len(items)
        swarm.tell([state.seen[k]["loss"] if k in state.seen else math.inf for k in keys])
        generation_best = min((v["loss"] for v in state.seen.values()), default=math.inf)
        if generation_best < state.best - 1e-12:
            state.best, state.since_best = generation_best, 0
        elif items:
            state.since_best += 1
        state.idle = 0 if items else state.idle + 1
        if state.idle >= IDLE_GENERATIONS:
            state.since_best = stall
        state.history.append(state.best)
        if after_generation is not None:
            after_generation(state)
    return state

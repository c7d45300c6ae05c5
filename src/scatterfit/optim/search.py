"""Hybrid (memetic) global search: a particle swarm proposes what gradients cannot reach — shape family, size
and atom count, composition, density, discrete choices — and every candidate is built and refined by a short
gradient stage; the refined loss is what the swarm sees. The best distinct candidates are refined to
convergence at the end.

The search checkpoints its whole state (swarm, evaluated candidates, history) after every generation and
resumes from it after a kill; with the same seed it gives the same answer, whatever the executor.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scatterfit.errors import ScatterfitError
from scatterfit.optim.checkpoint import load_checkpoint, save_checkpoint
from scatterfit.optim.executor import make_executor
from scatterfit.optim.pso import make_swarm
from scatterfit.optim.space import SearchSpace
from scatterfit.optim.swarm import SwarmState, run_swarm


def candidate_seed(base_seed: int, key: tuple) -> int:
    """A reproducible seed for the random parts of building one candidate."""
    return (zlib.crc32(repr(key).encode()) + 7919 * int(base_seed)) % (2**31)


@dataclass
class CandidateEvaluator:
    """Builds a candidate, refines it briefly, returns its loss. Picklable, so executors can ship it.

    Args:
        builder: callable(candidate dict, seed) -> Structure.
        loss: the Loss (data, energy and restraint terms).
        free: parameter groups refined for every candidate (e.g. ["positions", "biso"]).
        stages: the short inner refinement (list of Stage); empty: the candidate's loss as built.
        values, bounds: Parametrisation starting values and bounds.
        seed: base seed for random builders.
        complexity: optional callable(refined Structure) -> factor ≥ 1 the loss is multiplied by, so that the
            swarm and the final choice weigh the fit against what the candidate may vary (an information
            criterion's penalty: a cluster in C1 fits better than in T because it has twelve times the
            coordinates).
    """

    builder: object
    loss: object
    free: list
    stages: list
    values: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)
    seed: int = 0
    complexity: object = None

    def score(self, value: float, structure) -> float:
        """The loss the search ranks candidates by: ``value`` times the complexity factor, if any."""
        return value if self.complexity is None else value * float(self.complexity(structure))

    def refine(self, candidate: dict, key: tuple, stages):
        import torch

        from scatterfit.optim import refine
        from scatterfit.structure.parametrisation import Parametrisation

        structure = self.builder(candidate, candidate_seed(self.seed, key))
        free = [g for g in self.free if not (g in ("lattice", "cell", "fractional") and structure.cell is None)]
        param = Parametrisation(structure, free=free, values=self.values, bounds=self.bounds,
                                instrument=self.loss.declared_parameters(self.values))
        if not stages:
            theta = param.initial_vector()
            with torch.no_grad():
                value, terms = self.loss.evaluate(param.state(theta))
            return None, float(value), terms, structure
        result = refine(self.loss, param, stages)
        return result, result.loss, result.terms, result.structure

    def __call__(self, item) -> dict:
        candidate, key = item
        try:
            _, value, terms, structure = self.refine(candidate, key, self.stages)
        except ScatterfitError as exc:
            return {"loss": float("inf"), "error": str(exc), "n_atoms": 0}
        rws = [tv.breakdown["rw"] for tv in terms.values() if "rw" in tv.breakdown]
        value = self.score(value, structure)
        return {"loss": float(value) if np.isfinite(value) else float("inf"), "n_atoms": len(structure),
                "rw": float(rws[0]) if rws else None}


MAX_FAILURES_SHOWN = 20


@dataclass
class SearchResult:
    best: dict
    loss: float
    refined: object  # the optim.refine Result of the best candidate, refined to convergence
    top: list  # [{"candidate", "loss", "rw", "n_atoms", "final_loss"?}] best first
    evaluations: int
    generations: int
    history: list
    wall_time: float

    failed: int = 0  # candidates whose builder or refinement failed
    failures: list = field(default_factory=list)  # [{"candidate", "error"}] of the first MAX_FAILURES_SHOWN of them


def search(evaluator: CandidateEvaluator, space: SearchSpace, *, size: int = 16, budget: int = 200,
           stall: int = 8, target: float | None = None, engine: str = "scatterfit", seed: int = 0,
           executor=None, top_k: int = 3, final_stages=None, checkpoint=None, resume: bool = False,
           distinct: str | None = None,
           observers: list | None = None, on_generation=None, initial: list | None = None,
           fingerprint: str | None = None, **swarm_kwargs) -> SearchResult:
    """Memetic search: swarm over ``space``, each candidate refined by ``evaluator``.

    Args:
        size: particles per generation.
        budget: maximum number of candidate evaluations (repeats of a candidate are not re-evaluated).
        stall: stop after this many generations without a better candidate (generations that proposed only
            candidates seen before do not count; at most 20 such generations in a row are run).
        target: stop when the best loss is ≤ target.
        engine: "scatterfit" (checkpointable) or "nevergrad".
        executor: None (serial), a spec string ("processes:2", "dask-local:2", "dask://host:port") or an
            executor object.
        distinct: a variable whose values the top_k candidates must not share (e.g. a cluster's point group: the
            best of three groups go on to the final stages, not three starts of one group).
        top_k: distinct best candidates refined at the end by the evaluator's short stages followed by
            ``final_stages``; the best of them by the loss the last final stage minimised (its weights and
            xmax) wins.
        checkpoint: file for the search state after every generation; ``resume`` continues from it.
        fingerprint: digest of the problem stored in the checkpoint; a resume from another problem's checkpoint
            is refused.
        observers: callables (evaluations, generation, best loss, its Rw) called after every generation (the
            command line attaches a progress bar).
        on_generation: optional callable(generation, best_loss) (tests use it to interrupt).
        initial: candidates placed as the first particles.

    Raises:
        ScatterfitError: when no candidate could be built at all (with the builder's message).
    """
    t0 = time.perf_counter()
    if checkpoint is not None and engine != "scatterfit":
        raise ScatterfitError("checkpointed searches need the scatterfit swarm engine")
    swarm = make_swarm(space, engine, size=size, seed=seed, initial=initial, **swarm_kwargs)
    state = SwarmState()
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        saved = load_checkpoint(ckpt, "search", fingerprint)
        swarm.load_state_dict(saved["swarm"])
        state = saved["state"]
    own_executor = not hasattr(executor, "map")
    pool = make_executor(executor)
    observers = list(observers or [])

    def after_generation(state: SwarmState) -> None:
        for ob in observers:
            ob(state.evaluations, swarm.generation, state.best, state.leader().get("rw"))
        if ckpt is not None:
            save_checkpoint(ckpt, "search", fingerprint, {"swarm": swarm.state_dict(), "state": state})
        if on_generation is not None:
            on_generation(swarm.generation, state.best)

    try:
        state = run_swarm(swarm, space, lambda items: pool.map(evaluator, items), budget=budget, stall=stall,
                          target=target, state=state, after_generation=after_generation)
    finally:
        if own_executor:
            pool.close()
    seen, history, evaluations = state.seen, state.history, state.evaluations

    failed = [v for v in seen.values() if "error" in v]
    if seen and len(failed) == len(seen):
        raise ScatterfitError(f"no candidate could be built or refined ({len(failed)} tried); the first failed with: "
                              f"{failed[0]['error']}")
    ranked = sorted(seen.items(), key=lambda kv: kv[1]["loss"])
    if distinct is not None:  # the best candidate of each value of ``distinct``, best first
        seen_values, kept = set(), []
        for key, v in ranked:
            value = (v.get("candidate") or {}).get(distinct)
            if value not in seen_values:
                seen_values.add(value)
                kept.append((key, v))
        ranked = kept
    top = [{**v} for _, v in ranked[: max(top_k, 1)]]
    import torch

    refined, final_loss = None, float("inf")
    if ranked and np.isfinite(ranked[0][1]["loss"]):
        for entry, (key, _) in zip(top, ranked):
            if final_stages:  # continues from where the candidate's short refinement ended
                res, value, _, built = evaluator.refine(entry["candidate"], key, [*evaluator.stages, *final_stages])
                last = final_stages[-1]
                if res is not None and (last.weights or last.xmax is not None):
                    # finalists compete on what the last stage minimised (e.g. with an energy term it switched on)
                    with torch.no_grad():
                        value = float(evaluator.loss.evaluate(res.state, xmax=last.xmax, weights=last.weights)[0])
                value = evaluator.score(value, built)
                entry["final_loss"] = float(value)
            else:
                res, value, _, built = evaluator.refine(entry["candidate"], key, evaluator.stages)
                value = evaluator.score(value, built)
            if res is not None and value < final_loss:
                refined, final_loss = res, value
    best_entry = min(top, key=lambda e: e.get("final_loss", e["loss"])) if top else {"candidate": None, "loss": np.inf}
    return SearchResult(best=best_entry["candidate"], loss=float(best_entry.get("final_loss", best_entry["loss"])),
                        refined=refined, top=top, evaluations=evaluations, generations=swarm.generation,
                        history=history, wall_time=time.perf_counter() - t0, failed=len(failed),
                        failures=[{"candidate": v.get("candidate"), "error": v["error"]}
                                  for v in failed[:MAX_FAILURES_SHOWN]])

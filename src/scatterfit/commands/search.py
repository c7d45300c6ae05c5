"""`scatterfit refine CONFIG.toml` with a [search] section: a memetic swarm search over the builder's
variables, each candidate refined briefly, the best refined to convergence; results, top candidates and plots
written to the output folder; a killed search resumes with --resume."""

from __future__ import annotations

import time
from pathlib import Path

from scatterfit.config import Config
from scatterfit.errors import ScatterfitError

BUILDERS = ("nanoparticle", "amorphous", "molecule", "symmetric_molecule")


def build_candidates(cfg: Config):
    from scatterfit.structure.candidates import (AmorphousCandidates, MoleculeCandidates, ParticleCandidates,
                                                 SymmetricMoleculeCandidates)

    sec = cfg.search
    kind = sec["builder"]
    classes = {"nanoparticle": ParticleCandidates, "amorphous": AmorphousCandidates, "molecule": MoleculeCandidates,
               "symmetric_molecule": SymmetricMoleculeCandidates}
    if kind not in classes:
        raise ScatterfitError(f"{cfg.path}: [search].builder: unknown builder '{kind}' (use {', '.join(BUILDERS)})")
    try:
        return classes[kind](**sec.get("builder_args", {}))
    except TypeError as exc:
        raise ScatterfitError(f"{cfg.path}: [search].builder_args: {exc}") from None


def build_evaluator(cfg: Config):
    """The config's (CandidateEvaluator, SearchSpace, loss, final stages): what run_search and landscape
    scripts share."""
    from scatterfit.commands.refine import build_datasets, build_loss, build_strategy
    from scatterfit.optim import Stage
    from scatterfit.optim.search import CandidateEvaluator
    from scatterfit.optim.space import SearchSpace

    sec = cfg.search
    datasets = build_datasets(cfg)
    loss = build_loss(cfg, datasets)
    candidates = build_candidates(cfg)
    try:
        space = SearchSpace.from_config(sec["variables"])
    except ScatterfitError as exc:
        raise ScatterfitError(f"{cfg.path}: [search].variables: {exc}") from None
    p = cfg.parameters
    inner_free = sec.get("inner_free", p["free"])
    inner = [Stage("lbfgs", steps=int(sec.get("inner_steps", 5)), tol=1e-4, patience=1)]
    final = build_strategy(cfg) if cfg.strategy else [Stage("lbfgs", free=p["free"], steps=100)]
    evaluator = CandidateEvaluator(candidates, loss, free=list(dict.fromkeys([*inner_free, *p["free"]])),
                                   stages=[Stage(s.optimizer, free=inner_free, steps=s.steps, tol=s.tol,
                                                 patience=s.patience) for s in inner],
                                   values=dict(p.get("values", {})), seed=int(sec.get("seed", 0)))
    return evaluator, space, loss, final


def run_search(cfg: Config, out=None, resume: bool = False):
    from scatterfit.commands.refine import chemistry_options
    from scatterfit.optim.search import search

    sec = cfg.search
    evaluator, space, loss, final = build_evaluator(cfg)
    out_dir = Path(out or cfg.output.get("dir", "out/" + Path(cfg.path).stem))
    t0 = time.perf_counter()
    result = search(evaluator, space, size=int(sec.get("swarm_size", 16)), budget=int(sec.get("budget", 100)),
                    stall=int(sec.get("stall", 6)), target=sec.get("target"), engine=sec.get("engine", "scatterfit"),
                    seed=int(sec.get("seed", 0)), executor=sec.get("executor"), top_k=int(sec.get("top_k", 3)),
                    final_stages=final, checkpoint=out_dir / "search_checkpoint.pkl", resume=resume)
    if result.refined is not None:
        result.refined.chemistry = chemistry_options(cfg, loss)
    result.write(out_dir)
    print(f"{'rank':>4}  {'loss':>10}  {'Rw':>8}  {'atoms':>6}  candidate")
    for k, entry in enumerate(result.top, 1):
        rw = entry.get("rw")
        print(f"{k:>4}  {entry.get('final_loss', entry['loss']):>10.5g}  {'–' if rw is None else f'{rw:.4f}':>8}  "
              f"{entry.get('n_atoms', 0):>6}  {entry['candidate']}")
    if result.refined is not None:
        for name, tv in result.refined.terms.items():
            if "rw" in tv.breakdown:
                print(f"best: Rw = {tv.breakdown['rw']:.4f} [{name}], {len(result.refined.structure)} atoms")
    print(f"search: {result.evaluations} candidates in {result.generations} generations, "
          f"{time.perf_counter() - t0:.1f} s; results in {out_dir}/")
    return result

"""`scatterfit refine CONFIG.toml` with a [search] section: a memetic swarm search over the builder's
variables, each candidate refined briefly, the best refined to convergence; results, top candidates and plots
written to the output folder; a killed search resumes with --resume."""

from __future__ import annotations

import time

from scatterfit.config import Config


def run_search(cfg: Config, out_dir, resume: bool = False, fingerprint: str | None = None, qmax: float | None = None):
    """Run the config's search into ``out_dir`` (already checked and locked by the caller)."""
    from scatterfit.config.builders import build_evaluator, chemistry_options
    from scatterfit.optim.search import search
    from scatterfit.report.progress import SearchProgress
    from scatterfit.report.results import write_search

    sec = cfg.search
    evaluator, space, loss, final = build_evaluator(cfg, qmax)
    budget = int(sec.get("budget", 100))
    progress = SearchProgress(budget)
    t0 = time.perf_counter()
    try:
        result = search(evaluator, space, size=int(sec.get("swarm_size", 16)), budget=budget,
                        stall=int(sec.get("stall", 6)), target=sec.get("target"),
                        engine=sec.get("engine", "scatterfit"), seed=int(sec.get("seed", 0)),
                        executor=sec.get("executor"), top_k=int(sec.get("top_k", 3)),
                        final_stages=final, checkpoint=out_dir / "search_checkpoint.pt", resume=resume,
                        observers=[progress], fingerprint=fingerprint)
    finally:
        progress.close()
    errors = {}
    if result.refined is not None:
        from scatterfit.optim.uncertainty import uncertainties

        errors = uncertainties(loss, result.refined.parametrisation, result.refined.theta)
    write_search(result, out_dir, chemistry_options(cfg, loss), errors)
    print(f"{'rank':>4}  {'loss':>10}  {'Rw':>8}  {'atoms':>6}  candidate")
    for k, entry in enumerate(result.top, 1):
        rw = entry.get("rw")
        print(f"{k:>4}  {entry.get('final_loss', entry['loss']):>10.5g}  {'–' if rw is None else f'{rw:.4f}':>8}  "
              f"{entry.get('n_atoms', 0):>6}  {entry['candidate']}")
    if result.refined is not None:
        for name, tv in result.refined.terms.items():
            if "rw" in tv.breakdown:
                print(f"best: Rw = {tv.breakdown['rw']:.4f} [{name}], {len(result.refined.structure)} atoms")
    failed = f", {result.failed} failed (see search.json)" if result.failed else ""
    print(f"search: {result.evaluations} candidates{failed} in {result.generations} generations, "
          f"{time.perf_counter() - t0:.1f} s; results in {out_dir}/")
    return result

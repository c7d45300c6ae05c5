"""Search benchmark: the atom-count case of the swarm issue — a noisy simulated G(r) (1.5–20 Å, 0.5 % noise)
of a 147-atom Au cuboctahedron, the search knowing only "Au" (shape family among 6 and size 1–5 shells,
expansion and Biso refined per candidate by 5 L-BFGS steps, the best 2 refined to convergence).

Rows: the same seeded search evaluated one candidate at a time in this process (serial), and each generation
dispatched as one batch to 2 local worker processes, and to a local 2-worker Dask cluster. Columns: start-up
(creating the executor and a warm-up evaluation in each worker: process spawn, imports, compiled-kernel cache),
wall time of the search itself (swarm plus final refinement of the best 2, which runs in this process),
candidates evaluated, generations, the answer and its Rw.

Usage: python benchmarks/search.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch


def problem():
    from scatterfit.io import Dataset
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.optim import Stage
    from scatterfit.optim.search import CandidateEvaluator
    from scatterfit.scattering.models import PDFModel
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.builders import nanoparticle
    from scatterfit.structure.candidates import ParticleCandidates

    truth = nanoparticle("Au", "cuboctahedron", 3, nn_distance=2.884)
    truth = truth.with_(biso=torch.full((len(truth),), 0.6, dtype=torch.float64))
    r = torch.arange(1.5, 20.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.03, qmax=25.0)
    sigma = 0.005 * float(g.abs().max())
    y = g.numpy() + sigma * np.random.default_rng(0).standard_normal(len(r))
    data = Dataset(r.numpy(), y, np.full(len(r), sigma), "gr", "angstrom")
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    return CandidateEvaluator(ParticleCandidates("Au"), loss, free=["expansion", "biso"],
                              stages=[Stage("lbfgs", steps=5, tol=1e-4, patience=1)], values={"qdamp": 0.03})


def main(argv) -> None:
    from scatterfit.optim import Stage
    from scatterfit.optim.executor import make_executor
    from scatterfit.optim.search import search
    from scatterfit.optim.space import Choice, Integer, SearchSpace
    from scatterfit.structure.builders import SHAPES

    torch.set_num_threads(1)
    evaluator = problem()
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 5)])
    print("Au147 cuboctahedron from a noisy simulated G(r); swarm of 12, budget 30, stall 4, seed 0")
    print(f"{'evaluation':>28} {'start s':>8} {'wall s':>8} {'candidates':>11} {'generations':>12} {'found':>18} "
          f"{'atoms':>6} {'Rw':>7}")
    for label, spec in (("serial, one at a time", None), ("batch -> 2 local processes", "processes:2"),
                        ("batch -> Dask local, 2 wkrs", "dask-local:2")):
        t = time.perf_counter()
        executor = make_executor(spec)
        executor.map(evaluator, [({"shape": "icosahedron", "size": 1}, ("warm-up", k)) for k in range(2)])
        start = time.perf_counter() - t
        t = time.perf_counter()
        res = search(evaluator, space, size=12, budget=30, stall=4, seed=0, top_k=2, executor=executor,
                     final_stages=[Stage("lbfgs", steps=40)])
        wall = time.perf_counter() - t
        executor.close()
        rw = res.refined.terms["data:gr"].breakdown["rw"]
        found = f"{res.best['shape']} {res.best['size']}"
        print(f"{label:>28} {start:>8.1f} {wall:>8.1f} {res.evaluations:>11} {res.generations:>12} {found:>18} "
              f"{len(res.refined.structure):>6} {rw:>7.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])

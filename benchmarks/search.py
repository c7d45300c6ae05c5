"""Search benchmark: the atom-count case of the swarm issue — a noisy simulated G(r) (1.5–20 Å, 0.5 % noise)
of a 147-atom Au cuboctahedron, the search knowing only "Au" (shape family among 6 and size 1–5 shells,
expansion and Biso refined per candidate by 5 L-BFGS steps, the best 2 refined to convergence).

Rows: the same seeded search evaluated one candidate at a time in this process (serial), and each generation
dispatched as one batch to 2 local worker processes, and to a local 2-worker Dask cluster. Columns: start-up
(creating the executor and a warm-up evaluation in each worker: process spawn, imports, compiled-kernel cache),
wall time of the search itself (swarm plus final refinement of the best 2, which runs in this process),
candidates evaluated, generations, the answer and its Rw.

With ``--baseline REV`` it instead runs the serial search twice, each in a fresh process: with this checkout's
code and with the code of git revision REV (checked out into a temporary worktree), and prints the candidates
per second of each (candidates evaluated / seconds spent evaluating them, the final refinement left out), their
ratio, and whether the two rank the candidates the same (the top candidates and their losses).

Usage: python benchmarks/search.py [--baseline REV]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


_DRIVER = """
import json, sys, time
import torch
import search as bench
from scatterfit.optim import Stage
from scatterfit.optim.search import search
from scatterfit.optim.space import Choice, Integer, SearchSpace
from scatterfit.structure.builders import SHAPES
torch.set_num_threads(1)
evaluator = bench.problem()
evaluator(({"shape": "icosahedron", "size": 1}, ("warm-up", 0)))  # compiled-kernel caches, lazy imports
spent = [0.0]
call = type(evaluator).__call__
def timed(self, *args, **kwargs):
    t = time.perf_counter()
    try:
        return call(self, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - t
type(evaluator).__call__ = timed
t = time.perf_counter()
res = search(evaluator, SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 5)]), size=12, budget=30,
             stall=4, seed=0, top_k=2, final_stages=[Stage("lbfgs", steps=40)])
print(json.dumps({"wall": time.perf_counter() - t, "evaluating": spent[0], "evaluations": res.evaluations,
                  "top": [[f"{v['candidate']['shape']} {v['candidate']['size']}", v["loss"]] for v in res.top]}))
"""


def _driven(tree: Path) -> dict:
    """The serial search of _DRIVER with the code of ``tree`` (its src/ and benchmarks/), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'benchmarks'}", "OMP_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _DRIVER], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the search with the code of {tree} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(revision: str) -> None:
    """Candidates per second of this checkout against ``revision``, and whether they rank alike."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "baseline"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(tree), revision], check=True)
        try:
            rows = {revision: _driven(tree), "this checkout": _driven(root)}
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=True)
    base = rows[revision]
    print(f"{'code':>16} {'candidates':>11} {'evaluating s':>13} {'cand./s':>8} {'ratio':>6} {'search s':>9}  "
          "top (loss)")
    for label, row in rows.items():
        rate = row["evaluations"] / row["evaluating"]
        ratio = rate / (base["evaluations"] / base["evaluating"])
        top = ", ".join(f"{name} ({loss:.6g})" for name, loss in row["top"])
        print(f"{label:>16} {row['evaluations']:>11} {row['evaluating']:>13.2f} {rate:>8.2f} {ratio:>6.2f} "
              f"{row['wall']:>9.2f}  {top}")
    same = [a[0] for a in rows["this checkout"]["top"]] == [b[0] for b in base["top"]]
    print(f"same ranking of the top candidates: {'yes' if same else 'NO'}")


def main(argv) -> None:
    if argv[:1] == ["--baseline"] and len(argv) == 2:
        compare(argv[1])
        return
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

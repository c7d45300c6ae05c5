"""Swarm engines compared on the same problems: scatterfit's ParticleSwarm against nevergrad 1.0.12's ConfPSO,
same swarm size, same budget, 5 seeds each. Prints, per problem and engine: runs reaching the target, median
evaluations used, and optimiser overhead per evaluation (wall time minus objective time, divided by evaluations).

Problems: Rastrigin 2-D and 5-D (optimum 0 at the origin), Rosenbrock 2-D and 4-D (optimum 0 at (1, ..., 1)),
and a mixed problem (integer n ∈ [0, 30], real x ∈ [−1, 1], choice of 4 shapes; optimum 0 at n = 7, x = 0.3,
"ico").

Usage: python benchmarks/pso_compare.py [--seeds S] [--budget B]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from scatterfit.optim.pso import minimize
from scatterfit.optim.space import Choice, Integer, Real, SearchSpace


def rastrigin(c):
    x = np.array(list(c.values()))
    return float(10 * len(x) + np.sum(x * x - 10 * np.cos(2 * np.pi * x)))


def rosenbrock(c):
    x = np.array(list(c.values()))
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def mixed(c):
    return (c["n"] - 7) ** 2 + (c["x"] - 0.3) ** 2 + (0.0 if c["shape"] == "ico" else 1.0)


PROBLEMS = [
    ("Rastrigin 2-D", rastrigin, SearchSpace([Real(f"x{i}", -5.12, 5.12) for i in range(2)]), 1e-4),
    ("Rastrigin 5-D", rastrigin, SearchSpace([Real(f"x{i}", -5.12, 5.12) for i in range(5)]), 1e-3),
    ("Rosenbrock 2-D", rosenbrock, SearchSpace([Real(f"x{i}", -2.0, 2.0) for i in range(2)]), 1e-4),
    ("Rosenbrock 4-D", rosenbrock, SearchSpace([Real(f"x{i}", -2.0, 2.0) for i in range(4)]), 1e-2),
    ("mixed int/real/choice", mixed, SearchSpace([Integer("n", 0, 30), Real("x", -1.0, 1.0),
                                                  Choice("shape", ("sphere", "cubo", "ico", "deca"))]), 1e-4),
]


def main(argv):
    seeds = int(argv[argv.index("--seeds") + 1]) if "--seeds" in argv else 5
    budget = int(argv[argv.index("--budget") + 1]) if "--budget" in argv else 10000
    print(f"swarm of 30, budget {budget} evaluations, {seeds} seeds")
    print(f"{'problem':>22} {'engine':>12} {'reached':>8} {'median evals':>13} {'overhead ms/eval':>17}")
    for name, f, space, target in PROBLEMS:
        for engine in ("scatterfit", "nevergrad"):
            reached, evals, overhead = 0, [], []
            for seed in range(seeds):
                spent = [0.0]

                def timed(c):
                    t = time.perf_counter()
                    v = f(c)
                    spent[0] += time.perf_counter() - t
                    return v

                t0 = time.perf_counter()
                r = minimize(timed, space, budget=budget, target=target, stall=10**9, engine=engine, size=30,
                             seed=seed)
                wall = time.perf_counter() - t0
                reached += r["loss"] <= target
                evals.append(r["evaluations"])
                overhead.append((wall - spent[0]) / max(r["evaluations"], 1) * 1e3)
            print(f"{name:>22} {engine:>12} {reached:>5}/{seeds} {int(np.median(evals)):>13} "
                  f"{np.median(overhead):>17.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])

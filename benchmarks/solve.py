"""`solve` with its default budget on measured PDFs of a bulk crystal (Ni.gr) and of nanoparticles
(Pt-nanoparticles.gr), knowing only the element: wall time, time per hypothesis class and the best hypothesis,
run in this process (serial: one thread, as the command line by default; and with 2 threads) and on a local Dask
cluster of 2 single-threaded workers; prints the speed-up against the one-thread serial run.

    python benchmarks/solve.py [--only serial|dask]

Issue 16's targets: under 10 minutes per solve on this 2-core machine; the Dask speed-up in the table.
"""

from __future__ import annotations

import argparse
import time

CASES = (("Ni.gr (bulk crystal)", "pdf/ch03NiModelling/data/Ni.gr", "Ni"),
         ("Pt-nanoparticles.gr", "pdf/ch03NiModelling/data/Pt-nanoparticles.gr", "Pt"))
EXECUTORS = (("serial", None, 1), ("serial, 2 threads", None, 2), ("dask", "dask-local:2", 1))


def main() -> None:
    import numba
    import torch

    from scatterfit.datasets import cmi_example
    from scatterfit.io import load_dataset
    from scatterfit.optim.executor import make_executor, reuse_freed_memory
    from scatterfit.solve.solve import solve

    reuse_freed_memory()  # as the command line and the workers do

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=[name for name, _, _ in EXECUTORS])
    args = parser.parse_args()
    rows = []
    for name, spec, threads in EXECUTORS:
        if args.only and name != args.only:
            continue
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
        pool = make_executor(spec)  # started once, outside the timing (a cluster is up before work arrives)
        try:
            # warm-up, untimed: imports and compiled kernels loaded in every process, as in a cluster that ran
            # jobs before
            solve({"d": load_dataset(cmi_example(CASES[0][1]))}, CASES[0][2], executor=pool, potential=None)
            for label, relative, composition in CASES:
                data = load_dataset(cmi_example(relative))
                t0 = time.perf_counter()
                solution = solve({"d": data}, composition, executor=pool)
                wall = time.perf_counter() - t0
                best = solution.ranked[0]["hypothesis"]
                rows.append((label, name, wall, solution.seconds, f"{best.kind}: {best.label}", best.rw["d"]))
                print(f"{label} [{name}]: {wall:.0f} s, best {best.label} Rw {best.rw['d']:.4f}", flush=True)
        finally:
            pool.close()
    print("\n| data | executor | wall (s) | s per class (summed over hypotheses) | best | Rw | speed-up |")
    print("|---|---|---|---|---|---|---|")
    serial = {r[0]: r[2] for r in rows if r[1] == "serial"}
    for label, name, wall, seconds, best, rw in rows:
        per_class = ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        speed = f"{serial[label] / wall:.2f}×" if label in serial else "–"
        print(f"| {label} | {name} | {wall:.0f} | {per_class} | {best} | {rw:.4f} | {speed} |")


if __name__ == "__main__":
    main()

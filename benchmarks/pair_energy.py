"""Pair-energy benchmark: BKS silica (Buckingham + DSF Coulomb, 10 Å cutoffs) on random SiO2 boxes at the glass's
density, energy + gradient w.r.t. positions and cell, by the compiled kernel (energy/_pair_kernels.py) and by the
torch expressions it replaced (the same potential with the kernel switched off), in the same process, one thread.

Columns: atoms; compiled and torch s per call (best of 5, after a warm-up call that builds the pair lists, so
both reuse them as an optimisation does); torch / compiled; the largest difference of the gradients relative to
their largest entry.

Usage: python benchmarks/pair_energy.py [--sizes 643,5000,20000]
"""

from __future__ import annotations

import sys
import time


def best_of(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    import scatterfit.energy._pair_kernels as kernels
    from scatterfit.energy.pair import bks_silica
    from scatterfit.testing import random_box

    sizes = [643, 5000, 20000]
    if "--sizes" in argv:
        sizes = [int(x) for x in argv[argv.index("--sizes") + 1].split(",")]
    print("| atoms | compiled s | torch s | torch / compiled | max grad diff (rel.) |")
    print("|---|---|---|---|---|")
    original = kernels.compiled
    for n in sizes:
        box = random_box(n - n % 3, 0.0664, numbers=(14, 8, 8), min_dist=1.5, seed=0)
        out = {}
        for name, use in (("compiled", original), ("torch", lambda s: False)):
            kernels.compiled = use
            model = bks_silica()

            def call(model=model):
                pos = box.positions.clone().requires_grad_()
                cell = box.cell.clone().requires_grad_()
                energy = model.energy(box.with_(positions=pos, cell=cell))
                energy.backward()
                return pos.grad, cell.grad

            grads = call()
            out[name] = (best_of(call), grads)
        kernels.compiled = original
        (fast, (gp, gc)), (slow, (tp, tc)) = out["compiled"], out["torch"]
        diff = max(float((gp - tp).abs().max() / tp.abs().max()), float((gc - tc).abs().max() / tc.abs().max()))
        print(f"| {len(box):,} | {fast:.4f} | {slow:.4f} | {slow / fast:.1f}× | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

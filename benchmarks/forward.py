"""Forward-model benchmark: prints tables (one torch thread; each row measured in the same run).

1. Debye I(Q) of spherical Au nanoparticles (Q 1–25 Å⁻¹ in 0.05 steps) against DebyeCalculator 1.1.1 on the CPU:
   forward, forward+backward (gradient w.r.t. positions), peak extra memory (RSS high-water mark of a fresh
   process per row), and the fast path's errors against the exact float64 path (value: max |ΔI| / max I;
   gradient: relative L2), the exact path being evaluated only up to 1,100 atoms.
2. Real-space G(r) to 30 Å of periodic boxes (0.05 atoms/Å³): neighbour-list build and G(r) forward, forward +
   backward with the list reused.

Usage: python benchmarks/forward.py [--threads T] [N ...]   (default 1 thread; 100 1000 5000 20000 atoms)
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time

Q = (1.0, 25.0, 0.05)


def gold_sphere(n_target: int):
    import numpy as np
    from ase.build import bulk

    a = 4.078
    reps = int(np.ceil((n_target / 4) ** (1 / 3))) + 2
    big = bulk("Au", "fcc", a=a, cubic=True).repeat((reps, reps, reps))
    pos = big.positions - big.positions.mean(0)
    order = np.argsort(np.linalg.norm(pos, axis=1))
    big.positions = pos
    return big[order[:n_target]]


def best_of(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _row(n: int, threads: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    from debyecalculator import DebyeCalculator

    from scatterfit import Structure
    from scatterfit.scattering.debye import debye_intensity

    atoms = gold_sphere(n)
    s = Structure.from_ase(atoms)
    q = torch.arange(*Q, dtype=torch.float64)
    repeat = 3 if n <= 5000 else 1
    warm = Structure.from_ase(gold_sphere(50))  # load the compiled kernels before the memory baseline
    wp = warm.positions.clone().requires_grad_(True)
    debye_intensity(warm.with_(positions=wp), q).sum().backward()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    debye_intensity(s, q)
    t_fwd = best_of(lambda: debye_intensity(s, q), repeat)
    pos = s.positions.clone().requires_grad_(True)

    def ours_fb():
        pos.grad = None
        debye_intensity(s.with_(positions=pos), q).sum().backward()

    t_fb = best_of(ours_fb, repeat)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # MB (ru_maxrss is in kB)
    dc = DebyeCalculator(qmin=Q[0], qmax=Q[1], qstep=Q[2], biso=float(s.biso[0]), device="cpu")
    dc.iq(atoms)
    t_dc = best_of(lambda: dc.iq(atoms), repeat)
    xyz = torch.tensor(atoms.positions, dtype=torch.float32, requires_grad=True)

    def dc_fb():
        xyz.grad = None
        out = dc.iq((atoms.get_chemical_symbols(), xyz), keep_on_device=True)
        out[1].sum().backward()

    try:
        t_dc_fb = best_of(dc_fb, repeat)
        if xyz.grad is None:
            t_dc_fb = float("nan")
    except Exception:
        t_dc_fb = float("nan")
    err_v = err_g = float("nan")
    if n <= 1100:
        ie = debye_intensity(s, q, method="exact")
        err_v = float((ie - debye_intensity(s, q)).abs().max() / ie.abs().max())
        pe = s.positions.clone().requires_grad_(True)
        debye_intensity(s.with_(positions=pe), q, method="exact").sum().backward()
        ours_fb()
        err_g = float((pe.grad - pos.grad).norm() / pe.grad.norm())
    queue.put((len(s), t_fwd, t_dc, t_fb, t_dc_fb, peak, err_v, err_g))


def _periodic_row(n: int, threads: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.pairs import NeighbourCache
    from scatterfit.testing import random_box

    box = random_box(n, 0.05, numbers=(14,), min_dist=0.0, seed=0)
    r = torch.arange(0.01, 30.0, 0.01, dtype=torch.float64)
    cache = NeighbourCache(skin=0.5)
    t = time.perf_counter()
    pdf(box, r, neighbour_cache=cache)
    t_first = time.perf_counter() - t
    t_fwd = best_of(lambda: pdf(box, r, neighbour_cache=cache), 2)
    pos = box.positions.clone().requires_grad_(True)
    t_fb = best_of(lambda: pdf(box.with_(positions=pos), r, neighbour_cache=cache).sum().backward(), 2)
    queue.put((n, len(cache._pairs.i), t_first - t_fwd, t_fwd, t_fb))


def run(target, n, threads):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(n, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(sizes, threads: int = 1) -> None:
    print(f"Debye I(Q), Au spheres, Q 1-25/0.05 Å⁻¹ (480 points), CPU, {threads} thread(s) for both programs; "
          "DC = DebyeCalculator 1.1.1 float32")
    print(f"{'atoms':>7} {'fwd s':>8} {'DC fwd s':>9} {'ratio':>6} {'f+b s':>8} {'DC f+b s':>9} {'ratio':>6} "
          f"{'peak MB':>8} {'val err':>8} {'grad err':>8}")
    for n in sizes:
        na, tf, tdc, tfb, tdcfb, peak, ev, eg = run(_row, n, threads)
        print(f"{na:>7} {tf:>8.3f} {tdc:>9.3f} {tdc / tf:>6.2f} {tfb:>8.3f} {tdcfb:>9.3f} {tdcfb / tfb:>6.2f} "
              f"{peak:>8.0f} {ev:>8.1e} {eg:>8.1e}")
    print(f"\nReal-space G(r), 0.01-30 Å, periodic Si boxes at 0.05 atoms/Å³, {threads} thread(s)")
    print(f"{'atoms':>7} {'pairs':>10} {'list s':>8} {'G fwd s':>8} {'G f+b s':>8}")
    for n in (1000, 10000):
        na, npairs, tl, tf, tfb = run(_periodic_row, n, threads)
        print(f"{na:>7} {npairs:>10} {tl:>8.2f} {tf:>8.2f} {tfb:>8.2f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    threads = 1
    if args[:1] == ["--threads"]:
        threads, args = int(args[1]), args[2:]
    main([int(a) for a in args] or [100, 1000, 5000, 20000], threads)

"""Forward and forward+backward timings of the Debye engine against DebyeCalculator 1.1.1 (same run, CPU, one
thread), and periodic real-space G(r) timings. Prints a table; pass sizes as arguments (default 100 1000 5000)."""

from __future__ import annotations

import sys
import time
import tracemalloc

import torch
from ase.cluster import Octahedron

from scatterfit import Structure
from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.pdf import pdf
from scatterfit.testing import random_box


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(sizes):
    torch.set_num_threads(1)
    from debyecalculator import DebyeCalculator

    q = torch.arange(1.0, 25.0, 0.05, dtype=torch.float64)
    print(f"{'atoms':>7} {'ours fwd s':>11} {'DC fwd s':>9} {'ours f+b s':>11} {'DC f+b s':>9} {'peak MB':>8} "
          f"{'val err':>9} {'grad err':>9}")
    for n in sizes:
        length = max(3, round((n / 0.7) ** (1 / 3) * 0.9))
        atoms = Octahedron("Au", length, cutoff=max(1, length // 3))
        s = Structure.from_ase(atoms)
        dc = DebyeCalculator(qmin=1.0, qmax=25.0, qstep=0.05, biso=float(s.biso[0]), device="cpu")
        t_ours = timed(lambda: debye_intensity(s, q))
        t_dc = timed(lambda: dc.iq(atoms))
        pos = s.positions.clone().requires_grad_(True)

        def fb():
            i = debye_intensity(s.with_(positions=pos), q)
            i.sum().backward()

        tracemalloc.start()
        t_fb = timed(fb, 1)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        xyz = torch.tensor(atoms.positions, dtype=torch.float32, requires_grad=True)

        def dc_fb():
            from debyecalculator.debye_calculator import StructureTuple  # noqa: F401
            out = dc.iq((atoms.get_chemical_symbols(), xyz), keep_on_device=True)
            out[1].sum().backward()

        try:
            t_dc_fb = timed(dc_fb, 1)
        except Exception:
            t_dc_fb = float("nan")
        err_v = err_g = float("nan")
        if len(s) <= 1500:
            ie = debye_intensity(s, q, method="exact")
            err_v = float((ie - debye_intensity(s, q)).abs().max() / ie.abs().max())
            pe = s.positions.clone().requires_grad_(True)
            debye_intensity(s.with_(positions=pe), q, method="exact").sum().backward()
            pos.grad = None
            debye_intensity(s.with_(positions=pos), q).sum().backward()
            err_g = float((pe.grad - pos.grad).norm() / pe.grad.norm())
        print(f"{len(s):>7} {t_ours:>11.3f} {t_dc:>9.3f} {t_fb:>11.3f} {t_dc_fb:>9.3f} {peak:>8.0f} {err_v:>9.1e} "
              f"{err_g:>9.1e}")
    print("\nperiodic G(r) to 30 Å (Si box, 0.05 atoms/Å³)")
    r = torch.arange(0.01, 30.0, 0.01, dtype=torch.float64)
    for n in (1000, 10000):
        box = random_box(n, 0.05, min_dist=0.0, seed=0)
        print(f"{n:>7} atoms: {timed(lambda: pdf(box, r), 1):.2f} s")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])

"""Energy benchmark: the default ML potential (CHGNet 0.4.2) through scatterfit against the same model through
its own ASE calculator, beside the scattering forward+backward of the same structure. One torch thread; each
row runs in a fresh process so its peak memory (RSS high-water mark) is its own.

Rows: periodic Si (diamond) cells of 64, 216 and 1,000 atoms (rattled 0.05 Å), and a 1,000-atom Au nanoparticle
(sphere cut from fcc). Columns:
  scatterfit E+grad   energy and autograd gradient w.r.t. positions and cell (s per call, best of 3)
  ASE calc E+F        CHGNetCalculator energy + forces (+ stress for the periodic cells) (s per call)
  ratio               ASE / scatterfit (> 1: scatterfit faster)
  scattering f+b      G(r) to 20 Å (periodic, list reused) or Debye I(Q) 1–25 Å⁻¹ (particle), value + gradient
  peak MB             extra peak memory of the first scatterfit energy+gradient call (above the process
                      with the model loaded and the structure built)

Usage: python benchmarks/energy.py [--threads T]
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import resource
import sys
import time


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def build(case: str):
    import numpy as np
    from ase.build import bulk

    if case.startswith("Si"):
        reps = {"Si64": 2, "Si216": 3, "Si1000": 5}[case]
        atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (reps, reps, reps)
        atoms.rattle(0.05, seed=0)
        return atoms
    big = bulk("Au", "fcc", a=4.078, cubic=True) * (10, 10, 10)
    pos = big.positions - big.positions.mean(0)
    order = np.argsort(np.linalg.norm(pos, axis=1))
    big.positions = pos
    return big[order[:1000]]


def _row(case: str, threads: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    from chgnet.model.dynamics import CHGNetCalculator

    from scatterfit import Structure
    from scatterfit.energy import default_potential
    from scatterfit.scattering.debye import debye_intensity
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.neighbours import NeighbourCache

    atoms = build(case)
    s = Structure.from_ase(atoms)
    model = default_potential()
    periodic = s.cell is not None

    def ours():
        pos = s.positions.clone().requires_grad_(True)
        changes = {"positions": pos}
        if periodic:
            changes["cell"] = s.cell.clone().requires_grad_(True)
        model.energy(s.with_(**changes)).backward()

    with contextlib.redirect_stdout(io.StringIO()):
        calc = CHGNetCalculator(model.model, use_device="cpu")

    def theirs():
        a = atoms.copy()
        calc.reset()  # no cached results: every call computes
        a.calc = calc
        a.get_potential_energy()
        a.get_forces()
        if periodic:
            a.get_stress()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours()  # the first call sets the memory high-water mark (and warms up the graph converter)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    t_ours = best_of(ours)
    t_theirs = best_of(theirs)
    if periodic:
        r = torch.arange(1.0, 20.0, 0.01, dtype=torch.float64)
        cache = NeighbourCache()

        def scattering():
            pos = s.positions.clone().requires_grad_(True)
            pdf(s.with_(positions=pos), r, qmax=25.0, neighbour_cache=cache).sum().backward()
    else:
        q = torch.arange(1.0, 25.0, 0.05, dtype=torch.float64)

        def scattering():
            pos = s.positions.clone().requires_grad_(True)
            debye_intensity(s.with_(positions=pos), q).sum().backward()
    scattering()
    t_scat = best_of(scattering)
    queue.put((case, len(atoms), t_ours, t_theirs, t_scat, peak))


def main(argv: list[str]) -> None:
    threads = 1
    if "--threads" in argv:
        threads = int(argv[argv.index("--threads") + 1])
    ctx = mp.get_context("spawn")
    print(f"CHGNet 0.4.2 energy + gradient, {threads} torch thread(s)")
    print(f"{'structure':>16} {'atoms':>6} {'scatterfit E+grad s':>20} {'ASE calc E+F s':>15} {'ratio':>6} "
          f"{'scattering f+b s':>17} {'peak MB':>8}")
    for case in ("Si64", "Si216", "Si1000", "Au1000-particle"):
        queue = ctx.Queue()
        p = ctx.Process(target=_row, args=(case, threads, queue))
        p.start()
        p.join()
        if p.exitcode != 0:
            print(f"{case:>16} failed (exit {p.exitcode})")
            continue
        name, n, t_ours, t_theirs, t_scat, peak = queue.get()
        print(f"{name:>16} {n:>6} {t_ours:>20.3f} {t_theirs:>15.3f} {t_theirs / t_ours:>6.2f} {t_scat:>17.3f} "
              f"{peak:>8.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])

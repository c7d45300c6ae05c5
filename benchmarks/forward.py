"""Forward-model benchmark: prints tables (one torch thread; each row measured in the same run).

1. Debye I(Q) of spherical Au nanoparticles (Q 1–25 Å⁻¹ in 0.05 steps) against DebyeCalculator 1.1.1 on the CPU:
   forward, forward+backward (gradient w.r.t. positions), peak extra memory (RSS high-water mark of a fresh
   process per row), and the fast path's errors against the exact float64 path (value: max |ΔI| / max I;
   gradient: relative L2), the exact path being evaluated only up to 1,100 atoms.
2. Real-space G(r) to 30 Å of periodic boxes (0.05 atoms/Å³): neighbour-list build and G(r) forward, forward +
   backward with the list reused.
3. Whole commands (what a user or a lab's scheduler waits for, start-up included; best of 3, one thread): the
   Debye I(Q) of a 20,000-atom Au sphere read from an xyz file and written as CSV, by ``scatterfit simulate``
   and by a DebyeCalculator script doing the same, and ``scatterfit --help``.

On a GPU (``--device cuda``) both programs run on the device; the peak is then the extra GPU memory
(torch.cuda.max_memory_allocated) and timings synchronise the device.

Usage: python benchmarks/forward.py [--threads T] [--device D] [--block P] [--periodic 0|1] [--commands 0|1] [N ...]
       (default 1 thread, cpu, the device's default pairs per block (histogram.default_pairs_per_block);
        100 1000 5000 20000 atoms)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def best_of(fn, repeat, device="cpu"):
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def _peak_start(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_end(device: str, base: float) -> float:
    """Extra peak memory, MB: GPU allocations on a GPU, resident-set high-water mark on the CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20 - base
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base


def _row(n: int, threads: int, queue, device: str = "cpu", block: int | None = None) -> None:
    import torch

    torch.set_num_threads(threads)
    from debyecalculator import DebyeCalculator

    from scatterfit import Structure
    from scatterfit.scattering.debye import debye_intensity

    atoms = gold_sphere(n)
    s = Structure.from_ase(atoms).to(device)
    q = torch.arange(*Q, dtype=torch.float64, device=device)
    repeat = 3 if n <= 5000 else 1
    kw = dict(pairs_per_block=block)
    warm = Structure.from_ase(gold_sphere(50)).to(device)  # load the compiled kernels before the memory baseline
    wp = warm.positions.clone().requires_grad_(True)
    debye_intensity(warm.with_(positions=wp), q, **kw).sum().backward()
    base = _peak_start(device)
    debye_intensity(s, q, **kw)
    t_fwd = best_of(lambda: debye_intensity(s, q, **kw), repeat, device)
    pos = s.positions.clone().requires_grad_(True)

    def ours_fb():
        pos.grad = None
        debye_intensity(s.with_(positions=pos), q, **kw).sum().backward()

    t_fb = best_of(ours_fb, repeat, device)
    peak = _peak_end(device, base)
    dc = DebyeCalculator(qmin=Q[0], qmax=Q[1], qstep=Q[2], biso=float(s.biso[0]), device=device)
    dc.iq(atoms)
    t_dc = best_of(lambda: dc.iq(atoms), repeat, device)
    xyz = torch.tensor(atoms.positions, dtype=torch.float32, device=device, requires_grad=True)

    def dc_fb():
        xyz.grad = None
        out = dc.iq((atoms.get_chemical_symbols(), xyz), keep_on_device=True)
        out[1].sum().backward()

    try:
        t_dc_fb = best_of(dc_fb, repeat, device)
        if xyz.grad is None:
            t_dc_fb = float("nan")
    except Exception:
        t_dc_fb = float("nan")
    err_v = err_g = float("nan")
    if n <= 1100:
        ie = debye_intensity(s, q, method="exact")
        err_v = float((ie - debye_intensity(s, q, **kw)).abs().max() / ie.abs().max())
        pe = s.positions.clone().requires_grad_(True)
        debye_intensity(s.with_(positions=pe), q, method="exact").sum().backward()
        ours_fb()
        err_g = float((pe.grad - pos.grad).norm() / pe.grad.norm())
    queue.put((len(s), t_fwd, t_dc, t_fb, t_dc_fb, peak, err_v, err_g))


def _periodic_row(n: int, threads: int, queue, device: str = "cpu", block: int | None = None) -> None:
    import torch

    torch.set_num_threads(threads)
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.neighbours import NeighbourCache
    from scatterfit.testing import random_box

    box = random_box(n, 0.05, numbers=(14,), min_dist=0.0, seed=0).to(device)
    r = torch.arange(0.01, 30.0, 0.01, dtype=torch.float64, device=device)
    cache = NeighbourCache(skin=0.5)
    kw = dict(neighbour_cache=cache, pairs_per_block=block)
    t = time.perf_counter()
    pdf(box, r, **kw)
    _sync(device)
    t_first = time.perf_counter() - t
    t_fwd = best_of(lambda: pdf(box, r, **kw), 2, device)
    pos = box.positions.clone().requires_grad_(True)
    t_fb = best_of(lambda: pdf(box.with_(positions=pos), r, **kw).sum().backward(), 2, device)
    queue.put((n, len(cache._pairs.i), t_first - t_fwd, t_fwd, t_fb))


def run(target, n, threads, device="cpu", block=None):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(n, threads, queue, device, block))
    proc.start()
    result = queue.get()
    proc.join()
    return result


_DC_SCRIPT = """
import sys
import numpy as np
import torch
torch.set_num_threads(1)
from debyecalculator import DebyeCalculator
q, i = DebyeCalculator(qmin={qmin}, qmax={qmax}, qstep={qstep}, biso=0.3, device="cpu").iq(sys.argv[1])
np.savetxt(sys.argv[2], np.column_stack([q, i]), delimiter=",")
"""


def _command_seconds(command: list[str], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs of ``command`` (one thread), s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def commands_table(n: int = 20000) -> None:
    """Table 3: whole commands against a DebyeCalculator script on the same xyz file."""
    import ase.io

    bin_dir = Path(sys.executable).parent
    scatterfit = str(bin_dir / "scatterfit")
    with tempfile.TemporaryDirectory() as folder:
        atoms = gold_sphere(n)
        atoms.pbc, atoms.cell = False, None
        xyz = str(Path(folder) / "au.xyz")
        ase.io.write(xyz, atoms, format="xyz")
        ours = _command_seconds([scatterfit, "simulate", xyz, "--kind", "iq", "--qmin", str(Q[0]), "--qmax",
                                 str(Q[1]), "--qstep", str(Q[2]), "--biso", "0.3", "--out", f"{folder}/ours.csv"])
        script = _DC_SCRIPT.format(qmin=Q[0], qmax=Q[1], qstep=Q[2])
        theirs = _command_seconds([sys.executable, "-c", script, xyz, f"{folder}/dc.csv"])
        helps = _command_seconds([scatterfit, "--help"])
    print(f"\nWhole commands, Debye I(Q) of a {len(atoms)}-atom Au sphere from an xyz file to CSV (best of 3, "
          "one thread)")
    print(f"{'command':>44} {'s':>7}")
    print(f"{'scatterfit simulate --kind iq':>44} {ours:>7.2f}")
    print(f"{'DebyeCalculator script':>44} {theirs:>7.2f}")
    print(f"{'DebyeCalculator / scatterfit':>44} {theirs / ours:>7.2f}")
    print(f"{'scatterfit --help':>44} {helps:>7.2f}")


def main(sizes, threads: int = 1, device: str = "cpu", block: int | None = None, periodic: int = 1,
         commands: int = 1) -> None:
    print(f"Debye I(Q), Au spheres, Q 1-25/0.05 Å⁻¹ (480 points), {device}, {threads} thread(s) for both programs; "
          f"DC = DebyeCalculator 1.1.1 float32; torch path blocks of {block or 'default'} pairs")
    print(f"{'atoms':>7} {'fwd s':>8} {'DC fwd s':>9} {'ratio':>6} {'f+b s':>8} {'DC f+b s':>9} {'ratio':>6} "
          f"{'peak MB':>8} {'val err':>8} {'grad err':>8}")
    for n in sizes:
        na, tf, tdc, tfb, tdcfb, peak, ev, eg = run(_row, n, threads, device, block)
        print(f"{na:>7} {tf:>8.3f} {tdc:>9.3f} {tdc / tf:>6.2f} {tfb:>8.3f} {tdcfb:>9.3f} {tdcfb / tfb:>6.2f} "
              f"{peak:>8.0f} {ev:>8.1e} {eg:>8.1e}")
    if commands and device == "cpu":
        commands_table()
    if not periodic:
        return
    print(f"\nReal-space G(r), 0.01-30 Å, periodic Si boxes at 0.05 atoms/Å³, {device}, {threads} thread(s)")
    print(f"{'atoms':>7} {'pairs':>10} {'list s':>8} {'G fwd s':>8} {'G f+b s':>8}")
    for n in (1000, 10000):
        na, npairs, tl, tf, tfb = run(_periodic_row, n, threads, device, block)
        print(f"{na:>7} {npairs:>10} {tl:>8.2f} {tf:>8.2f} {tfb:>8.2f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {"--threads": 1, "--device": "cpu", "--block": None, "--periodic": 1, "--commands": 1}
    while args[:1] and args[0] in opts:
        opts[args[0]] = args[1] if args[0] == "--device" else int(args[1])
        args = args[2:]
    main([int(a) for a in args] or [100, 1000, 5000, 20000], opts["--threads"], opts["--device"], opts["--block"],
         opts["--periodic"], opts["--commands"])

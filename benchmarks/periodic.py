"""Large periodic boxes: the G(r) of Ni supercells of 500, 4,000, 32,000 and about 100,000 atoms to 30 Å (Qmax 25,
Uiso 0.005, r step 0.01 Å) on one thread, each size in a fresh process: the first call (what a user waits for),
a forward + backward call, and the process's peak memory; against PDFfit2 1.5.1 in the same run (500 and 4,000
atoms; beyond, it takes minutes). Pairs are found by cell lists at each pass (nothing stored); the stored
neighbour list they replace is timed where it fits in memory, and the two G(r) are compared.

Prints a table, the exponent of the first call's time in N (a log-log fit) and the largest difference between
the cell-list and neighbour-list G(r) relative to the pattern's maximum.

Run:  python benchmarks/periodic.py [--sizes 500,4000,32000,108000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

A = 3.524  # Å, Ni
R = np.arange(1.0, 30.0 + 1e-9, 0.01)
UISO = 0.005


def _supercell(n_atoms: int):
    from ase.build import bulk

    k = max(1, round((n_atoms / 4) ** (1 / 3)))
    return bulk("Ni", "fcc", a=A, cubic=True).repeat(k)


def _one(n_atoms: int, mode: str) -> dict:
    """In this (fresh) process: time and peak memory of G(r) by ``mode`` ("cells", "list" or "pdffit2")."""
    import torch

    torch.set_num_threads(1)
    atoms = _supercell(n_atoms)
    out = {"n": len(atoms), "mode": mode}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "pdffit2":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "scattering"))
        from test_pdf import _pdffit2_gr

        t = time.perf_counter()
        g = _pdffit2_gr(atoms, R, UISO, qmax=25.0)
        out["first_s"] = time.perf_counter() - t
    else:
        from scatterfit.optim.executor import reuse_freed_memory
        from scatterfit.scattering.pdf import pdf
        from scatterfit.structure import Structure
        from scatterfit.structure.neighbours import neighbours

        reuse_freed_memory()
        pdf(Structure.from_ase(_supercell(4)).with_uiso(UISO), torch.as_tensor(R[:50]), qmax=25.0)  # compile
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        s = Structure.from_ase(atoms).with_uiso(UISO)
        r = torch.as_tensor(R)
        t = time.perf_counter()
        if mode == "list":
            pairs = neighbours(s, 37.0)  # beyond the engine's range (rmax + ripples + peak widths): it filters
            out["pairs"] = len(pairs)
            g = pdf(s, r, qmax=25.0, pairs=pairs)
        else:
            g = pdf(s, r, qmax=25.0)
        out["first_s"] = time.perf_counter() - t
        positions = s.positions.clone().requires_grad_()
        t = time.perf_counter()
        moved = s.with_(positions=positions)
        value = pdf(moved, r, qmax=25.0, pairs=pairs) if mode == "list" else pdf(moved, r, qmax=25.0)
        (value * value).sum().backward()
        out["forward_backward_s"] = time.perf_counter() - t
        g = g.detach().numpy()
    out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    out["g"] = np.asarray(g).tolist()
    return out


def _run(n_atoms: int, mode: str) -> dict | None:
    done = subprocess.run([sys.executable, __file__, "--one", str(n_atoms), mode], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  {mode} at {n_atoms} atoms failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,4000,32000,108000")
    parser.add_argument("--one", nargs=2)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(int(args.one[0]), args.one[1])))
        return
    sizes = [int(v) for v in args.sizes.split(",")]
    rows, cells = [], {}
    for n in sizes:
        cells[n] = _run(n, "cells")
        listed = _run(n, "list") if n <= 4000 else None  # 32,000 atoms: 1.6e8 pairs, about 6.5 GB of list
        ref = _run(n, "pdffit2") if n <= 4000 else None
        rows.append((n, cells[n], listed, ref))
    print(f"{'atoms':>7} {'cells: first s':>14} {'fwd+bwd s':>9} {'peak MB':>8} {'list: first s':>13} "
          f"{'peak MB':>8} {'PDFfit2 s':>9} {'cells/PDFfit2':>13} {'max|Δ| cells−list':>17}")
    for n, c, listed, ref in rows:
        if c is None:
            continue
        diff = "-"
        if listed is not None:
            a, b = np.asarray(c["g"]), np.asarray(listed["g"])
            diff = f"{np.abs(a - b).max() / np.abs(b).max():.1e}"
        ratio = f"{c['first_s'] / ref['first_s']:.2f}×" if ref else "-"
        nan = float("nan")
        list_s, list_mb = (listed["first_s"], listed["peak_mb"]) if listed else (nan, nan)
        print(f"{c['n']:>7} {c['first_s']:>14.2f} {c['forward_backward_s']:>9.2f} {c['peak_mb']:>8.0f} "
              f"{list_s:>13.2f} {list_mb:>8.0f} {ref['first_s'] if ref else nan:>9.2f} {ratio:>13} {diff:>17}")
    done = [(c["n"], c["first_s"]) for c in cells.values() if c]
    if len(done) >= 2:
        x, y = np.log([n for n, _ in done]), np.log([t for _, t in done])
        print(f"first call ∝ N^{np.polyfit(x, y, 1)[0]:.2f} over {done[0][0]}–{done[-1][0]} atoms")
    print(f"(one thread; r {R[0]:g}–{R[-1]:g} Å step 0.01, Qmax 25, Uiso {UISO})")


if __name__ == "__main__":
    main()

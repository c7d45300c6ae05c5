"""The Ni.gr fits quoted in README.md: PDFgui's parameter set, with and without qbroad, from a = 3.60 Å over
1.5–30 Å with the default r-range ramp, by Levenberg–Marquardt (the default for such a refinement) and by
L-BFGS, against PDFfit2 1.5.1 in the same process; then the whole `scatterfit refine examples/nickel.toml`
command. Prints a table with the time ratio to PDFfit2 (one torch thread).

Run:  python benchmarks/refine_ni.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from ase.build import bulk

from scatterfit.datasets import cmi_example
from scatterfit.io import load_dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import pdf_range_ramp, refine
from scatterfit.optim.executor import reuse_freed_memory
from scatterfit.scattering.models import PDFModel
from scatterfit.structure import Structure
from scatterfit.structure.parametrisation import Parametrisation
from scatterfit.testing import pdffit2_nickel_reference

ROOT = Path(__file__).resolve().parents[1]


def _scatterfit(data, free, optimizer):
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.60, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, xmin=1.5, xmax=30.0, name="Ni.gr")])
    t = time.perf_counter()
    res = refine(loss, Parametrisation(start, free=free), pdf_range_ramp(free, optimizer))
    return res, time.perf_counter() - t


def main() -> None:
    torch.set_num_threads(1)
    reuse_freed_memory()  # as the command line does
    data = load_dataset(cmi_example("pdf/ch03NiModelling/data/Ni.gr"))
    _scatterfit(data, ["lattice"], "lm")  # warm-up: imports, numba kernels
    header = f"{'fit':<44} {'Rw':>7} {'a':>8} {'Uiso':>8} {'qdamp':>7} {'delta2':>7} {'qbroad':>7} {'time s':>7} " \
             f"{'/PDFfit2':>8}"
    print(header)
    for extra in ([], ["qbroad"]):
        free = ["lattice", "biso", "qdamp", "delta2", *extra]
        t = time.perf_counter()
        ref = pdffit2_nickel_reference(data, qbroad=bool(extra))
        t_ref = time.perf_counter() - t
        label = "+qbroad" if extra else ""
        print(f"{'PDFfit2 1.5.1 (from a = 3.52) ' + label:<44} {ref['rw']:>7.4f} {ref['a']:>8.4f} "
              f"{ref['uiso']:>8.5f} {ref['qdamp']:>7.4f} {ref['delta2']:>7.3f} {ref.get('qbroad', 0.0):>7.4f} "
              f"{t_ref:>7.2f} {1.0:>8.2f}")
        for optimizer in ("lm", "lbfgs"):
            res, dt = _scatterfit(data, free, optimizer)
            p = res.parameters()
            print(f"{'scatterfit ' + optimizer + ' ' + label:<44} {res.terms['Ni.gr'].breakdown['rw']:>7.4f} "
                  f"{p['a']:>8.4f} {p['Uiso_Ni']:>8.5f} {p['qdamp']:>7.4f} {p['delta2']:>7.3f} {p['qbroad']:>7.4f} "
                  f"{dt:>7.2f} {dt / t_ref:>8.2f}")
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(ROOT / "examples" / "nickel.toml"),
                        "--out", str(Path(folder) / "ni")], check=True, capture_output=True)
    print(f"whole command `scatterfit refine examples/nickel.toml`: {time.perf_counter() - t:.1f} s "
          "(start-up, refinement, uncertainties, report)")


if __name__ == "__main__":
    main()

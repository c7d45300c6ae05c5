"""C60 from random atoms without symmetry: examples/c60_free_start.toml run from several random starts (molecule
seeds), one table row each.

Basin hopping is chaotic, so one run says little; this script reports the spread. Columns: seed, Rw, how many C
have three C neighbours within 1.7 Å, the number of bonds, bond length range, the share of bonds in 1.38–1.48 Å,
the number of three-membered rings, wall time. The data are the diffpy team's simulated C60.iq (diffpy.cmi).

Usage: python benchmarks/c60_starts.py [SEED ...]   (default seeds 0 1 2 3 4; about a minute each here)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "c60_free_start.toml"


def checks(structure) -> dict:
    """Coordination, bonds (< 1.7 Å) and three-membered rings of a refined carbon cluster."""
    pos = structure.positions.detach().cpu().numpy()
    d = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    bonded = d < 1.7
    lengths = d[np.triu(bonded)]
    adjacency = bonded.astype(int)
    triangles = int(np.trace(adjacency @ adjacency @ adjacency) // 6)
    # four-membered rings: closed 4-walks minus the degenerate ones (back-and-forth over one or two bonds)
    a2 = adjacency @ adjacency
    degree = adjacency.sum(1)
    squares = int((np.trace(a2 @ a2) - 2 * (degree**2).sum() + degree.sum()) // 8)
    return {"three": int((bonded.sum(1) == 3).sum()), "bonds": int(lengths.size),
            "lo": float(lengths.min()), "hi": float(lengths.max()),
            "in_range": float(((lengths >= 1.38) & (lengths <= 1.48)).mean()), "triangles": triangles,
            "squares": squares}


def run(seed: int) -> dict:
    import torch

    from scatterfit.commands.refine import run_refine

    torch.set_num_threads(1)
    text = EXAMPLE.read_text().replace("seed = 0 }", f"seed = {seed} }}")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c60.toml"
        config.write_text(text)
        t = time.perf_counter()
        result = run_refine(config, out=Path(tmp) / "out")
        wall = time.perf_counter() - t
    return {"seed": seed, "rw": result.terms["C60"].breakdown["rw"], "wall": wall, **checks(result.structure)}


def main(seeds) -> None:
    rows = [run(s) for s in seeds]
    print(f"\n{'seed':>4} {'Rw':>7} {'3-coord':>8} {'bonds':>6} {'bond range Å':>14} {'in 1.38-1.48':>12} "
          f"{'3-rings':>7} {'s':>6}")
    for r in rows:
        print(f"{r['seed']:>4} {r['rw']:>7.4f} {r['three']:>5}/60 {r['bonds']:>6} {r['lo']:>6.3f}–{r['hi']:<6.3f} "
              f"{r['in_range']:>11.0%} {r['triangles']:>7} {r['wall']:>6.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [0, 1, 2, 3, 4])

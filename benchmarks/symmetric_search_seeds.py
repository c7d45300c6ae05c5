"""How repeatable the symmetric cluster searches are: examples/keggin.toml, c60.toml or c60_xtb.toml run with other
search seeds (the swarm's and the random starts'), one table row per seed.

    python benchmarks/symmetric_search_seeds.py c60 0 1 2        # about a minute per seed here
    python benchmarks/symmetric_search_seeds.py c60_xtb 2          # the same with the GFN2-xTB last stage
    python benchmarks/symmetric_search_seeds.py keggin 0 1        # about five minutes per seed

Columns: seed, chosen candidate, Rw, the cage checks (C60: three-coordinated C, bonds, three- and
four-membered rings, share of bonds in 1.38–1.48 Å; Keggin: W–O neighbours per W, W with four W at 3.1–3.8 Å,
O bound to 0/1/2/3 W), wall time. One torch and one numba thread, as the CLI runs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str]) -> None:
    import numba
    import torch

    from scatterfit.commands.search import run_search
    from scatterfit.config import load_config

    if not argv or argv[0] not in ("c60", "c60_xtb", "keggin"):
        raise SystemExit("usage: python benchmarks/symmetric_search_seeds.py c60|c60_xtb|keggin [SEED ...]")
    case, seeds = argv[0], [int(s) for s in argv[1:]] or [0, 1, 2]
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    rows = []
    for seed in seeds:
        cfg = load_config(HERE.parent / "examples" / f"{case}.toml")
        cfg.search["seed"] = seed
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_search(cfg, Path(tmp))
        structure = result.refined.structure
        rw = next(tv.breakdown["rw"] for tv in result.refined.terms.values() if "rw" in tv.breakdown)
        if case.startswith("c60"):
            from c60_starts import checks

            c = checks(structure)
            found = (f"{c['three']}/60 three-coordinated, {c['bonds']} bonds, {c['triangles']} three- and "
                     f"{c['squares']} four-rings, {c['in_range']:.0%} in 1.38-1.48 A")
        else:
            from keggin_reference import keggin_topology

            t = keggin_topology(structure)
            found = (f"W-O per W {sorted(set(t['W-O']))}, {t['W-W'].count(4)}/12 W with four W, "
                     f"O by 0/1/2/3 W {t['O by W count']}")
        rows.append((seed, result.best, rw, found, time.perf_counter() - t0))
    print(f"\n{'seed':>4}  {'Rw':>7}  {'time':>6}  candidate / checks")
    for seed, best, rw, found, wall in rows:
        print(f"{seed:>4}  {rw:7.4f}  {wall:5.0f} s  {best}\n{'':>23}{found}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Reference for examples/keggin.toml: the loss that search minimises, evaluated from a textbook α-Keggin
geometry instead of random atoms. Tells what Rw the data and model allow when the cage is right, and which
heteroatom (P, Si or none) the data prefer.

    python benchmarks/keggin_reference.py [--steps 300]
    python benchmarks/keggin_reference.py --symmetric out/keggin   # after scatterfit refine examples/keggin.toml

The second form reruns the search's best candidate (from out/keggin/search.json) through its short refinement
and the first final stage only, the one that keeps the point group, and prints that symmetric model's checks
and W–W distances (the example's result is the later stage, with every atom free).

The start is built, not fitted: 12 W on a cuboctahedron (W–W 3.55 Å), a terminal O 1.70 Å out from each W,
24 bridging O 1.92 Å from both W of a cuboctahedron edge, 4 μ4-O on the tetrahedral axes 1.53 Å from the
centre, and the heteroatom at the centre. Then positions and Biso are refined with keggin.toml's terms.
"""

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from scatterfit.analysis.chemistry import chemistry_report
from scatterfit.config import load_config
from scatterfit.config.builders import build_datasets, build_loss
from scatterfit.optim import Stage, refine
from scatterfit.structure import Structure
from scatterfit.structure.parametrisation import Parametrisation

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "keggin.toml"


def textbook_keggin(heteroatom: str | None, w_radius: float = 3.55) -> Structure:
    """α-Keggin [XW12O40] from a cuboctahedron of W (Td symmetry), X = heteroatom or None."""
    vertices = {tuple(a * b for a, b in zip(p, s)) for p in itertools.permutations([1, 1, 0])
                for s in itertools.product([1, -1], repeat=3)}
    w = np.array(sorted(vertices), dtype=float)
    w *= w_radius / np.linalg.norm(w, axis=1)[:, None]
    positions, numbers = [], []
    for x in w:  # terminal O
        positions.append(x * (w_radius + 1.70) / w_radius), numbers.append(8)
    for i, j in itertools.combinations(range(12), 2):  # bridging O over the 24 cuboctahedron edges
        if abs(np.linalg.norm(w[i] - w[j]) - w_radius) < 1e-6:
            mid = (w[i] + w[j]) / 2
            half = np.linalg.norm(w[i] - w[j]) / 2
            positions.append(mid + mid / np.linalg.norm(mid) * np.sqrt(1.92**2 - half**2)), numbers.append(8)
    for t in [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]:  # μ4-O of the central tetrahedron
        positions.append(np.array(t) / np.sqrt(3) * 1.53), numbers.append(8)
    positions += list(w)
    numbers += [74] * 12
    if heteroatom:
        positions.append(np.zeros(3)), numbers.append({"P": 15, "Si": 14}[heteroatom])
    return Structure(torch.tensor(np.array(positions)), torch.tensor(numbers))


def keggin_checks(structure: Structure) -> dict:
    """The issue's criteria: W six-coordinated by O (1.7–2.4 Å), four W neighbours at 3.3–3.8 Å."""
    report = chemistry_report(structure, cutoffs={"W-O": 2.4, "W-W": 3.8, "P-O": 1.8, "Si-O": 1.9, "O-O": 2.0})
    pos, z = structure.positions.detach().numpy(), structure.numbers.numpy()
    w = pos[z == 74]
    d = np.linalg.norm(w[:, None] - w[None], axis=2)
    four_w = int((((d > 3.3) & (d < 3.8)).sum(1) == 4).sum())
    return {"W six-coordinated": report["coordination"]["W"]["O"].get(6, 0), "W with 4 W at 3.3-3.8 A": four_w}


def keggin_topology(structure) -> dict:
    """The α-Keggin cage in numbers: W–O bonds ≤ 2.4 Å per W, W neighbours of each W within 3.1–3.8 Å, and how
    many O bind one, two and three W (12 terminal, 24 bridging, 4 central in the Keggin ion)."""
    pos, z = structure.positions.detach().numpy(), structure.numbers.numpy()
    w, o = pos[z == 74], pos[z == 8]
    wo = np.linalg.norm(w[:, None] - o[None], axis=-1) < 2.4
    ww = np.linalg.norm(w[:, None] - w[None], axis=-1)
    return {"W-O": sorted(wo.sum(1).tolist()), "W-W": sorted(((ww > 3.1) & (ww < 3.8)).sum(1).tolist()),
            "O by W count": np.bincount(wo.sum(0), minlength=4).tolist()}


def symmetric_stage(out_dir: Path) -> None:
    """The best candidate of a finished keggin.toml search refined with its point group kept."""
    import json

    import numba

    from scatterfit.config.builders import build_evaluator

    torch.set_num_threads(1)
    numba.set_num_threads(1)  # as the CLI ran the search
    evaluator, space, _, final = build_evaluator(load_config(CONFIG))
    best = json.loads((out_dir / "search.json").read_text())["best"]
    result, value, terms, structure = evaluator.refine(best, space.key(best), [*evaluator.stages, final[0]])
    pos, z = structure.positions.detach().numpy(), structure.numbers.numpy()
    w = pos[z == 74]
    ww = np.linalg.norm(w[:, None] - w[None], axis=-1)
    wo = np.linalg.norm(w[:, None] - pos[z == 8][None], axis=-1)
    o_by_w = keggin_topology(structure)["O by W count"]
    print(f"best candidate {best}, point group kept: Rw {terms['Keggin'].breakdown['rw']:.4f}, loss {value:.4f}")
    print(f"  W-O neighbours (< 2.4 A) per W: {sorted((wo < 2.4).sum(1).tolist())}; W-O {wo[wo < 2.4].min():.3f}-"
          f"{wo[wo < 2.4].max():.3f} A; O bound to 0/1/2/3 W: {o_by_w}")
    nearest = sorted({tuple(round(float(d), 3) for d in np.sort(row)[1:5]) for row in ww})
    print(f"  the four nearest W of each W: {nearest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--symmetric", type=Path, default=None, help="output folder of a keggin.toml search")
    args = parser.parse_args()
    if args.symmetric is not None:
        symmetric_stage(args.symmetric)
        return
    cfg = load_config(CONFIG)
    loss = build_loss(cfg, build_datasets(cfg))
    print(f"{'heteroatom':>10}  {'Rw':>7}  {'loss':>7}  {'W 6-coord':>9}  {'W with 4 W':>10}  {'time':>6}")
    for x in ("P", "Si", None):
        t0 = time.perf_counter()
        start = textbook_keggin(x).with_uiso(0.005)
        param = Parametrisation(start, free=["positions", "biso"], values={"qdamp": 0.02}, bounds={"positions": 10.0})
        result = refine(loss, param, [Stage("lbfgs", free=["biso"], steps=50), Stage("lbfgs", steps=args.steps)])
        checks = keggin_checks(result.structure)
        print(f"{x or 'none':>10}  {result.terms['Keggin'].breakdown['rw']:7.4f}  {result.loss:7.4f}  "
              f"{checks['W six-coordinated']:>6}/12  {checks['W with 4 W at 3.3-3.8 A']:>7}/12  "
              f"{time.perf_counter() - t0:5.0f} s")


if __name__ == "__main__":
    main()

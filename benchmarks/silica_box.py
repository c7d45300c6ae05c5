"""The scale demonstration of issue 18: a 20,000-atom SiO2 box at the measured density (0.0664 atoms/Å³, a 67 Å
cell) refined against the shared NIMROD interference function with BKS and the Si–O coordination restraint (the
terms of examples/silica_glass.toml) by L-BFGS for 100 steps, on this machine's threads. Prints the wall time, the
loss evaluations, and per evaluation the time of each term (value and gradient, measured one term at a time on the
final box: scattering, energy, restraints).

Run:  python benchmarks/silica_box.py [--atoms 20000] [--steps 100]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "SiO2_glass_NIMROD_neutron_FQ.mint01"


def _config_text(n_atoms: int, steps: int) -> str:
    """examples/silica_glass.toml with ``n_atoms`` atoms, the data file's absolute path and one L-BFGS stage of
    ``steps`` steps with every term at the example's final weights."""
    text = (ROOT / "examples" / "silica_glass.toml").read_text()
    text = text.replace("n_atoms = 648", f"n_atoms = {n_atoms}")
    text = re.sub(r'file = "[^"]*SiO2_glass[^"]*"', f'file = "{DATA}"', text)
    text = text[:text.index("[[strategy]]")] + f'[[strategy]]\noptimizer = "lbfgs"\nsteps = {steps}\n'
    return re.sub(r"bounds = \{ positions = [0-9.]+ \}", "bounds = { positions = 40.0 }", text)


def _time_term(term, state_of, theta, repeats: int = 3) -> float:
    """Median seconds of one term's value and gradient at ``theta``."""
    import torch

    times = []
    for _ in range(repeats):
        x = theta.detach().clone().requires_grad_()
        t = time.perf_counter()
        value = term.evaluate(state_of(x)).value
        torch.autograd.grad(value, x, allow_unused=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--atoms", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA}: the shared NIMROD data are not here")
    import torch

    from scatterfit.config.builders import (
        build_datasets,
        build_loss,
        build_parametrisation,
        build_strategy,
        build_structure,
    )
    from scatterfit.config.schema import load_config
    from scatterfit.optim import refine
    from scatterfit.optim.executor import reuse_freed_memory

    reuse_freed_memory()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "silica_box.toml"
        path.write_text(_config_text(args.atoms, args.steps))
        cfg = load_config(path)
        t = time.perf_counter()
        structure = build_structure(cfg)
        built = time.perf_counter() - t
        datasets = build_datasets(cfg)
        loss = build_loss(cfg, datasets)
        param = build_parametrisation(cfg, structure, loss)
        stages = build_strategy(cfg, loss, param)
        evaluations = [0]
        data_term = loss.terms[0]  # evaluated once per loss evaluation
        evaluate = data_term.evaluate

        def counted(*a, **k):
            evaluations[0] += 1
            return evaluate(*a, **k)

        data_term.evaluate = counted
        t = time.perf_counter()
        result = refine(loss, param, stages)
        del data_term.evaluate
        wall = time.perf_counter() - t
    theta = result.theta.detach()
    split = {term.name: _time_term(term, param.state, theta) for term in loss.terms}
    total = sum(split.values())
    print(f"{len(structure)} atoms, cell {float(structure.cell[0, 0]):.1f} Å, {torch.get_num_threads()} threads; "
          f"random box built in {built:.1f} s")
    print(f"{args.steps} L-BFGS steps, {evaluations[0]} loss evaluations: {wall:.1f} s ({wall / args.steps:.2f} s per "
          f"step, {wall / max(evaluations[0], 1):.2f} s per evaluation); terms at the end: "
          + ", ".join(f"{k} {v.breakdown.get('rw', v.value):.4g}" for k, v in result.terms.items()))
    print(f"{'term':<28} {'s per evaluation':>16} {'share':>6}")
    for name, seconds in split.items():
        print(f"{name:<28} {seconds:>16.3f} {seconds / total:>6.0%}")


if __name__ == "__main__":
    main()

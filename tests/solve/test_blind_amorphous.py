"""Blind draws of the amorphous class: a random glass — a tetrahedral network (the bundled amorphous Si model with
a random group-14 element at its bond length) or a Lennard-Jones glass of a random element (a random packing
quenched to its inherent structure) — its G(r) through a random Q range with noise, and `solve` given only the
element: a glass or liquid must be ranked first in at least 9 of 10 draws (the seed printed on failure)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset
from scatterfit.solve.solve import solve

NETWORK = ("C", "Si", "Ge", "Sn")  # diamond-structured elements: their amorphous forms are tetrahedral networks
DENSE = ("Ni", "Cu", "Ar", "Pb", "Al", "Fe")  # simple liquids and metallic glasses


def _lennard_jones_glass(element: str, rng) -> "Structure":  # noqa: F821
    """1,000 atoms of ``element`` at a reduced density ρσ³ of 0.85–1.0 (σ from its nearest-neighbour distance),
    placed at random and quenched by L-BFGS on the Lennard-Jones energy to the nearest minimum."""
    from scatterfit.energy.pair import LennardJones
    from scatterfit.structure.builders import amorphous_box
    from scatterfit.structure.library import _bond

    sigma = _bond(element, element) / 2 ** (1 / 6)
    density = float(rng.uniform(0.85, 1.0)) / sigma**3
    core = (0.3 / (density * np.pi / 6)) ** (1 / 3)
    box = amorphous_box(element, 1000, density, min_dist=core, seed=int(rng.integers(1 << 30)))
    lj = LennardJones({f"{element}-{element}": {"epsilon": 0.05, "sigma": sigma}})
    x = box.positions.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=400, line_search_fn="strong_wolfe")

    def energy():
        opt.zero_grad()
        e = lj.energy(box.with_(positions=x))
        e.backward()
        return e

    opt.step(energy)
    return box.with_(positions=x.detach())


def _network(element: str, rng) -> "Structure":  # noqa: F821
    """The bundled amorphous Si network (216 atoms) repeated 2×2×2, as ``element`` at its diamond bond length."""
    from ase.data import atomic_numbers

    from scatterfit.structure import read_structure
    from scatterfit.structure.builders import supercell
    from scatterfit.structure.library import _bond

    box = supercell(read_structure(Path(__file__).parents[1] / "data" / "a-Si_216.extxyz"), (2, 2, 2))
    scale = _bond(element, element) / 2.35
    return box.with_(positions=box.positions * scale, cell=box.cell * scale,
                     numbers=torch.full_like(box.numbers, atomic_numbers[element]))


def _draw(seed: int):
    """(element, what the truth is, its G(r) Dataset): a network for even seeds, a Lennard-Jones glass for odd
    ones; Uiso 0.005–0.015 Å², Q from 0.3–0.8 to 18–25 Å⁻¹, 1 % noise; half the draws flagged absolute."""
    from scatterfit.scattering.models import BoxScatteringModel
    from scatterfit.structure.parametrisation import State

    rng = np.random.default_rng(seed)
    if seed % 2 == 0:
        element = NETWORK[rng.integers(len(NETWORK))]
        box, truth = _network(element, rng), "network"
    else:
        element = DENSE[rng.integers(len(DENSE))]
        box, truth = _lennard_jones_glass(element, rng), "Lennard-Jones glass"
    box = box.with_uiso(float(rng.uniform(0.005, 0.015)))
    qmin, qmax = float(rng.uniform(0.3, 0.8)), float(rng.uniform(18.0, 25.0))
    r = torch.arange(0.5, 30.0, 0.01, dtype=torch.float64)
    g = BoxScatteringModel("gr", qmin=qmin, qmax=qmax)(State(box, {}), r).detach().numpy()
    g = g + 0.01 * np.abs(g).max() * rng.standard_normal(len(g))
    metadata = {"qmin": qmin, "qmax": qmax, "absolute": bool(rng.integers(2))}
    return element, f"{truth} {element} ({len(box)} atoms, {metadata})", Dataset(r.numpy(), g, None, "gr", "angstrom",
                                                                              metadata=metadata)


def _check(seed: int) -> str | None:
    element, truth, data = _draw(seed)
    solution = solve({"sim": data}, element, potential=None)
    best = solution.ranked[0]["hypothesis"]
    if best.kind != "amorphous":
        return f"seed {seed}: truth {truth}, ranked first {best.kind} {best.label} (triage {solution.triage.classes})"
    return None


@pytest.mark.slow  # about 10 minutes
def test_blind_glasses_rank_a_glass_first():
    failures = [f for f in (_check(seed) for seed in range(10)) if f]
    assert len(failures) <= 1, "\n".join(failures)

"""Blind draws of the cluster class (slow): a random cluster that PyXtal generates (not solve's own builder), its
simulated X-ray G(r) with noise, and solve given only the pattern and the formula."""

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset

GROUPS = {6: "C2", 16: "D2", 18: "D3", 28: "T", 29: "Th", 30: "O", 31: "Td", 32: "Oh"}  # PyXtal's point-group numbers
ELEMENTS = ("Si", "Ge", "Sn", "Au", "Ag", "Cu", "Pt")
CLOSEST = 2.2  # Å: truths with a closer pair are drawn again (PyXtal's default tolerances allow 1.5 Å for Au)


def draw(seed: int):
    """(formula, point group, Dataset, the noise's Rw over 1.5–20 Å): a PyXtal random cluster of 8–24 atoms of one
    element in a random point group, Uiso 0.003–0.01 Å², its Debye G(r) (Q 0.7–20 Å⁻¹, qdamp 0.02 Å⁻¹) with
    noise of 1 % of its largest value."""
    from pyxtal import pyxtal

    from scatterfit.scattering.models import DebyeModel
    from scatterfit.structure import Structure

    rng = np.random.default_rng(seed)
    while True:
        group = int(rng.choice(list(GROUPS)))
        element = str(rng.choice(ELEMENTS))
        n = int(rng.integers(8, 25))
        cluster = pyxtal()
        try:
            cluster.from_random(0, group, [element], [n], random_state=int(rng.integers(1 << 30)))
        except Exception:  # PyXtal cannot split n into this group's orbits
            continue
        atoms = cluster.to_ase()
        d = atoms.get_all_distances()
        np.fill_diagonal(d, np.inf)
        if d.min() > CLOSEST:
            break
    s = Structure.from_ase(atoms).with_uiso(float(rng.uniform(0.003, 0.01)))
    r = torch.arange(0.5, 20.0, 0.01, dtype=torch.float64)

    class State:
        structure, params = s, {"qdamp": torch.tensor(0.02, dtype=torch.float64)}

    g = DebyeModel(kind="gr", qmin=0.7, qmax=20.0)(State, r).numpy()
    noise = 0.01 * np.abs(g).max() * rng.standard_normal(len(g))
    fitted = r.numpy() >= 1.5
    noise_rw = float(np.sqrt(np.sum(noise[fitted] ** 2) / np.sum((g + noise)[fitted] ** 2)))
    data = Dataset(r.numpy(), g + noise, None, "gr", "angstrom", metadata={"qmax": 20.0, "qmin": 0.7})
    return f"{element}{len(atoms)}", GROUPS[group], data, noise_rw


def check(seed: int) -> tuple[bool, bool, str]:
    """(a cluster is ranked first, its Rw is within FIT × the noise's: the structure itself was found, the line
    printed for the draw)."""
    from scatterfit.solve.solve import solve

    formula, group, data, noise_rw = draw(seed)
    solution = solve({"sim": data}, formula, potential=None)
    if not solution.ranked:
        return False, False, f"seed {seed}: truth {formula} in {group}: no hypothesis refined"
    best = solution.ranked[0]["hypothesis"]
    rw = best.rw["sim"]
    line = (f"seed {seed}: truth {formula} in {group} (noise Rw {noise_rw:.4f}); first {best.kind} {best.label} Rw "
            f"{rw:.4f}")
    print(line, flush=True)
    return best.kind == "cluster", best.kind == "cluster" and rw <= FIT * noise_rw, line


FIT = 1.5  # a cluster's Rw within this factor of the noise's: the structure found, not a lookalike


@pytest.mark.slow  # about 40 minutes (10 solves of 2–5 minutes each)
def test_blind_clusters():
    """The class is ranked first in at least 9 of 10 draws (what the issue asks); how often the symmetric search
    also finds the structure itself is printed (it is measured in the README, not asserted: a random cluster's
    basin is small, about 1 in 24 random starts in its own group reaches it)."""
    results = [check(seed) for seed in range(10)]
    misses = [line for first, _, line in results if not first]
    print(f"structure found in {sum(found for _, found, _ in results)} of 10 draws")
    assert len(misses) <= 1, misses

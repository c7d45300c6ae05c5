"""Blind draws of small-angle curves (slow): a random particle shape (sphere, prolate or oblate spheroid, rod,
disc) of random size, aspect and log-normal size spread, its curve computed independently of
scattering/shapes.py — the Debye equation of points filling each particle on a fine grid, summed over 24 sizes at
the quantiles of the distribution — with 2 % noise and a flat background; solve is given only the curve and the
element."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset

SHAPES = {"sphere": ("sphere", None), "prolate spheroid": ("spheroid", (1.6, 6.0)),
          "oblate spheroid": ("spheroid", (0.15, 0.6)), "rod": ("cylinder", (2.0, 8.0)),
          "disc": ("cylinder", (0.1, 0.45))}


SIZES = 24  # particle sizes at the log-normal's quantiles (k + ½)/SIZES, each one particle
POINTS = 20000  # at most about this many grid points per particle (the grid's first Bragg peak, 2π/spacing,
#                stays beyond 1.5 Å⁻¹, far above the curve's 0.35 Å⁻¹)


def draw(seed: int):
    """(label, parameters, Dataset): Q 0.005–0.35 Å⁻¹ (150 points, log-spaced); median radius 15–50 Å (rods and
    discs: the radius that keeps the longest dimension ≤ 300 Å), aspect within SHAPES' range, polydispersity
    0.05–0.25; the particles' grid spacing a sixth of the radius, at most 2.5 Å, unless the particle would hold
    more than POINTS points."""
    from scatterfit.scattering.debye import debye_intensity
    from scatterfit.structure import Structure
    from scatterfit.testing import filled_shape

    rng = np.random.default_rng(seed)
    label = str(rng.choice(list(SHAPES)))
    shape, span = SHAPES[label]
    aspect = 1.0 if span is None else float(np.exp(rng.uniform(*np.log(span))))
    radius = float(rng.uniform(15.0, 50.0))
    radius = min(radius, 150.0 / max(1.0, aspect))
    sigma = float(rng.uniform(0.05, 0.25))
    q = torch.as_tensor(np.geomspace(0.005, 0.35, 150))
    total = torch.zeros_like(q)
    quantiles = [NormalDist().inv_cdf((k + 0.5) / SIZES) for k in range(SIZES)]
    for size in radius * np.exp(sigma * np.array(quantiles)):
        volume = {"sphere": 4 / 3 * math.pi * size**3, "spheroid": 4 / 3 * math.pi * size**3 * aspect,
                  "cylinder": 2 * math.pi * size**3 * aspect}[shape]
        spacing = max(min(2.5, size / 6), (volume / POINTS) ** (1 / 3))
        xyz = filled_shape(shape, size, aspect, spacing)
        atoms = Structure(positions=torch.as_tensor(xyz), numbers=torch.full((len(xyz),), 6), cell=None)
        total += debye_intensity(atoms, q, radiation="unit") * (volume / len(xyz)) ** 2  # ∝ V² P
    i = 1e4 * (total / total[0]).numpy() + float(rng.uniform(0.0, 0.2))
    y = i * (1 + 0.02 * rng.standard_normal(len(i)))
    params = {"radius": radius, "aspect": aspect, "polydispersity": sigma}
    return label, params, Dataset(q.numpy(), y, 0.02 * i, "iq", "inv_angstrom", path=f"draw{seed}.dat")


def check(seed: int) -> str | None:
    """None when the drawn shape is ranked first, or within ΔBIC < 2 of the first (the verdict then says the two
    cannot be told apart), else what was ranked first."""
    from scatterfit.solve.solve import solve

    label, params, data = draw(seed)
    solution = solve({"curve": data}, "Au", potential=None)
    best = solution.ranked[0]["hypothesis"]
    found = {k: round(float(v), 3) for k, v in best.result.parameters().items()
             if k in ("radius", "aspect", "polydispersity")}
    tied = [row["hypothesis"].label for row in solution.ranked if row["delta_bic"] < 2.0]
    line = (f"seed {seed}: truth {label} {params}; first {best.label} {found} Rw {best.rw['curve']:.4f}; "
            f"within ΔBIC 2: {tied}")
    print(line)
    return None if any(t.startswith(label) for t in tied) else line


@pytest.mark.slow
def test_blind_small_angle_shapes():
    misses = [m for m in (check(seed) for seed in range(10)) if m]
    assert len(misses) <= 1, "\n".join(misses)

"""Helpers shared by the tests: small structures, named tolerances, gradient checks."""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.structure import Structure

FD_TOL = {"atol": 1e-6, "rtol": 1e-4}
"""Finite-difference tolerances for torch.autograd.gradcheck in float64."""


def random_cluster(n: int, *, numbers=(79,), radius: float | None = None, min_dist: float = 2.2, seed: int = 0,
                   dtype=torch.float64) -> Structure:
    """n atoms at random in a sphere, no pair closer than min_dist Å (rejection sampling)."""
    rng = np.random.default_rng(seed)
    radius = radius or (n ** (1 / 3)) * min_dist * 0.75
    pts: list[np.ndarray] = []
    while len(pts) < n:
        p = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(p) <= radius and all(np.linalg.norm(p - q) >= min_dist for q in pts):
            pts.append(p)
    z = [numbers[k % len(numbers)] for k in range(n)]
    return Structure(torch.tensor(np.array(pts), dtype=dtype), z)


def random_box(n: int, density: float, *, numbers=(14,), min_dist: float = 2.0, seed: int = 0,
               dtype=torch.float64) -> Structure:
    """A periodic cubic box of n atoms at number density `density` (atoms/Å³) with a minimum distance."""
    rng = np.random.default_rng(seed)
    length = (n / density) ** (1 / 3)
    pts: list[np.ndarray] = []
    tries = 0
    while len(pts) < n:
        tries += 1
        p = rng.uniform(0, length, 3)
        ok = True
        for q in pts:
            d = p - q
            d -= length * np.round(d / length)
            if np.linalg.norm(d) < min_dist:
                ok = False
                break
        if ok or tries > 200 * n:
            pts.append(p)
    z = [numbers[k % len(numbers)] for k in range(n)]
    return Structure(torch.tensor(np.array(pts), dtype=dtype), z, cell=torch.eye(3, dtype=dtype) * length,
                     pbc=(True, True, True))

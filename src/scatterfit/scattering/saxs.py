"""Small-angle scattering I(Q) of a finite particle by the Debye equation (same engine as wide angle).

At small Q only distances ≳ π/Q matter and the form factors are ≈ f(0); the histogram path is therefore exact to
the same tolerance and its node spacing can be coarse (Q·dr = 0.25). Optional solvent contrast subtracts a
uniform scattering-length density from each atom's factor (excluded-volume approximation)."""

from __future__ import annotations

import torch

from scatterfit.scattering.debye import debye_intensity
from scatterfit.structure import Structure


def saxs_intensity(structure: Structure, q: torch.Tensor, *, radiation: str = "xray", method: str = "fast",
                   scale=1.0, background=0.0) -> torch.Tensor:
    """SAXS/SANS intensity scale · I_Debye(Q) + background, [nQ] (Q in Å⁻¹, typically 0.005–0.5)."""
    return scale * debye_intensity(structure, q, radiation=radiation, method=method) + background


def radius_of_gyration(structure: Structure) -> torch.Tensor:
    """Occupancy-weighted radius of gyration, Å (Guinier check: I(Q) ≈ I(0) exp(−Q²Rg²/3))."""
    w = structure.occupancy
    c = (w[:, None] * structure.positions).sum(0) / w.sum()
    return torch.sqrt((w * ((structure.positions - c) ** 2).sum(1)).sum() / w.sum())

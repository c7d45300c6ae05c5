"""Tersoff bond-order potential for one element (carbon or silicon), torch-native, finite or periodic.

LAMMPS/ASE form (J. Tersoff, Phys. Rev. B 37, 6991 (1988); carbon: Phys. Rev. Lett. 61, 2879 (1988)):

    E = ½ Σ_i Σ_{j≠i} f_c(r_ij) [A e^{−λ1 r_ij} − b_ij B e^{−λ2 r_ij}]
    b_ij = (1 + β^n ζ_ij^n)^{−1/(2n)},  ζ_ij = Σ_{k≠i,j} f_c(r_ik) g(θ_ijk) exp[λ3^m (r_ij − r_ik)^m]
    g(θ) = γ (1 + c²/d² − c²/(d² + (cos θ − h)²))
    f_c(r) = 1 (r < R − D), ½ − ½ sin(π/2 (r − R)/D) (|r − R| ≤ D), 0 (r > R + D)

Units: Å, eV. The bond-angle term g penalises angles far from arccos(h) (≈ 125° for carbon, 127° for
silicon), so three-membered rings cost several eV: the chemistry a carbon cage or a tetrahedral network needs.
Tested against ASE's Tersoff calculator (ase.calculators.tersoff) on energies and forces.
"""

from __future__ import annotations

import math

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.geometry import atomic_number, triplets
from scatterfit.structure.neighbours import neighbours, pair_vectors
from scatterfit.structure.structure import Structure

# LAMMPS potentials/SiC.tersoff (C–C–C, Tersoff 1988) and Si.tersoff (Tersoff_2/T3)
PARAMETERS = {
    "C": {"m": 3.0, "gamma": 1.0, "lambda3": 0.0, "c": 38049.0, "d": 4.3484, "h": -0.57058, "n": 0.72751,
          "beta": 1.5724e-7, "lambda2": 2.2119, "B": 346.74, "R": 1.95, "D": 0.15, "lambda1": 3.4879,
          "A": 1393.6},
    "Si": {"m": 3.0, "gamma": 1.0, "lambda3": 0.0, "c": 100390.0, "d": 16.217, "h": -0.59825, "n": 0.78734,
           "beta": 1.1e-6, "lambda2": 1.7322, "B": 471.18, "R": 2.85, "D": 0.15, "lambda1": 2.4799,
           "A": 1830.8},
}
NAMES = tuple(PARAMETERS["C"])


def cutoff_function(r: torch.Tensor, big_r: float, big_d: float) -> torch.Tensor:
    """f_c(r): 1 inside R − D, a half sine wave to 0 at R + D (r in Å, any shape)."""
    x = ((r - big_r) / big_d).clamp(-1.0, 1.0)
    return 0.5 - 0.5 * torch.sin(0.5 * math.pi * x)


class Tersoff:
    """Args:
        element: "C" or "Si" (the parameter set); other atoms are ignored.
        parameters: overrides of the element's parameters (names as in PARAMETERS).
    """

    name = "tersoff"

    def __init__(self, element: str = "C", parameters: dict | None = None):
        if element not in PARAMETERS:
            raise ScatterfitError(f"tersoff: no parameters for '{element}' (have {', '.join(PARAMETERS)})")
        unknown = sorted(set(parameters or {}) - set(NAMES))
        if unknown:
            raise ScatterfitError(f"tersoff: unknown parameter(s) {unknown} (known: {', '.join(NAMES)})")
        self.z = atomic_number(element)
        self.p = {**PARAMETERS[element], **(parameters or {})}
        self.cutoff = self.p["R"] + self.p["D"]

    def energy(self, structure: Structure) -> torch.Tensor:
        """Total energy, eV (0-d tensor, differentiable in positions and cell)."""
        p = self.p
        sub = structure
        mask = structure.numbers == self.z
        if not bool(mask.all()):
            sub = structure.select(mask)
        nb = neighbours(sub, self.cutoff * (1 - 1e-9), full=True)
        if len(nb) == 0:
            return structure.positions.sum() * 0.0
        vec = pair_vectors(sub, nb)  # [P, 3], full list: each bond i→j once per direction
        r = torch.sqrt((vec * vec).sum(-1))  # [P]
        fc = cutoff_function(r, p["R"], p["D"])
        zeta = torch.zeros_like(r)
        a, b = triplets(nb)  # unordered bond pairs (i→j, i→k) sharing the centre i: both enter ζ_ij and ζ_ik
        if a.numel():
            cos = (vec[a] * vec[b]).sum(-1) / (r[a] * r[b])
            c2, d2 = p["c"] ** 2, p["d"] ** 2
            g = p["gamma"] * (1.0 + c2 / d2 - c2 / (d2 + (cos - p["h"]) ** 2))
            to_a, to_b = fc[b] * g, fc[a] * g
            if p["lambda3"] != 0.0:
                to_a = to_a * torch.exp((p["lambda3"] * (r[a] - r[b])) ** p["m"])
                to_b = to_b * torch.exp((p["lambda3"] * (r[b] - r[a])) ** p["m"])
            zeta = zeta.index_add(0, a, to_a).index_add(0, b, to_b)
        n = p["n"]
        bond_order = (1.0 + (p["beta"] * zeta.clamp_min(0.0)) ** n) ** (-0.5 / n)
        pair = fc * (p["A"] * torch.exp(-p["lambda1"] * r) - bond_order * p["B"] * torch.exp(-p["lambda2"] * r))
        return 0.5 * pair.sum()

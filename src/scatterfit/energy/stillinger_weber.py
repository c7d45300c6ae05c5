"""Stillinger–Weber potential for silicon (Phys. Rev. B 31, 5262 (1985)), torch-native, finite or periodic.

    E = Σ_{i<j} φ2(r_ij) + Σ_i Σ_{j<k} φ3(r_ij, r_ik, θ_jik)
    φ2(r) = A ε [B (σ/r)^p − (σ/r)^q] exp(σ / (r − aσ))
    φ3 = λ ε (cos θ_jik + 1/3)² exp(γσ / (r_ij − aσ)) exp(γσ / (r_ik − aσ))

Both terms vanish smoothly (with every derivative) at r = aσ. Units: Å, eV.
"""

from __future__ import annotations

import torch

from scatterfit.structure.geometry import atomic_number, triplets
from scatterfit.structure.neighbours import neighbours, pair_vectors
from scatterfit.structure.structure import Structure

SILICON = {"epsilon": 2.1683, "sigma": 2.0951, "A": 7.049556277, "B": 0.6022245584, "p": 4.0, "q": 0.0,
           "a": 1.80, "lambda": 21.0, "gamma": 1.20}


class StillingerWeber:
    """Args:
        element: the species the potential acts on (other atoms are ignored).
        parameters: overrides of the silicon parameter set ``SILICON``.
    """

    name = "stillinger-weber"

    def __init__(self, element="Si", parameters: dict | None = None):
        self.z = atomic_number(element)
        self.p = {**SILICON, **(parameters or {})}
        self.cutoff = self.p["a"] * self.p["sigma"]

    def energy(self, structure: Structure) -> torch.Tensor:
        p = self.p
        sub = structure
        mask = structure.numbers == self.z
        if not bool(mask.all()):
            sub = structure.select(mask)
        nb = neighbours(sub, self.cutoff * (1 - 1e-9), full=True)
        if len(nb) == 0:
            return structure.positions.sum() * 0.0
        vec = pair_vectors(sub, nb)
        r = torch.sqrt((vec * vec).sum(-1))
        eps, sig, rc = p["epsilon"], p["sigma"], self.cutoff
        inv = sig / r
        # full list counts each pair twice
        phi2 = p["A"] * eps * (p["B"] * inv ** p["p"] - inv ** p["q"]) * torch.exp(sig / (r - rc))
        e2 = 0.5 * phi2.sum()
        a, b = triplets(nb)
        if a.numel() == 0:
            return e2
        cos = (vec[a] * vec[b]).sum(-1) / (r[a] * r[b])
        radial = torch.exp(p["gamma"] * sig / (r - rc))
        e3 = (p["lambda"] * eps * (cos + 1.0 / 3.0) ** 2 * radial[a] * radial[b]).sum()
        return e2 + e3

"""The EnergyModel contract: a structure in, its potential energy (eV, 0-d tensor) out, differentiable with
respect to positions and cell, so forces (−∂E/∂x) and stress come from autograd.

Every model implements ``energy(structure)``; models that can evaluate several structures at once (a swarm)
also implement ``energies(structures)``. ``batch_energies`` picks whichever exists.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from scatterfit.structure.structure import Structure


class EnergyModel(Protocol):
    name: str

    def energy(self, structure: Structure) -> torch.Tensor:
        """Total potential energy, eV, 0-d tensor in the structure's dtype."""
        ...


def batch_energies(model, structures: Sequence[Structure]) -> torch.Tensor:
    """[B] energies (eV) of several structures, in one call where the model supports it."""
    if hasattr(model, "energies"):
        return model.energies(structures)
    return torch.stack([model.energy(s) for s in structures])


def forces(model, structure: Structure) -> torch.Tensor:
    """[N, 3] forces, eV/Å, as −∂E/∂x by autograd."""
    pos = structure.positions.detach().clone().requires_grad_(True)
    e = model.energy(structure.with_(positions=pos))
    (g,) = torch.autograd.grad(e, pos)
    return -g


class SumEnergy:
    """E = Σ_k E_k: e.g. Buckingham short-range plus Coulomb."""

    def __init__(self, models: Sequence, name: str | None = None):
        self.models = list(models)
        self.name = name or "+".join(m.name for m in self.models)

    def energy(self, structure: Structure) -> torch.Tensor:
        return sum(m.energy(structure) for m in self.models)

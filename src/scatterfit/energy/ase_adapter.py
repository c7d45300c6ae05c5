"""Any ASE calculator as a differentiable EnergyModel.

A custom autograd Function calls the calculator once per evaluation and returns its energy; the backward
pass uses the calculator's forces for ∂E/∂x and, for periodic structures whose cell is differentiated, its
stress σ (ASE convention σ = (1/V) ∂E/∂ε) for the cell:

    ∂E/∂x = −F,    ∂E/∂cell (at fixed cartesian x) = cell⁻ᵀ (V σ + xᵀ F)

which follows from ∂E/∂ε = xᵀ ∂E/∂x + cellᵀ ∂E/∂cell under a homogeneous strain of both.
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure


def _atoms(structure: Structure, positions: np.ndarray, cell: np.ndarray | None):
    from ase import Atoms

    periodic = cell is not None and any(structure.pbc)
    return Atoms(numbers=structure.numbers.cpu().numpy(), positions=positions,
                 cell=cell if periodic else None, pbc=structure.pbc if periodic else False)


class _CalculatorFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, cell, adapter, structure):
        pos = positions.detach().cpu().numpy().astype(np.float64)
        box = None if cell is None else cell.detach().cpu().numpy().astype(np.float64)
        atoms = _atoms(structure, pos, box)
        atoms.calc = adapter.calculator
        try:
            energy = float(atoms.get_potential_energy())
            f = np.asarray(atoms.get_forces(), dtype=np.float64)
            stress = None
            if box is not None and ctx.needs_input_grad[1]:
                try:
                    stress = np.asarray(atoms.get_stress(voigt=False), dtype=np.float64)
                except Exception as exc:  # noqa: BLE001 - calculators raise many types
                    raise ScatterfitError(f"{adapter.name}: the cell is refined but the calculator gives no "
                                          f"stress ({type(exc).__name__})") from None
        except ScatterfitError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ScatterfitError(f"{adapter.name}: calculator failed: {type(exc).__name__}: {exc}") from None
        ctx.save_for_backward(torch.as_tensor(f, dtype=positions.dtype))
        ctx.stress = stress
        ctx.pos, ctx.box = pos, box
        return torch.tensor(energy, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, grad):
        (f,) = ctx.saved_tensors
        g_pos = (-f * grad).to(grad.device)
        g_cell = None
        if ctx.stress is not None:
            volume = abs(np.linalg.det(ctx.box))
            gc = np.linalg.inv(ctx.box).T @ (volume * ctx.stress + ctx.pos.T @ f.cpu().numpy())
            g_cell = torch.as_tensor(gc, dtype=grad.dtype, device=grad.device) * grad
        return g_pos, g_cell, None, None


class ASECalculatorEnergy:
    """Wraps an ASE calculator (EMT, MACE, CHGNet's, a user's own) as an EnergyModel.

    Args:
        calculator: an ASE Calculator instance; it must give energy and forces (and stress when the cell of a
            periodic structure is refined).
        name: label in reports.
    """

    def __init__(self, calculator, name: str | None = None):
        self.calculator = calculator
        self.name = name or f"ase:{type(calculator).__name__}"

    def energy(self, structure: Structure) -> torch.Tensor:
        periodic = structure.cell is not None and any(structure.pbc)
        cell = structure.cell if periodic else None
        return _CalculatorFunction.apply(structure.positions, cell, self, structure)

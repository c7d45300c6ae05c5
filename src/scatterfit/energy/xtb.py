"""GFN2-xTB tight binding for molecules through tblite (Bannwarth, Ehlert & Grimme, JCTC 15, 1652 (2019)).

The energy (Hartree) and its analytic gradient (Hartree/Bohr) come from one tblite single point; a custom
autograd Function hands the gradient to torch. The SCF is capped at ``max_iter`` iterations: metal clusters
(where GFN2-xTB is not meant to be used) that do not converge raise a one-line error instead of hanging.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.units import Bohr as BOHR_ANGSTROM  # ASE's constants, so energies agree with ASE calculators exactly
from ase.units import Hartree as HARTREE_EV

from scatterfit.errors import ScatterfitError, require
from scatterfit.structure.structure import Structure


class _XTBFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, model, numbers):
        energy, gradient = model.singlepoint(numbers, positions.detach().cpu().numpy().astype(np.float64))
        ctx.save_for_backward(torch.as_tensor(gradient, dtype=positions.dtype, device=positions.device))
        return torch.tensor(energy, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return g * grad, None, None


class XTBEnergy:
    """Args:
        method: "GFN2-xTB" (default) or "GFN1-xTB".
        charge: total molecular charge, e.
        unpaired: number of unpaired electrons.
        max_iter: SCF iteration cap.
        accuracy: tblite accuracy multiplier (1 = default).
    """

    def __init__(self, method: str = "GFN2-xTB", charge: float = 0.0, unpaired: int = 0, max_iter: int = 250,
                 accuracy: float = 1.0):
        require("tblite.interface", "the xtb energy")
        if method not in ("GFN2-xTB", "GFN1-xTB"):
            raise ScatterfitError(f"xtb: unknown method '{method}' (use GFN2-xTB or GFN1-xTB)")
        self.method, self.charge, self.unpaired = method, float(charge), int(unpaired)
        self.max_iter, self.accuracy = int(max_iter), float(accuracy)
        self.name = method.lower()

    def singlepoint(self, numbers: np.ndarray, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and gradient ([N, 3] eV/Å) at cartesian ``positions`` (Å)."""
        from tblite.exceptions import TBLiteRuntimeError, TBLiteValueError
        from tblite.interface import Calculator

        try:
            calc = Calculator(self.method, numbers, positions / BOHR_ANGSTROM, charge=self.charge, uhf=self.unpaired)
            calc.set("verbosity", 0)
            calc.set("max-iter", self.max_iter)
            calc.set("accuracy", self.accuracy)
            res = calc.singlepoint()
        except (TBLiteRuntimeError, TBLiteValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ScatterfitError(f"{self.method}: no converged energy ({text}); GFN2-xTB is meant for molecules "
                                  "and does not converge for metal clusters: use the chgnet potential there") from None
        energy = float(res.get("energy")) * HARTREE_EV
        gradient = np.asarray(res.get("gradient"), dtype=np.float64) * HARTREE_EV / BOHR_ANGSTROM
        return energy, gradient

    def energy(self, structure: Structure) -> torch.Tensor:
        if structure.cell is not None and any(structure.pbc):
            raise ScatterfitError(f"{self.method} here is for molecules; the structure is periodic (use chgnet)")
        return _XTBFunction.apply(structure.positions, self, structure.numbers.cpu().numpy())

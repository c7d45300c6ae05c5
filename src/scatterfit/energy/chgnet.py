"""The default potential: CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), a universal machine-learning
interatomic potential whose pretrained weights ship inside its PyPI wheel, so it works offline.

CHGNet builds its crystal graph (neighbours within 6 Å, bonds within 3 Å) outside autograd; we build it from
the current structure on every call and then replace the graph's fractional coordinates and lattice by
tensors computed from our positions and cell, so autograd reaches both. Finite structures (molecules,
nanoparticles) are placed in a box with ``vacuum`` Å of empty space on every side, more than the 6 Å graph
cutoff, so no atom sees a periodic image. The network runs in float32; energies return in the structure's
dtype.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Sequence

import torch

from scatterfit.errors import ScatterfitError, require
from scatterfit.structure.structure import Structure


def load_chgnet(model_name: str = "0.3.0"):
    """The pretrained CHGNet model from the installed wheel (no download), quietly."""
    CHGNet = require("chgnet.model", "the chgnet potential (the default energy)").CHGNet
    with contextlib.redirect_stdout(io.StringIO()):
        model = CHGNet.load(model_name=model_name, use_device="cpu", verbose=False)
    model.eval()
    for parameter in model.parameters():  # inference only: no gradients for the weights
        parameter.requires_grad_(False)
    return model


class CHGNetEnergy:
    """Args:
        model: a loaded CHGNet model (default: the pretrained 0.3.0 weights).
        vacuum: empty space around finite structures, Å (must exceed the 6 Å graph cutoff).
    """

    name = "chgnet"

    def __init__(self, model=None, vacuum: float = 8.0):
        self.model = load_chgnet() if model is None else model
        self.vacuum = float(vacuum)
        if self.vacuum <= self.model.graph_converter.atom_graph_cutoff:
            raise ScatterfitError(f"chgnet: vacuum {vacuum} Å must exceed the graph cutoff")

    def _cell_and_positions(self, structure: Structure) -> tuple[torch.Tensor, torch.Tensor]:
        if structure.cell is not None and all(structure.pbc):
            return structure.cell, structure.positions
        if structure.cell is not None and any(structure.pbc):
            raise ScatterfitError("chgnet: partly periodic structures (slabs, wires) are not supported")
        pos = structure.positions
        lo = pos.detach().min(0).values
        extent = pos.detach().max(0).values - lo
        cell = torch.diag(extent + 2 * self.vacuum).to(pos.dtype)
        return cell, pos - lo + self.vacuum

    def _graph(self, structure: Structure):
        from pymatgen.core import Lattice
        from pymatgen.core import Structure as PmgStructure

        if bool((structure.occupancy.detach() < 1.0).any()):  # the sharing atoms would sit on top of each other
            raise ScatterfitError("chgnet: the structure has partly occupied or shared sites (occupancy < 1), "
                                  "which an interatomic potential cannot evaluate; order them in a supercell first")
        cell, pos = self._cell_and_positions(structure)
        frac = pos @ torch.linalg.inv(cell)
        pmg = PmgStructure(Lattice(cell.detach().cpu().numpy()), structure.numbers.cpu().tolist(),
                           frac.detach().cpu().numpy(), coords_are_cartesian=False, to_unit_cell=False)
        try:
            graph = self.model.graph_converter(pmg)
        except Exception as exc:  # noqa: BLE001 - CHGNet raises ValueError/RuntimeError for isolated atoms
            raise ScatterfitError(f"chgnet: could not build the crystal graph: {exc}") from None
        graph.atom_frac_coord = frac.to(torch.float32)
        graph.lattice = cell.to(torch.float32)
        return graph

    def energies(self, structures: Sequence[Structure]) -> torch.Tensor:
        """[B] total energies, eV, evaluated as one CHGNet batch."""
        if not structures:
            raise ScatterfitError("chgnet: no structures to evaluate")
        graphs = [self._graph(s) for s in structures]
        with torch.enable_grad(), warnings.catch_warnings():
            # CHGNet copies the (differentiable) cell volumes into a new tensor, which torch warns about
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            out = self.model(graphs, task="e")
        n = torch.tensor([len(s) for s in structures], dtype=torch.float32)
        per_atom = out["e"] if self.model.is_intensive else out["e"] / n
        return (per_atom * n).to(structures[0].dtype)

    def energy(self, structure: Structure) -> torch.Tensor:
        return self.energies([structure])[0]


def default_potential() -> CHGNetEnergy:
    """The potential used when none is named: pretrained CHGNet, offline."""
    return CHGNetEnergy()

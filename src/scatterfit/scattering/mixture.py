"""Patterns of a mixture of phases: each phase's pattern weighted by what its atom fraction means for the quantity
measured, so one set of fractions serves every dataset.

Weights w_p from the atom fractions c_p (Σ c_p = 1), by how a forward model normalises its pattern:

- "pdf" (G(r) normalised by the phase's own ⟨b⟩², as PDFfit2 computes each phase): the pair density of the
  mixture is Σ_p c_p ⟨b⟩_p² R_p / ⟨b⟩², with ⟨b⟩ = Σ_p c_p ⟨b⟩_p, so w_p = c_p ⟨b⟩_p² / (Σ_q c_q ⟨b⟩_q)²
  (f at Q = 0 for X-rays, b_c for neutrons). PDFgui's phase scale s_p is proportional to w_p; its atom fraction
  is s_p/⟨b⟩_p² normalised, which is c_p.
- "cell" (Bragg intensities |F|² per unit cell): a phase's atoms make c_p/N_p unit cells (N_p atoms per cell),
  and the integrated intensity of a powder line is (cells / V_p) |F|², so w_p = c_p / (N_p V_p). The weight
  fraction is then the Hill–Howard one, W_p ∝ S_p (cell mass) V_p with S_p the phase's scale.
- "structure" (Debye I(Q) of a whole finite structure): c_p/N_p structures per atom, so w_p = c_p / N_p.
"""

from __future__ import annotations

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.formfactors import scattering_types
from scatterfit.structure.structure import Structure

WEIGHTINGS = ("pdf", "cell", "structure")


def mean_scattering_length(structure: Structure, radiation: str = "xray") -> torch.Tensor:
    """⟨b⟩ = Σ occ_i b_i / Σ occ_i (0-d; f at Q = 0 in electrons for X-rays, b_c in fm for neutrons), the PDF's
    normalisation."""
    types = scattering_types(structure)
    b = types.factors(radiation).at_zero()
    return (types.occupancy * b).sum() / structure.occupancy.sum()


def phase_weights(structures: list[Structure], fractions: torch.Tensor, weighting: str,
                  radiation: str = "xray") -> torch.Tensor:
    """[n] weights of the phases' patterns from their atom fractions ``fractions`` [n] (module docstring)."""
    if weighting == "pdf":
        b = torch.stack([mean_scattering_length(s, radiation).to(fractions) for s in structures])
        return fractions * b**2 / (fractions * b).sum() ** 2
    atoms = torch.stack([s.occupancy.sum().to(fractions) for s in structures])
    if weighting == "structure":
        return fractions / atoms
    if weighting == "cell":
        if any(s.cell is None for s in structures):
            raise ScatterfitError("Bragg phase weights need every phase's unit cell")
        volume = torch.stack([torch.linalg.det(s.cell).abs().to(fractions) for s in structures])
        return fractions / (atoms * volume)
    raise ScatterfitError(f"unknown phase weighting '{weighting}' (use {', '.join(WEIGHTINGS)})")


class PhaseMixture:
    """The pattern of several phases: scale · Σ_p w_p · model_p(phase p's state, x), one forward model per phase
    (each keeps its own neighbour cache), w_p from the phases' atom fractions (``phase_weights``).

    Args:
        models: {phase name: forward model}, each a callable (State, x [n]) -> [n] with a ``mixture_weighting``
            ("pdf", "cell" or "structure").
        radiation: the data's radiation (the "pdf" weights' ⟨b⟩).
    """

    def __init__(self, models: dict, radiation: str = "xray"):
        weightings = {getattr(m, "mixture_weighting", None) for m in models.values()}
        if None in weightings or len(weightings) != 1:
            kinds = ", ".join(sorted({type(m).__name__ for m in models.values()}))
            raise ScatterfitError(f"the forward model ({kinds}) cannot add phases: several phases need the pdf, "
                                  "powder or Debye I(Q) model")
        self.models, self.radiation = dict(models), radiation
        self.weighting = weightings.pop()
        self.kind = getattr(next(iter(models.values())), "kind", None)

    def weights(self, state) -> torch.Tensor:
        """[n] the phases' weights at ``state`` (in the order of ``models``)."""
        phases = [state.phases[p] for p in self.models]
        return phase_weights([s.structure for s in phases], torch.stack([s.params["fraction"] for s in phases]),
                             self.weighting, self.radiation)

    def parameters(self, values: dict) -> dict:
        """The instrument parameters the phases' models declare (one set: they belong to the dataset)."""
        out = {}
        for model in self.models.values():
            declare = getattr(model, "parameters", None)
            if declare is not None:
                out.update(declare(values))
        return out

    def phase_patterns(self, state, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{phase: [n] its weighted part of the pattern (before the overall scale)}."""
        w = self.weights(state)
        return {p: w[k] * model(state.phases[p], x) for k, (p, model) in enumerate(self.models.items())}

    def __call__(self, state, x: torch.Tensor) -> torch.Tensor:
        scale = state.params.get("scale")
        total = sum(self.phase_patterns(state, x).values())
        return total if scale is None else scale * total

    def phase_peaks(self, state, x: torch.Tensor) -> dict:
        """{phase: its powder peaks, intensities weighted and scaled} (powder models only), for R_Bragg."""
        import dataclasses

        w = self.weights(state)
        scale = state.params.get("scale")
        scale = 1.0 if scale is None else scale
        out = {}
        for k, (p, model) in enumerate(self.models.items()):
            peaks = model.peaks(state.phases[p], x)
            out[p] = dataclasses.replace(peaks, intensity=scale * w[k] * peaks.intensity)
        return out

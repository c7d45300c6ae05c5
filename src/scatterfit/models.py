"""Forward models bound to instrument settings: callables (State, x [n]) -> pattern [n] used by DataTerm."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.pdf import pdf
from scatterfit.scattering.transforms import pdf_from_fq, reduced_structure_factor, structure_factor
from scatterfit.structure.pairs import NeighbourCache


class PDFModel:
    """Real-space G(r) (PDFfit2 conventions) of the state's structure; the state's scale, qdamp, qbroad,
    delta1, delta2 and spdiameter are used. ``qmax`` (Å⁻¹) sets the termination ripples (0: none)."""

    def __init__(self, qmax: float = 0.0, *, radiation: str = "xray", ripple: str = "pdffit2", rho0=None,
                 skin: float = 1.0):
        self.qmax, self.radiation, self.ripple, self.rho0 = float(qmax), radiation, ripple, rho0
        self.cache = NeighbourCache(skin)

    def __call__(self, state, r: torch.Tensor) -> torch.Tensor:
        p = state.params
        s = state.structure
        return pdf(s, r, scale=p.get("scale") if p.get("scale") is not None else 1.0,
                   qdamp=p.get("qdamp") or 0.0, qbroad=p.get("qbroad") or 0.0, delta1=p.get("delta1") or 0.0,
                   delta2=p.get("delta2") or 0.0, spdiameter=p.get("spdiameter"), qmax=self.qmax,
                   ripple=self.ripple, rho0=self.rho0, radiation=self.radiation,
                   neighbour_cache=self.cache if s.periodic else None)


@dataclass
class DebyeModel:
    """Debye-equation patterns of a finite structure: kind "iq", "sq", "fq" on the data's Q grid, or "gr"
    through the sine transform of F(Q) on [qmin, qmax] (with optional Lorch window and qdamp)."""

    kind: str = "iq"
    radiation: str = "xray"
    qmin: float = 0.5
    qmax: float = 25.0
    qstep: float = 0.02
    lorch: bool = False
    method: str = "fast"

    def __post_init__(self):
        if self.kind not in ("iq", "sq", "fq", "gr", "saxs"):
            raise ScatterfitError(f"Debye model cannot produce kind '{self.kind}'")

    def __call__(self, state, x: torch.Tensor) -> torch.Tensor:
        s = state.structure
        scale = state.params.get("scale")
        scale = 1.0 if scale is None else scale
        if self.kind in ("iq", "saxs"):
            return scale * debye_intensity(s, x, radiation=self.radiation, method=self.method)
        q = x if self.kind != "gr" else torch.arange(self.qmin, self.qmax + 1e-9, self.qstep, dtype=x.dtype)
        i = debye_intensity(s, q, radiation=self.radiation, method=self.method)
        sq = structure_factor(i, s, q, radiation=self.radiation)
        if self.kind == "sq":
            return scale * sq
        f = reduced_structure_factor(sq, q)
        if self.kind == "fq":
            return scale * f
        return scale * pdf_from_fq(f, q, x, lorch=self.lorch, qdamp=state.params.get("qdamp") or 0.0)

"""The total-scattering chain I(Q) → S(Q) → F(Q) → G(r) and back, as separately callable differentiable stages.

Conventions (PDFgetX3 / DebyeCalculator, with I the full double sum including self-scattering):
    S(Q) = 1 + [I(Q) − Σ_i o_i²|f_i|²] / (N ⟨f⟩²),   N = Σ o_i,  ⟨f⟩ = Σ o_i f_i / N
    F(Q) = Q [S(Q) − 1]                              (Å⁻¹)
    G(r) = (2/π) ∫_{Qmin}^{Qmax} F(Q) L(Q) sin(Qr) dQ · exp(−(Qdamp r)²/2)   (Å⁻²)
with L the optional Lorch window. DebyeCalculator's S, F and G are half of these (its I(Q) is half the double
sum). The inverse F(Q) = ∫ G(r) sin(Qr) dr turns a real-space G(r) of a periodic box into F(Q) and S(Q).
"""

from __future__ import annotations

import math

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.formfactors import scattering_types
from scatterfit.scattering.instrument import lorch_window
from scatterfit.structure import Structure


def _weights(x: torch.Tensor) -> torch.Tensor:
    """Quadrature weights on a (possibly non-uniform) grid: the local step, [n]."""
    if x.numel() < 2:
        raise ScatterfitError("a transform needs at least two grid points")
    return torch.gradient(x)[0]


def normalisation(structure: Structure, q: torch.Tensor, *, radiation: str = "xray",
                  energy_ev: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-scattering Σ o²|f|² and N⟨f⟩² on the Q grid, each [nQ]."""
    q = q.to(dtype=structure.dtype, device=structure.device)
    types = scattering_types(structure)
    fac = types.factors(radiation, energy_ev=energy_ev)
    fr, fi = fac.real(q), fac.imag()
    occ, occ_t = structure.occupancy, types.occupancy
    occ2_t = torch.zeros_like(occ_t).index_add(0, types.index, occ * occ)
    self_term = (occ2_t[:, None] * (fr**2 + (fi**2)[:, None])).sum(0)
    n = occ.sum()
    mean_r = (occ_t[:, None] * fr).sum(0) / n
    mean_i = (occ_t * fi).sum() / n
    return self_term, n * (mean_r**2 + mean_i**2)


def structure_factor(intensity: torch.Tensor, structure: Structure, q: torch.Tensor, **kwargs) -> torch.Tensor:
    """S(Q) from the Debye intensity I(Q) (full double sum), [nQ]."""
    self_term, norm = normalisation(structure, q, **kwargs)
    return 1.0 + (intensity - self_term) / norm


def reduced_structure_factor(s: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """F(Q) = Q[S(Q) − 1], Å⁻¹."""
    return q * (s - 1.0)


def sine_table(r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sin(Q r) on the grids, [nR, nQ]: precompute it once for repeated transforms on the same grids."""
    return torch.sin(r.detach()[:, None] * q.detach()[None, :])


def pdf_from_fq(f: torch.Tensor, q: torch.Tensor, r: torch.Tensor, *, qmin: float | None = None,
                qmax: float | None = None, lorch: bool = False, qdamp=0.0,
                sin_table: torch.Tensor | None = None, window: torch.Tensor | None = None) -> torch.Tensor:
    """G(r) = (2/π) Σ_Q F(Q) L(Q) W(Q) sin(Qr) ΔQ on [qmin, qmax], times exp(−(qdamp r)²/2).

    Args:
        f: [nQ] F(Q); q: [nQ] Å⁻¹; r: [nR] Å.
        sin_table: [nR, nQ] sine_table(r, q), when the caller keeps it between calls (q and r fixed).
        window: [nQ] W(Q), a further weight of each Q (e.g. :func:`qmin_window`); None: 1.
    Returns:
        [nR] G(r), Å⁻².
    """
    qmin = float(q.min()) if qmin is None else qmin
    qmax = float(q.max()) if qmax is None else qmax
    if not qmax > qmin:
        raise ScatterfitError(f"qmax ({qmax}) must be larger than qmin ({qmin})")
    mask = ((q >= qmin - 1e-12) & (q <= qmax + 1e-12)).to(f.dtype)
    w = _weights(q) * mask
    if lorch:
        w = w * lorch_window(q, qmax)
    if window is not None:
        w = w * window
    table = sine_table(r, q) if sin_table is None else sin_table
    if table.shape != (r.numel(), q.numel()):
        raise ScatterfitError(f"sin_table has shape {tuple(table.shape)}, expected {(r.numel(), q.numel())}")
    g = (2.0 / math.pi) * (table.to(f.dtype) @ (f * w))
    qdamp_t = qdamp if isinstance(qdamp, torch.Tensor) else torch.tensor(float(qdamp), dtype=g.dtype)
    return g * torch.exp(-0.5 * (qdamp_t * r) ** 2)


def qmin_window(q: torch.Tensor, qmin: torch.Tensor, qstep: float) -> torch.Tensor:
    """The weight of each point of a uniform grid ``q`` [nQ] (step ``qstep``, Å⁻¹) in a rectangle-rule integral
    that starts at ``qmin`` (Å⁻¹, a 0-d tensor, may require grad): a Gaussian-smoothed step
    Φ((Q − qmin + qstep/2) / qstep), so that the integral is smooth in qmin (no kinks where qmin crosses a grid
    point, where a gradient optimiser would stall; the ripple its sampling leaves is of order exp(−2π²), 3e-9) and
    matches, to second order in qstep, the rectangle rule over the grid's points ≥ qmin (which integrates from
    qmin − qstep/2). Returns [nQ]."""
    return 0.5 * (1.0 + torch.erf((q - qmin + 0.5 * qstep) / (math.sqrt(2.0) * qstep)))


def fq_from_pdf(g: torch.Tensor, r: torch.Tensor, q: torch.Tensor, *, window: bool = False) -> torch.Tensor:
    """F(Q) = ∫ G(r) sin(Qr) dr over the r grid (optionally with a Lorch window in r against truncation).

    Args:
        g: [nR] G(r) Å⁻²; r: [nR] Å; q: [nQ] Å⁻¹.
    Returns:
        [nQ] F(Q), Å⁻¹.
    """
    w = _weights(r)
    if window:
        w = w * torch.sinc(r / float(r.max()))
    return ((g * w)[None, :] * torch.sin(q[:, None] * r[None, :])).sum(1)

"""Bragg powder diffraction of crystals: reflection list, structure factors, Lorentz–polarisation, pseudo-Voigt
profiles (Caglioti U, V, W and mixing η), zero shift and polynomial background, on a 2θ or a Q grid.

Every hkl inside the limiting sphere is listed (Friedel mates and symmetry equivalents included), so
multiplicities come out of the sum without a space-group table. Units: 2θ in degrees, Q in Å⁻¹, λ in Å,
intensities in electrons² per cell (times the scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.formfactors import scattering_types
from scatterfit.scattering.instrument import polynomial_background
from scatterfit.structure import Structure

SIXTEEN_PI2 = 16.0 * math.pi**2


@dataclass(frozen=True)
class Reflections:
    """hkl list [M, 3] (float), their Q magnitudes [M] Å⁻¹, squared structure factors |F|² [M] and their
    element-pair parts {"A-B": Re(F_A F_B*) (+ the B-A term), [M]} which sum to |F|²."""

    hkl: torch.Tensor
    q: torch.Tensor
    f2: torch.Tensor
    partials: dict | None = None


def reflections(structure: Structure, qmax: float, *, radiation: str = "xray",
                energy_ev: float | None = None) -> Reflections:
    """All reflections with 0 < Q ≤ qmax and their |F(hkl)|² including occupancies and isotropic ADPs."""
    if structure.cell is None or not structure.periodic:
        raise ScatterfitError("Bragg diffraction needs a periodic structure with a cell")
    if not qmax > 0:
        raise ScatterfitError(f"qmax must be positive, got {qmax}")
    cell = structure.cell
    recip = 2 * math.pi * torch.linalg.inv(cell).T  # rows b_i, with a_i·b_j = 2π δ_ij
    lengths = cell.detach().norm(dim=1)
    hmax = [int(math.ceil(qmax * float(l) / (2 * math.pi))) + 1 for l in lengths]
    grids = [torch.arange(-h, h + 1, dtype=cell.dtype, device=cell.device) for h in hmax]
    hkl = torch.cartesian_prod(*grids)
    if hkl.shape[0] > 5_000_000:
        raise ScatterfitError(f"{hkl.shape[0]} hkl candidates: lower qmax or use the Debye path for this cell")
    qvec = hkl @ recip
    qn = qvec.detach().norm(dim=1)
    keep = (qn > 1e-9) & (qn <= qmax)
    hkl, qvec = hkl[keep], qvec[keep]
    q = qvec.norm(dim=1)
    frac = structure.positions @ torch.linalg.inv(cell)  # [N, 3]
    types = scattering_types(structure)
    fac = types.factors(radiation, energy_ev=energy_ev)
    fr = fac.real(q)[types.index]  # [N, M]
    fi = fac.imag()[types.index][:, None]
    amp = structure.occupancy[:, None] * torch.exp(-structure.biso[:, None] * q[None, :] ** 2 / SIXTEEN_PI2)
    phase = 2 * math.pi * frac @ hkl.T  # [N, M]
    c, s = torch.cos(phase), torch.sin(phase)
    # f = fr + i fi; F = Σ amp f e^{iφ}
    re_atom = amp * (fr * c - fi * s)
    im_atom = amp * (fr * s + fi * c)
    from ase.data import chemical_symbols

    species = sorted(set(structure.numbers.tolist()))
    parts_re = {z: re_atom[structure.numbers == z].sum(0) for z in species}
    parts_im = {z: im_atom[structure.numbers == z].sum(0) for z in species}
    partials = {}
    for ka, za in enumerate(species):
        for zb in species[ka:]:
            cross = parts_re[za] * parts_re[zb] + parts_im[za] * parts_im[zb]
            partials[f"{chemical_symbols[za]}-{chemical_symbols[zb]}"] = cross if za == zb else 2 * cross
    re, im = re_atom.sum(0), im_atom.sum(0)
    return Reflections(hkl, q, re**2 + im**2, partials)


def merge_equal_q(refl: Reflections, rtol: float = 1e-10) -> Reflections:
    """Reflections at the same |Q| (symmetry equivalents, Friedel mates, accidental coincidences) merged into one
    peak each: |F|² (and its partials) summed, so the multiplicities stay in the intensities. Same profile, far
    fewer columns (a 4-atom fcc cell to 25 Å⁻¹: 11,512 reflections, 165 peaks). ``hkl`` keeps one index per peak.

    Only for a cell that is not being differentiated: when the cell changes, equal |Q| split, and the gradient of
    the merged peak would not be that of its members (powder_pattern merges only then)."""
    q = refl.q
    if q.numel() == 0:
        return refl
    order = torch.argsort(q.detach())
    qs = q.detach()[order]
    new = torch.ones_like(qs, dtype=torch.bool)
    new[1:] = (qs[1:] - qs[:-1]) > rtol * qs[1:]
    group_sorted = torch.cumsum(new.to(torch.int64), 0) - 1
    group = torch.empty_like(group_sorted)
    group[order] = group_sorted
    n = int(group_sorted[-1]) + 1

    def merged(values):
        return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, group, values)

    count = merged(torch.ones_like(q))
    partials = None if refl.partials is None else {k: merged(v) for k, v in refl.partials.items()}
    return Reflections(refl.hkl[order[new]], merged(q) / count, merged(refl.f2), partials)


def pseudo_voigt(x: torch.Tensor, fwhm: torch.Tensor, eta) -> torch.Tensor:
    """Area-normalised pseudo-Voigt of full width fwhm (same units as x) and Lorentzian fraction eta."""
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    gauss = torch.exp(-0.5 * (x / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    gamma = fwhm / 2
    lor = gamma / (math.pi * (x**2 + gamma**2))
    return eta * lor + (1 - eta) * gauss


def _t(v, like):
    return v.to(like) if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=like.dtype, device=like.device)


def powder_pattern(structure: Structure, x: torch.Tensor, *, wavelength: float | None = None, axis: str = "tth",
                   u=0.0, v=0.0, w=0.01, eta=0.5, zero=0.0, scale=1.0, background=None, polarisation: float = 0.0,
                   fwhm_q=0.02, radiation: str = "xray", energy_ev: float | None = None,
                   partials: bool = False) -> torch.Tensor | dict:
    """Powder pattern on a 2θ grid (axis="tth", degrees, needs wavelength Å) or a Q grid (axis="q", Å⁻¹).

    2θ: I = scale Σ_hkl |F|² LP(θ) PV(2θ − 2θ_hkl − zero; H, η) + background, H² = U tan²θ + V tanθ + W (deg²),
    LP = (1 + P cos²2θ)/(sin²θ cosθ) with P = cos²2θ_m of a monochromator (polarisation=0 → P = 1).
    Q: I = scale Σ_hkl |F|²/Q² PV(Q − Q_hkl; fwhm_q, η) + background (the powder average of the Bragg peaks,
    comparable with the Debye pattern of a large crystallite).

    Returns:
        [n] intensity on the grid x, or with partials=True {"A-B": [n] element-pair part, "background": [n]}
        whose sum is that intensity.
    """
    if axis not in ("tth", "q"):
        raise ScatterfitError(f"unknown powder axis '{axis}' (use 'tth' or 'q')")
    x = x.to(dtype=structure.dtype, device=structure.device)
    if axis == "tth":
        if wavelength is None or not wavelength > 0:
            raise ScatterfitError("a 2θ powder pattern needs a positive wavelength (Å)")
        qmax = 4 * math.pi * math.sin(math.radians(min(float(x.max()) + 2.0, 179.0) / 2)) / wavelength
    else:
        qmax = float(x.max()) + 5 * float(fwhm_q)
    refl = reflections(structure, qmax, radiation=radiation, energy_ev=energy_ev)
    if not refl.q.requires_grad:  # a fixed cell: equal |Q| stays equal, so merged peaks have exact gradients
        refl = merge_equal_q(refl)
    scale, eta = _t(scale, x), _t(eta, x)
    if axis == "tth":
        sin_t = refl.q * wavelength / (4 * math.pi)
        ok = sin_t < 1
        theta = torch.asin(torch.clamp(sin_t, max=1 - 1e-12))
        tth = torch.rad2deg(2 * theta)
        p = 1.0 if polarisation == 0.0 else math.cos(math.radians(polarisation)) ** 2
        lp = (1 + p * torch.cos(2 * theta) ** 2) / (torch.sin(theta) ** 2 * torch.cos(theta))
        tan_t = torch.tan(theta)
        h2 = _t(u, x) * tan_t**2 + _t(v, x) * tan_t + _t(w, x)
        fwhm = torch.sqrt(torch.clamp(h2, min=1e-8))
        factor = lp * ok  # per-reflection intensity factor
        prof = pseudo_voigt(x[:, None] - tth[None, :] - _t(zero, x), fwhm[None, :], eta)
    else:
        factor = 1.0 / refl.q**2
        prof = pseudo_voigt(x[:, None] - refl.q[None, :], _t(fwhm_q, x), eta)
    weight = refl.f2 * factor
    y = scale * (prof * weight[None, :]).sum(1)
    if partials:
        out = {k: scale * (prof * (v * factor)[None, :]).sum(1) for k, v in refl.partials.items()}
        if background is not None:
            out["background"] = polynomial_background(x, _t(background, x).reshape(-1))
        return out
    if background is not None:
        y = y + polynomial_background(x, _t(background, x).reshape(-1))
    return y

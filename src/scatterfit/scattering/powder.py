"""Bragg powder diffraction of crystals, as Rietveld programs compute it: reflection list and structure factors,
peak positions, Lorentz–polarisation, preferred orientation and profiles, for constant-wavelength (2θ, with an
optional Kα1/Kα2 doublet) and time-of-flight (DIFC, DIFA, ZERO) instruments, or directly on a Q grid.

Every hkl inside the limiting sphere is listed (Friedel mates and symmetry equivalents included), so
multiplicities come out of the sum without a space-group table, and a preferred-orientation factor averages
over the equivalents as March–Dollase defines it. Reflections at one |Q| are then merged into one peak (their
|F|² summed, their position the intensity-weighted mean), which keeps the gradients exact.

Units: 2θ in degrees, time of flight in µs, Q in Å⁻¹, d and λ in Å, |F|² in electrons² (X-ray) or fm² (neutron)
per cell. The background is not added here: the data term adds its Chebyshev background (loss.DataTerm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.formfactors import scattering_types
from scatterfit.scattering.profiles import (
    LN2,
    back_to_back_gaussian,
    back_to_back_pseudo_voigt,
    caglioti_gaussian,
    lorentzian_width,
    tch_width,
)
from scatterfit.structure import Structure

SIXTEEN_PI2 = 16.0 * math.pi**2


@dataclass(frozen=True)
class Reflections:
    """hkl list [M, 3] (float), their Q magnitudes [M] Å⁻¹, squared structure factors |F|² [M], their
    element-pair parts {"A-B": Re(F_A F_B*) (+ the B-A term), [M]} which sum to |F|², and the scattering
    vectors [M, 3] Å⁻¹ (cartesian)."""

    hkl: torch.Tensor
    q: torch.Tensor
    f2: torch.Tensor
    partials: dict | None = None
    qvec: torch.Tensor | None = None


def reflections(structure: Structure, qmax: float, *, radiation: str = "xray",
                energy_ev: float | None = None) -> Reflections:
    """All reflections with 0 < Q ≤ qmax and their |F(hkl)|² including occupancies and the ADPs (isotropic, or
    the anisotropic tensors when the structure has them)."""
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
    if structure.uaniso is None:  # Debye–Waller exp(−B Q²/16π²) = exp(−U Q²/2)
        amp = structure.occupancy[:, None] * torch.exp(-structure.biso[:, None] * q[None, :] ** 2 / SIXTEEN_PI2)
    else:  # anisotropic: exp(−Qᵀ U Q / 2) with Q the reflection's cartesian vector
        amp = structure.occupancy[:, None] * torch.exp(-0.5 * torch.einsum("ma,nab,mb->nm", qvec, structure.uaniso,
                                                                           qvec))
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
    return Reflections(hkl, q, re**2 + im**2, partials, qvec)




GEOMETRIES = ("cw", "tof", "q")
HC_EV_ANGSTROM = 12398.419843  # h·c, eV·Å (CODATA 2018)
PROFILES = ("tch", "caglioti")


@dataclass(frozen=True)
class PowderSetup:
    """What the diffractometer fixes (nothing here is refined; refined values are in :data:`PARAMETERS`).

    Attributes:
        geometry: "cw" (x = 2θ, degrees), "tof" (x = time of flight, µs) or "q" (x = Q, Å⁻¹).
        radiation: "xray", "neutron" or "unit".
        wavelength: Å (cw); for a laboratory tube the Kα1 line.
        wavelength2: Å, a second line (Kα2) whose peaks are added with intensity ``ratio`` (cw), or None.
        ratio: I(λ2)/I(λ1), 0.5 for Cu and Mo Kα.
        polarisation: K = cos²2θ_m of a monochromator in the diffracted or incident beam (1: none, unpolarised
            tube): the X-ray factor is (1 + K cos²2θ)/(1 + K). Neutrons are unpolarised: factor 1.
        profile: "tch" (Gaussian U, V, W, P and Lorentzian X, Y widths combined by Thompson–Cox–Hastings) or
            "caglioti" (one pseudo-Voigt: Caglioti width and a refined mixing η).
        preferred_orientation: the hkl of the March–Dollase axis (the plate normal or needle axis), or None.
        bank_angle: 2θ of the time-of-flight detector bank, degrees (scales the TOF intensities by sin θ).
        energy_ev: photon energy for the anomalous terms f′, f″ of X-rays, eV; default: the energy of
            ``wavelength`` (12398.42 eV·Å / λ), so dispersion near an absorption edge (Co or Fe with Cu Kα, for
            example) is included as Rietveld programs include it. Without a wavelength (TOF, Q grid): none.
    """

    geometry: str = "cw"
    radiation: str = "xray"
    wavelength: float | None = None
    wavelength2: float | None = None
    ratio: float = 0.5
    polarisation: float = 1.0
    profile: str = "tch"
    preferred_orientation: tuple | None = None
    bank_angle: float = 90.0
    energy_ev: float | None = None

    def __post_init__(self):
        if self.geometry not in GEOMETRIES:
            raise ScatterfitError(f"unknown powder geometry '{self.geometry}' (use {', '.join(GEOMETRIES)})")
        if self.profile not in PROFILES:
            raise ScatterfitError(f"unknown powder profile '{self.profile}' (use {', '.join(PROFILES)})")
        if self.geometry == "cw" and not (self.wavelength is not None and self.wavelength > 0):
            raise ScatterfitError("a constant-wavelength (2θ) pattern needs a positive wavelength, Å")
        if self.wavelength2 is not None and not self.wavelength2 > 0:
            raise ScatterfitError(f"wavelength2 must be positive, got {self.wavelength2}")
        if not 0 <= self.ratio <= 1:
            raise ScatterfitError(f"the Kα2/Kα1 ratio must be in [0, 1], got {self.ratio}")
        if not 0 <= self.polarisation <= 1:
            raise ScatterfitError(f"polarisation K = cos²2θm must be in [0, 1], got {self.polarisation}")
        if self.preferred_orientation is not None and (len(self.preferred_orientation) != 3
                                                       or not any(self.preferred_orientation)):
            raise ScatterfitError(f"preferred_orientation takes an axis hkl such as [0, 0, 1], got "
                                  f"{self.preferred_orientation}")
        if not 0 < self.bank_angle < 180:
            raise ScatterfitError(f"bank_angle must be between 0 and 180 degrees, got {self.bank_angle}")

    def photon_energy(self) -> float | None:
        """eV of the X-ray anomalous terms: ``energy_ev``, else that of the (first) wavelength, else None."""
        if self.energy_ev is not None:
            return self.energy_ev
        if self.radiation == "xray" and self.wavelength:
            return HC_EV_ANGSTROM / self.wavelength
        return None


@dataclass(frozen=True)
class Parameter:
    """A refinable instrument or sample parameter of the powder model: default, bounds and meaning."""

    default: float | None
    low: float
    high: float
    help: str


PARAMETERS: dict[str, dict[str, Parameter]] = {
    "cw": {
        "zero": Parameter(0.0, -2.0, 2.0, "zero shift: peaks appear at 2θ_hkl + zero, degrees"),
        "displacement": Parameter(0.0, -2.0, 2.0, "sample displacement: a 2θ shift of displacement·cosθ, degrees "
                                                  "(FullProf SyCos)"),
        "transparency": Parameter(0.0, -2.0, 2.0, "sample transparency: a 2θ shift of transparency·sin2θ, degrees "
                                                  "(FullProf SySin)"),
        "U": Parameter(0.0, -2.0, 2.0, "Gaussian width U tan²θ, deg²"),
        "V": Parameter(0.0, -2.0, 2.0, "Gaussian width V tanθ, deg²"),
        "W": Parameter(0.01, 0.0, 2.0, "Gaussian width W, deg²"),
        "P": Parameter(0.0, 0.0, 2.0, "Gaussian size width P/cos²θ, deg² (tch)"),
        "X": Parameter(0.0, -1.0, 2.0, "Lorentzian strain width X tanθ, degrees (tch)"),
        "Y": Parameter(0.0, 0.0, 2.0, "Lorentzian size width Y/cosθ, degrees (tch)"),
        "eta": Parameter(0.5, 0.0, 1.0, "pseudo-Voigt Lorentzian fraction (caglioti)"),
        "march": Parameter(1.0, 0.2, 5.0, "March–Dollase r (1: random powder; < 1 plates, > 1 needles along the "
                                          "axis)"),
    },
    "tof": {
        "difc": Parameter(None, 0.0, 0.0, "t = zero + difc·d + difa·d², µs/Å (required; bounds ±1 % of the start)"),
        "difa": Parameter(0.0, -50.0, 50.0, "µs/Å²"),
        "zero": Parameter(0.0, -100.0, 100.0, "µs"),
        "alpha0": Parameter(0.0, 0.0, 10.0, "rise α = alpha0 + alpha1/d, 1/µs"),
        "alpha1": Parameter(0.6, 0.0, 10.0, "1/µs·Å"),
        "beta0": Parameter(0.03, 0.0, 1.0, "decay β = beta0 + beta1/d⁴, 1/µs"),
        "beta1": Parameter(0.005, 0.0, 1.0, "1/µs·Å⁴"),
        "sig0": Parameter(0.0, 0.0, 1e4, "Gaussian σ² = sig0 + sig1 d² + sig2 d⁴, µs²"),
        "sig1": Parameter(50.0, 0.0, 1e4, "µs²/Å²"),
        "sig2": Parameter(0.0, 0.0, 1e4, "µs²/Å⁴"),
        "gamma0": Parameter(0.0, 0.0, 1e3, "Lorentzian FWHM γ = gamma0 + gamma1 d + gamma2 d², µs (γ > 0: the "
                                          "peak is back-to-back exponentials ⊗ pseudo-Voigt)"),
        "gamma1": Parameter(0.0, 0.0, 1e3, "µs/Å"),
        "gamma2": Parameter(0.0, 0.0, 1e3, "µs/Å²"),
        "march": Parameter(1.0, 0.2, 5.0, "March–Dollase r"),
    },
    "q": {
        "fwhm_q": Parameter(0.02, 1e-4, 1.0, "peak FWHM, Å⁻¹"),
        "eta": Parameter(0.5, 0.0, 1.0, "pseudo-Voigt Lorentzian fraction"),
    },
}
"""The refinable parameters of each geometry. Their values come from [parameters].values (or the defaults);
free ones are listed in [parameters].free like every other group."""


def parameter_bounds(setup: PowderSetup, values: dict) -> dict[str, tuple[float, float, float]]:
    """{name: (start, low, high)} of the setup's parameters, starting from ``values`` where given; raises for a
    required one (difc) that is missing."""
    out = {}
    for name, spec in PARAMETERS[setup.geometry].items():
        start = values.get(name, spec.default)
        if start is None:
            raise ScatterfitError(f"the {setup.geometry} powder model needs a starting value of '{name}' "
                                  f"({spec.help})")
        low, high = spec.low, spec.high
        if name == "difc":
            low, high = 0.99 * float(start), 1.01 * float(start)
        out[name] = (float(start), low, high)
    return out


def estimate_fwhm(x, y) -> float | None:
    """Full width at half maximum of the strongest peak of a measured pattern, in x's unit, above a baseline at
    the 20th percentile; None when the peak is not resolved by at least three points or runs off the grid.
    A starting width for a refinement, not a result.

    Args:
        x, y: [n] the grid (ascending) and the pattern (array-likes).
    """
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    base = float(np.percentile(y, 20))
    top = int(np.argmax(y))
    half = base + 0.5 * (float(y[top]) - base)
    above = y > half
    left, right = top, top
    while left > 0 and above[left]:
        left -= 1
    while right < len(y) - 1 and above[right]:
        right += 1
    if above[left] or above[right] or right - left < 4:
        return None
    return float(x[right] - x[left])


GAUSSIAN_CUTOFF = 1e-12
"""The Gaussian part of a pseudo-Voigt peak is evaluated where it exceeds this fraction of its maximum, within
σ √(2 ln(1/c)) = 3.1 FWHM of its centre (beyond, it is below double precision's resolution of the pattern), so a
pattern costs its points per peak instead of the whole grid per peak; the Lorentzian part, whose tails reach
across the pattern, is evaluated everywhere, and only where some peak may have one (η > 0, or η refined)."""


@dataclass(frozen=True)
class BandedProfile:
    """Area-normalised peak profiles: ``values`` [P] of peak ``cols`` [P] at grid point ``rows`` [P] (P pairs near
    the peaks), plus ``dense`` [n, m] everywhere (or None), for ``n`` grid points and ``m`` peaks."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    n: int
    m: int
    dense: torch.Tensor | None = None

    def apply(self, weights: torch.Tensor) -> torch.Tensor:
        """[n] Σ_k profile[:, k] weights[k] (weights [m])."""
        out = torch.zeros(self.n, dtype=self.values.dtype, device=self.values.device)
        out = out.index_add(0, self.rows, self.values * weights[self.cols])
        return out if self.dense is None else out + self.dense @ weights

    def column_sums(self, point_weights: torch.Tensor | None = None) -> torch.Tensor:
        """[m] Σ_i profile[i, k] point_weights[i] (1 when None)."""
        values = self.values if point_weights is None else self.values * point_weights[self.rows]
        out = torch.zeros(self.m, dtype=values.dtype, device=values.device).index_add(0, self.cols, values)
        if self.dense is not None:
            out = out + (self.dense.sum(0) if point_weights is None else point_weights @ self.dense)
        return out

    def detach(self) -> "BandedProfile":
        return BandedProfile(self.rows, self.cols, self.values.detach(), self.n, self.m,
                             None if self.dense is None else self.dense.detach())

    def full(self) -> torch.Tensor:
        """[n, m] the whole matrix."""
        out = torch.zeros(self.n, self.m, dtype=self.values.dtype, device=self.values.device)
        out = out.index_put((self.rows, self.cols), self.values, accumulate=True)
        return out if self.dense is None else out + self.dense

    @staticmethod
    def concat(parts: list) -> "BandedProfile":
        """The peaks of ``parts`` (on one grid) side by side, in order."""
        offsets = [0]
        for part in parts[:-1]:
            offsets.append(offsets[-1] + part.m)
        cols = torch.cat([p.cols + o for p, o in zip(parts, offsets)])
        dense = None
        if any(p.dense is not None for p in parts):
            dense = torch.cat([p.dense if p.dense is not None else p.values.new_zeros(p.n, p.m) for p in parts], 1)
        return BandedProfile(torch.cat([p.rows for p in parts]), cols, torch.cat([p.values for p in parts]),
                             parts[0].n, offsets[-1] + parts[-1].m, dense)


def band_pairs(x: torch.Tensor, centre: torch.Tensor, halfwidth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows [P], cols [P]): every grid point of the ascending grid ``x`` [n] within ``halfwidth`` [m] of each
    ``centre`` [m], peak by peak (detached: the band is chosen at the current values)."""
    centre, halfwidth = centre.detach(), halfwidth.detach()
    lo = torch.searchsorted(x, centre - halfwidth)
    hi = torch.searchsorted(x, centre + halfwidth, right=True)
    counts = (hi - lo).clamp(min=0)
    cols = torch.repeat_interleave(torch.arange(len(centre), device=x.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    rows = lo[cols] + torch.arange(len(cols), device=x.device) - starts[cols]
    return rows, cols


def banded_pseudo_voigt(x: torch.Tensor, centre: torch.Tensor, fwhm: torch.Tensor, eta) -> BandedProfile:
    """Area-normalised pseudo-Voigt peaks η L + (1 − η) G (profiles.pseudo_voigt) at ``centre`` [m] with ``fwhm``
    [m] (or one) and Lorentzian fraction ``eta`` ([m] or one) on the ascending grid ``x`` [n]: the Gaussian part
    near each peak (GAUSSIAN_CUTOFF), the Lorentzian part everywhere unless every η is 0 and not refined;
    differentiable in centre, fwhm and eta."""
    m = len(centre)
    fwhm = torch.as_tensor(fwhm, dtype=x.dtype, device=x.device).expand(m)
    eta = torch.as_tensor(eta, dtype=x.dtype, device=x.device)
    sigma = fwhm / (2 * math.sqrt(2 * LN2))
    rows, cols = band_pairs(x, centre, sigma * math.sqrt(2 * math.log(1 / GAUSSIAN_CUTOFF)))
    gauss_weight = (1 - eta).expand(m)[cols] if eta.dim() > 0 else 1 - eta
    s = sigma[cols]
    values = gauss_weight * torch.exp(-0.5 * ((x[rows] - centre[cols]) / s) ** 2) / (math.sqrt(2 * math.pi) * s)
    dense = None
    if eta.requires_grad or bool((eta.detach() != 0).any()):
        gamma = fwhm / 2
        dense = eta * gamma / (math.pi * ((x[:, None] - centre[None, :]) ** 2 + gamma**2))
    return BandedProfile(rows, cols, values, len(x), m, dense)


@dataclass(frozen=True)
class PowderPeaks:
    """The peaks of a pattern on its grid, before the background.

    Attributes:
        position: [m] peak positions in the grid's unit.
        intensity: [m] integrated intensities (|F|² times multiplicity, Lorentz–polarisation and preferred
            orientation; times the scale of the params); the Kα2 copies are separate peaks.
        profile: the area-normalised profile of each peak on the grid: [n, m], or a BandedProfile (the
            pseudo-Voigt peaks of 2θ and Q grids).
        q: [m] the peaks' |Q|, Å⁻¹.
        parts: {"A-B": [m]} element-pair parts of ``intensity`` (only when asked for).
    """

    position: torch.Tensor
    intensity: torch.Tensor
    profile: torch.Tensor
    q: torch.Tensor
    parts: dict | None = None

    def pattern(self) -> torch.Tensor:
        """[n] the summed peaks."""
        return self.apply(self.intensity)

    def apply(self, weights: torch.Tensor) -> torch.Tensor:
        """[n] the peaks' profiles summed with ``weights`` [m]."""
        if isinstance(self.profile, BandedProfile):
            return self.profile.apply(weights)
        return self.profile @ weights


def merge_peaks(q: torch.Tensor, weights: dict[str, torch.Tensor], rtol: float = 1e-10) -> tuple:
    """Reflections at one |Q| (symmetry equivalents, Friedel mates, coincidences) merged into one peak each.

    Args:
        q: [M] reflection |Q|, Å⁻¹.
        weights: {name: [M]} intensities to sum per peak; "total" (≥ 0) also weights the position.
    Returns:
        (q_peak [P], {name: [P]}): each peak at the intensity-weighted mean |Q| of its members (the plain mean for
        an absent peak), so the gradient with respect to the members' positions is the exact one while they
        coincide; the grouping follows the current values and is redone on every call.
    """
    if q.numel() == 0:
        return q, weights
    qd = q.detach()
    order = torch.argsort(qd)
    qs = qd[order]
    new = torch.ones_like(qs, dtype=torch.bool)
    new[1:] = (qs[1:] - qs[:-1]) > rtol * qs[1:]
    group_sorted = torch.cumsum(new.to(torch.int64), 0) - 1
    group = torch.empty_like(group_sorted)
    group[order] = group_sorted
    n = int(group_sorted[-1]) + 1

    def merged(values):
        return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, group, values)

    total = weights["total"]
    summed = {k: merged(v) for k, v in weights.items()}
    plain = merged(q) / merged(torch.ones_like(q))
    weighted = merged(total * q) / torch.clamp(summed["total"], min=1e-300)
    q_peak = torch.where(summed["total"] > 1e-12 * float(summed["total"].detach().max().clamp(min=1e-300)),
                         weighted, plain)
    return q_peak, summed


def _value(params: dict, name: str, setup: PowderSetup, like: torch.Tensor) -> torch.Tensor:
    v = params.get(name)
    if v is None:
        v = PARAMETERS[setup.geometry][name].default
        if v is None:
            raise ScatterfitError(f"the {setup.geometry} powder model needs '{name}' "
                                  f"({PARAMETERS[setup.geometry][name].help})")
    return v.to(like) if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=like.dtype, device=like.device)


def _march_dollase(refl: Reflections, structure: Structure, axis, r: torch.Tensor) -> torch.Tensor:
    """[M] March–Dollase factors (r² cos²α + sin²α / r)^(−3/2), α between each reflection's Q and the normal of
    the (hkl) planes of ``axis``."""
    recip = 2 * math.pi * torch.linalg.inv(structure.cell).T
    normal = torch.as_tensor(axis, dtype=recip.dtype, device=recip.device) @ recip
    cos2 = ((refl.qvec @ normal) / (refl.q * normal.norm())) ** 2
    return (r**2 * cos2 + (1 - cos2) / r) ** -1.5


def _q_limit(setup: PowderSetup, x: torch.Tensor, params: dict) -> float:
    """Largest |Q| (Å⁻¹) whose peak can reach the grid, with a margin for the peak tails."""
    if setup.geometry == "q":
        return float(x.max()) + 5 * float(params.get("fwhm_q") if params.get("fwhm_q") is not None
                                          else PARAMETERS["q"]["fwhm_q"].default)
    if setup.geometry == "cw":
        shortest = min(setup.wavelength, setup.wavelength2 or setup.wavelength)
        return 4 * math.pi * math.sin(math.radians(min(float(x.max()) + 5.0, 179.9) / 2)) / shortest
    difc = float(_value(params, "difc", setup, x).detach())
    difa = float(_value(params, "difa", setup, x))
    zero = float(_value(params, "zero", setup, x))
    t_min = max(float(x.min()) - 0.05 * (float(x.max()) - float(x.min())), zero + 1e-6)
    if abs(difa) < 1e-12:
        d_min = (t_min - zero) / difc
    else:
        d_min = (-difc + math.sqrt(max(difc**2 + 4 * difa * (t_min - zero), 0.0))) / (2 * difa)
    return 2 * math.pi / max(d_min, 1e-3)


def powder_peaks(structure: Structure, x: torch.Tensor, setup: PowderSetup, params: dict | None = None, *,
                 parts: bool = False) -> PowderPeaks:
    """The Bragg peaks of ``structure`` on the grid ``x`` (degrees 2θ, µs or Å⁻¹ as ``setup.geometry`` says).

    Constant wavelength: I_k = scale |F_k|² m_k LP(θ_k) P_k at 2θ_k + zero + displacement·cosθ_k +
    transparency·sin2θ_k, LP = (1 + K cos²2θ)/((1 + K) sin²θ cosθ) (X-ray; neutrons without the polarisation
    term), with a TCH or Caglioti pseudo-Voigt; a second wavelength adds its own peaks times ``ratio``.
    Time of flight: I_k = scale |F_k|² m_k d_k⁴ sinθ_bank P_k at t = zero + difc·d + difa·d², with back-to-back
    exponentials convolved with a Gaussian. Q grid: I_k = scale |F_k|² m_k / Q_k² with a pseudo-Voigt.

    Args:
        structure: periodic, with a cell.
        x: [n] grid.
        params: {name: float or 0-d tensor} of :data:`PARAMETERS` and "scale"; missing ones take their
            defaults.
        parts: also return the element-pair parts of the intensities.
    """
    params = params or {}
    x = x.to(dtype=structure.dtype, device=structure.device)
    if len(x) > 1 and not bool((x[1:] > x[:-1]).all()):
        raise ScatterfitError("a powder pattern's grid must be strictly ascending")
    refl = reflections(structure, _q_limit(setup, x, params), radiation=setup.radiation,
                       energy_ev=setup.photon_energy())
    weight = refl.f2
    factor = torch.ones_like(refl.q)
    if setup.preferred_orientation is not None and setup.geometry != "q":
        factor = _march_dollase(refl, structure, setup.preferred_orientation, _value(params, "march", setup, x))
    weights = {"total": weight * factor}
    if parts:
        weights.update({k: v * factor for k, v in refl.partials.items()})
    q, merged = merge_peaks(refl.q, weights)
    scale = params.get("scale")
    scale = 1.0 if scale is None else scale
    if setup.geometry == "q":
        position, factor = q, 1.0 / q**2
        fwhm, eta = _value(params, "fwhm_q", setup, x), _value(params, "eta", setup, x)
        profile = banded_pseudo_voigt(x, position, fwhm, eta)
        return _peaks(position, scale * factor, profile, q, merged)
    if setup.geometry == "tof":
        d = 2 * math.pi / q
        position = (_value(params, "zero", setup, x) + _value(params, "difc", setup, x) * d
                    + _value(params, "difa", setup, x) * d**2)
        factor = d**4 * math.sin(math.radians(setup.bank_angle) / 2)
        alpha = _value(params, "alpha0", setup, x) + _value(params, "alpha1", setup, x) / d
        beta = _value(params, "beta0", setup, x) + _value(params, "beta1", setup, x) / d**4
        sigma2 = (_value(params, "sig0", setup, x) + _value(params, "sig1", setup, x) * d**2
                  + _value(params, "sig2", setup, x) * d**4)
        sigma = torch.sqrt(torch.clamp(sigma2, min=1e-10))
        gamma = (_value(params, "gamma0", setup, x) + _value(params, "gamma1", setup, x) * d
                 + _value(params, "gamma2", setup, x) * d**2)
        if gamma.requires_grad or bool((gamma.detach() > 0).any()):
            profile = back_to_back_pseudo_voigt(x[:, None] - position[None, :], alpha[None, :], beta[None, :],
                                                sigma[None, :], torch.clamp(gamma, min=0.0)[None, :])
        else:
            profile = back_to_back_gaussian(x[:, None] - position[None, :], alpha[None, :], beta[None, :],
                                            sigma[None, :])
        return _peaks(position, scale * factor, profile, q, merged)
    lines = [(setup.wavelength, 1.0)] + ([(setup.wavelength2, setup.ratio)] if setup.wavelength2 else [])
    positions, factors, profiles = [], [], []
    for wavelength, share in lines:
        sin_t = q * wavelength / (4 * math.pi)
        inside = sin_t < 1
        theta = torch.asin(torch.clamp(sin_t, max=1 - 1e-12))
        tth = torch.rad2deg(2 * theta)
        position = (tth + _value(params, "zero", setup, x) + _value(params, "displacement", setup, x)
                    * torch.cos(theta) + _value(params, "transparency", setup, x) * torch.sin(2 * theta))
        lp = 1.0 / (torch.sin(theta) ** 2 * torch.cos(theta))
        if setup.radiation == "xray":
            k = setup.polarisation
            lp = lp * (1 + k * torch.cos(2 * theta) ** 2) / (1 + k)
        u, v, w = (_value(params, n, setup, x) for n in ("U", "V", "W"))
        if setup.profile == "tch":
            h_gauss = caglioti_gaussian(theta, u, v, w, _value(params, "P", setup, x))
            h_lorentz = torch.clamp(lorentzian_width(theta, _value(params, "X", setup, x),
                                                     _value(params, "Y", setup, x)), min=0.0)
            fwhm, eta = tch_width(h_gauss, h_lorentz)
        else:
            fwhm, eta = caglioti_gaussian(theta, u, v, w), _value(params, "eta", setup, x)
        profiles.append(banded_pseudo_voigt(x, position, fwhm, eta))
        positions.append(position)
        factors.append(share * lp * inside)
    copies = len(lines)  # each line's peaks: the same reflections at their own 2θ
    return _peaks(torch.cat(positions), scale * torch.cat(factors), BandedProfile.concat(profiles), q.repeat(copies),
                  {key: v.repeat(copies) for key, v in merged.items()})


def _peaks(position, factor, profile, q, merged) -> PowderPeaks:
    parts = {k: factor * v for k, v in merged.items() if k != "total"} or None
    return PowderPeaks(position, factor * merged["total"], profile, q, parts)


def powder_pattern(structure: Structure, x: torch.Tensor, setup: PowderSetup, params: dict | None = None, *,
                   partials: bool = False) -> torch.Tensor | dict:
    """The powder pattern on the grid x without background (see :func:`powder_peaks` for the formulas).

    Returns:
        [n] intensity, or with partials=True {"A-B": [n] element-pair part} whose sum is that intensity.
    """
    peaks = powder_peaks(structure, x, setup, params, parts=partials)
    if partials:
        return {k: peaks.apply(v) for k, v in peaks.parts.items()}
    return peaks.pattern()


def bragg_r_factor(peaks: PowderPeaks, y_obs: torch.Tensor, y_calc: torch.Tensor, background: torch.Tensor,
                   scale=1.0) -> float:
    """R_Bragg = Σ|I_obs − I_calc| / Σ I_obs over the peaks, with the "observed" intensities apportioned from
    the pattern as Rietveld programs do: I_obs,k = I_calc,k Σ_i Φ_ik (y_obs,i − b_i)/(y_calc,i − b_i).

    Args:
        peaks: the calculated peaks on the grid.
        y_obs, y_calc, background: [n] the observed, the calculated (with background) pattern and the background.
        scale: the factor that puts the peaks' intensities on the data's scale (a data term's analytic scale).
    """
    net_calc = (y_calc - background).detach()
    ratio = torch.where(net_calc.abs() > 1e-12 * float(net_calc.abs().max().clamp(min=1e-300)),
                        (y_obs - background).detach() / net_calc, torch.zeros_like(net_calc))
    calc = (scale * peaks.intensity).detach()
    profile = peaks.profile.detach()
    if isinstance(profile, BandedProfile):
        observed = calc * profile.column_sums(ratio)  # the grid step of both sums cancels in the ratio
        calc = calc * profile.column_sums()  # the part of each peak that lies on the grid
    else:
        observed = calc * (profile * ratio[:, None]).sum(0)
        calc = calc * profile.sum(0)
    total = float(observed.abs().sum())
    return float((observed - calc).abs().sum()) / total if total > 0 else float("nan")


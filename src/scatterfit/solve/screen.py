"""A quick screen of library structure types against the data's short-range PDF, before any refinement: with a
few hundred types in the library (structure/library.py), only the most promising are worth a refinement.

Each candidate's G(r) is computed once, at its estimated cell, for two Uiso; a uniform expansion of the cell by
a factor f scales every distance, so G_f(r) ∝ G_1(r / f) (exact for the pair peaks when the widths scale too; the
Qmax ripples move slightly), and the best f in SCALES and the analytic scale ≥ 0 give the candidate's screening Rw
on RANGE. A right type whose cell is off by anisotropic distortion still matches its first shells closely, and
a wrong type does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scatterfit.solve.hypotheses import calibrated

RANGE = (1.5, 10.0)  # Å: the short range the screen compares (the data's end if shorter)
SCALES = np.linspace(0.85, 1.15, 61)  # the uniform cell factors tried (the refinement's lattice bound is ±15 %)
UISO = (0.003, 0.012)  # Å²: a sharp and a soft guess of the atoms' displacements
QDAMP = 0.03  # Å⁻¹
KEEP = 8  # at most this many types are refined after the screen (besides the elements' reference structures)
MIN_KEEP = 2  # at least this many
RELATIVE = 1.6  # and between the two, those whose screening Rw is within this factor of the best


@dataclass
class Screened:
    """One candidate's screen: its label, the best Rw (a PDF's on RANGE; a Bragg pattern's R), the cell factor
    and Uiso (Å²) that gave it, and the factors of the cell rows a, b, c (all equal but for a Bragg screen)."""

    label: str
    rw: float
    factor: float
    uiso: float
    kept: bool = False
    factors: tuple = ()

    def as_dict(self) -> dict:
        return {"label": self.label, "rw": self.rw, "cell_factor": self.factor, "uiso": self.uiso,
                "kept": self.kept, **({"cell_factors": list(self.factors)} if len(set(self.factors)) > 1 else {})}


def _rw(model: np.ndarray, y: np.ndarray) -> float:
    """Rw of ``model`` [..., n] against ``y`` [n] at the analytic scale ≥ 0 (unit weights), [...]."""
    scale = np.clip((model @ y) / np.maximum(np.einsum("...i,...i->...", model, model), 1e-300), 0.0, None)
    residual = y - scale[..., None] * model
    return np.sqrt(np.einsum("...i,...i->...", residual, residual) / float(y @ y))


def _rw_beside(model: np.ndarray, fixed: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rw [F] of a·``fixed`` [n] + b·``model`` [F, n] against ``y`` [n], a, b ≥ 0 by least squares (unit
    weights): the two-phase fit of a candidate beside a phase already found (the better one-phase fit where the
    two-phase optimum has a negative part)."""
    yy, g11, b1 = float(y @ y), float(fixed @ fixed), float(fixed @ y)
    g12, g22, b2 = model @ fixed, np.einsum("fi,fi->f", model, model), model @ y
    det = np.maximum(g11 * g22 - g12**2, 1e-300)
    a, b = (g22 * b1 - g12 * b2) / det, (g11 * b2 - g12 * b1) / det

    def squares(a, b):
        return yy - 2 * (a * b1 + b * b2) + a * a * g11 + 2 * a * b * g12 + b * b * g22

    both = np.where((a >= 0) & (b >= 0), squares(a, b), np.inf)
    alone = np.clip(b2 / np.maximum(g22, 1e-300), 0.0, None)
    one = np.minimum(squares(max(b1 / g11, 0.0), 0.0), squares(0.0, alone))
    return np.sqrt(np.clip(np.minimum(both, one), 0.0, None) / yy)


def _screen_pdf(structure, r: np.ndarray, qmax: float, instrument: dict) -> np.ndarray:
    """G(r) [m] of ``structure`` on ``r`` (Å) as the screen computes it: qdamp QDAMP unless the calibrated
    ``instrument`` ({"qdamp", "qbroad": Å⁻¹}) says otherwise, no gradient."""
    import torch

    from scatterfit.scattering.pdf import pdf

    with torch.no_grad():
        return pdf(structure, torch.as_tensor(r, dtype=structure.positions.dtype), qmax=qmax,
                   **{"qdamp": QDAMP, **instrument}).cpu().numpy()


def screen_one(structure, datasets: list[tuple]) -> tuple[float, float, float]:
    """(mean Rw over ``datasets``, cell factor, Uiso Å²) of the best uniform expansion of ``structure``;
    ``datasets``: (r Å [n], G(r) [n], Qmax Å⁻¹, {"qdamp", "qbroad": Å⁻¹ of a calibrated instrument}, the G(r) [n]
    of a phase already found that the candidate joins, or None) on RANGE."""
    best = (np.inf, 1.0, UISO[0])
    for uiso in UISO:
        s = structure.with_uiso(uiso)
        scores = np.zeros(len(SCALES))
        for r, y, qmax, instrument, beside in datasets:
            lo, hi = r[0] / SCALES[-1], r[-1] / SCALES[0]
            grid = np.arange(lo - 0.05, hi + 0.05, min(0.01, float(np.median(np.diff(r)))))
            g = _screen_pdf(s, grid, qmax, instrument)
            model = np.stack([np.interp(r / f, grid, g) for f in SCALES])  # [F, n]
            scores += _rw(model, y) if beside is None else _rw_beside(model, beside, y)
        scores /= len(datasets)
        k = int(np.argmin(scores))
        if scores[k] < best[0]:
            best = (float(scores[k]), float(SCALES[k]), uiso)
    return best


def screen(candidates: list, datasets: dict, qmax: float | None, beside: dict | None = None) -> list[Screened]:
    """Every candidate (structure/library.Candidate) screened against ``datasets`` ({name: G(r) Dataset}), best
    first; those worth a refinement are marked kept: the best MIN_KEEP to KEEP, as many as lie within RELATIVE of
    the best Rw. A candidate whose structure cannot be built scores Rw 1. With ``beside`` ({name: (r Å [m], G(r)
    [m]) of a phase already found}) each candidate is scored as the second phase of a mixture with it
    (:func:`_rw_beside`), as search–match looks for a second phase."""
    from scatterfit.errors import ScatterfitError

    parts = []
    for name, data in datasets.items():
        q = qmax or float(data.metadata.get("qmax", 0))
        if not q:
            raise ScatterfitError(f"{data.path or name}: no Qmax in the header; give --qmax")
        x, y = np.asarray(data.x, float), np.asarray(data.y, float)
        inside = (x >= max(RANGE[0], x[0])) & (x <= min(RANGE[1], x[-1]))
        found = None if beside is None else np.interp(x[inside], *beside[name])
        parts.append((x[inside], y[inside], q, calibrated({name: data}), found))
    out = []
    for c in candidates:
        try:
            rw, factor, uiso = screen_one(c.structure(), parts)
        except (ValueError, RuntimeError):
            rw, factor, uiso = 1.0, 1.0, UISO[0]
        out.append(Screened(c.label, rw, factor, uiso, factors=(factor,) * 3))
    return _keep(out)


def screened_curves(structure, row: Screened, datasets: dict, qmax: float | None) -> dict:
    """{name: (r Å [m], G(r) [m])} of a screened candidate at its screen's cell factor and Uiso over each
    dataset's screen RANGE (the ``beside`` of :func:`screen`)."""
    s = scaled(structure, row.factors or (row.factor,)).with_uiso(row.uiso)
    out = {}
    for name, data in datasets.items():
        x = np.asarray(data.x, float)
        r = np.arange(max(RANGE[0], x[0]) - 0.05, min(RANGE[1], x[-1]) + 0.05, 0.01)
        out[name] = (r, _screen_pdf(s, r, qmax or float(data.metadata["qmax"]), calibrated({name: data})))
    return out


def _keep(out: list[Screened]) -> list[Screened]:
    """``out`` best first, the best MIN_KEEP to KEEP marked kept: as many as lie within RELATIVE of the best."""
    out.sort(key=lambda s: s.rw)
    close = sum(s.rw <= RELATIVE * out[0].rw for s in out) if out else 0
    for s in out[:min(KEEP, max(MIN_KEEP, close))]:
        s.kept = True
    return out


# --- Bragg powder patterns -------------------------------------------------------------------------------------
# A Bragg pattern is compared where peaks are: each candidate's reflections (hkl, |F|² at one Uiso) are computed
# once; the cell rows are then scaled by the factors its crystal system leaves free (one for cubic and
# rhombohedral cells; a and c for tetragonal, hexagonal and trigonal ones; a, b and c for the lower systems, their
# angles kept), which moves every reflection to Q(s)² = Σ_pq c_pq / (s_p s_q) (c_pq: the parts of hᵀG*h on the
# axes each factor scales). Peaks are deposited on a uniform grid and broadened by one pseudo-Voigt of fixed
# width (a convolution), and the match is measured after projecting out a smooth Chebyshev background: R =
# sin of the angle between the model's and the data's peak signals (R = 1 for no or negative correlation).
# First a coarse scan with wide peaks on the low-angle part (2θ ≤ COARSE_TTH or the first COARSE_Q Å⁻¹), where a
# wrong factor still overlaps the peaks, then a fine scan around the best with the data's own peak width up to
# Q = SCREEN_Q. The score is the better of the two (a right type whose cell the factors cannot fit, such as a
# monoclinic one with its angle off, still matches the wide peaks).

POWDER_UISO = 0.006  # Å²
POWDER_BACKGROUND = 5  # Chebyshev order of the background projected out
COARSE = {"uniform": np.linspace(0.85, 1.15, 76)}  # 0.4 % steps
COARSE_RATIO = np.linspace(0.92, 1.08, 33)  # b/a or c/a against the estimate's, 0.5 % steps
FINE = {1: np.linspace(-0.006, 0.006, 25), 2: np.linspace(-0.006, 0.006, 13), 3: np.linspace(-0.006, 0.006, 9)}
"""The fine scan about the coarse optimum, relative, for one, two and three factors."""
COARSE_TTH = 90.0  # degrees 2θ
COARSE_Q = 6.0  # Å⁻¹
SCREEN_Q = 8.0  # Å⁻¹: the fine scan's end (the reflections to count grow as Q³; beyond, little that tells types apart)
WIDE = 4.0  # × the data's peak width in the coarse scan
ETA = 0.3  # the pseudo-Voigt's Lorentzian fraction
CHUNK = 256  # factor sets evaluated at once
MANY_REFLECTIONS = 1500  # distinct reflections above which a cell is scanned with one factor only


@dataclass
class PowderGrid:
    """A pattern resampled for the screen: uniform x [n] (2θ degrees or Q Å⁻¹), y [n] with the smooth background
    projected out, the background basis [n, K] (orthonormal), the setup (geometry, wavelength, radiation) and the
    peak width (FWHM, x's unit); q [n] is |Q| (Å⁻¹) at each x and ``factor`` [n] the intensity factor there
    (Lorentz–polarisation for 2θ, 1/Q² on a Q grid), interpolated in |Q| instead of evaluated per reflection."""

    x: np.ndarray
    y: np.ndarray
    basis: np.ndarray
    setup: object
    fwhm: float
    q: np.ndarray = None
    factor: np.ndarray = None

    def __post_init__(self):
        if self.setup.geometry == "q":
            self.q, self.factor = self.x, 1.0 / np.maximum(self.x, 1e-6) ** 2
            return
        theta = np.radians(self.x) / 2
        self.q = 4 * np.pi * np.sin(theta) / self.setup.wavelength
        self.factor = 1.0 / (np.sin(theta) ** 2 * np.cos(theta))
        if self.setup.radiation == "xray":
            self.factor = self.factor * (1 + np.cos(2 * theta) ** 2) / 2

    @property
    def qmax(self) -> float:
        if self.setup.geometry == "q":
            return float(self.x[-1]) + 5 * self.fwhm
        return 4 * np.pi * np.sin(np.radians(min(float(self.x[-1]) + 2.0, 179.0) / 2)) / self.setup.wavelength


def powder_grid(data, xmax: float | None = None, wide: bool = False) -> PowderGrid:
    """``data`` (a Bragg pattern Dataset, 2θ or Q) resampled on a uniform grid up to ``xmax``, its background
    projected out; ``wide``: the peak width WIDE × the data's."""
    from scatterfit.errors import ScatterfitError
    from scatterfit.scattering.models import make_forward_model
    from scatterfit.scattering.powder import estimate_fwhm

    setup = make_forward_model("powder", data).setup
    if setup.geometry == "tof":
        raise ScatterfitError(f"{data.path or 'dataset'}: solve reads 2θ and Q powder patterns; a time-of-flight "
                              "pattern needs a refine config in this version")
    x, y = np.asarray(data.x, float), np.asarray(data.y, float)
    keep = np.isfinite(y) & (x <= (xmax if xmax is not None else np.inf))
    x, y = x[keep], y[keep]
    fwhm = (estimate_fwhm(data.x, data.y) or 20 * float(np.median(np.diff(data.x)))) * (WIDE if wide else 1.0)
    step = max(float(np.median(np.diff(x))), fwhm / 5)  # five points per width: enough for the overlap
    grid = np.arange(x[0], x[-1], step)
    y = np.interp(grid, x, y)
    t = 2 * (grid - grid[0]) / (grid[-1] - grid[0]) - 1
    basis = np.polynomial.chebyshev.chebvander(t, POWDER_BACKGROUND)
    basis, _ = np.linalg.qr(basis)
    y = y - basis @ (basis.T @ y)
    return PowderGrid(grid, y, basis, setup, fwhm)


@dataclass
class ReflectionParts:
    """A candidate's reflections, merged where every scale factor moves them alike: the parts of Q² on the scale
    factors' axes, c [M, P] (P = k(k+1)/2 pairs p ≤ q of k factors, off-diagonal ones doubled), and the
    intensities |F|² [M] (multiplicities included)."""

    parts: np.ndarray
    pairs: list
    f2: np.ndarray


def reflection_parts(structure, qmax: float, setup, axes: tuple) -> ReflectionParts:
    """The reflections of ``structure`` to ``qmax`` / 0.85 at Uiso POWDER_UISO, split over the scale factors
    that ``axes`` assigns to the cell rows a, b, c ((0, 0, 0): one uniform factor; (0, 0, 1): a and b together,
    c alone; (0, 1, 2): each its own)."""
    import torch

    from scatterfit.scattering.powder import reflections

    s = structure.with_uiso(POWDER_UISO)
    with torch.no_grad():
        refl = reflections(s, qmax / COARSE["uniform"][0], radiation=setup.radiation,
                           energy_ev=setup.photon_energy())
    hkl, f2 = refl.hkl.cpu().numpy(), refl.f2.cpu().numpy()
    recip = 2 * np.pi * np.linalg.inv(s.cell.detach().cpu().numpy()).T
    metric = recip @ recip.T  # G*, Å⁻²
    k = max(axes) + 1
    pairs = [(p, q) for p in range(k) for q in range(p, k)]
    parts = np.zeros((len(hkl), len(pairs)))
    for i in range(3):
        for j in range(3):
            p, q = sorted((axes[i], axes[j]))
            parts[:, pairs.index((p, q))] += hkl[:, i] * hkl[:, j] * metric[i, j]
    key = np.round(parts, 8)
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.reshape(-1)
    merged = np.zeros((group.max() + 1, len(pairs)))
    merged[group] = parts
    return ReflectionParts(merged, pairs, np.bincount(group, weights=f2))


def _kernel(step: float, fwhm: float) -> np.ndarray:
    """A pseudo-Voigt (Lorentzian fraction ETA) of FWHM ``fwhm`` sampled at ``step`` (the same unit), to ±6 FWHM."""
    import torch

    from scatterfit.scattering.profiles import pseudo_voigt

    half = int(np.ceil(6 * fwhm / step))
    u = torch.arange(-half, half + 1, dtype=torch.float64) * step
    return pseudo_voigt(u, torch.tensor(fwhm, dtype=torch.float64), ETA).numpy()


def _scores(refl: ReflectionParts, grid: PowderGrid, factors: np.ndarray) -> np.ndarray:
    """R [F] of the candidate at each row of scale ``factors`` [F, k] (see the section's comment)."""
    from scipy.signal import fftconvolve

    x, n = grid.x, len(grid.x)
    step = x[1] - x[0]
    kernel = _kernel(step, grid.fwhm)
    norm_y = float(grid.y @ grid.y)
    out = np.ones(len(factors))
    for start in range(0, len(factors), CHUNK):
        s = factors[start:start + CHUNK]  # [C, k]
        inverse = np.stack([1.0 / (s[:, p] * s[:, q]) for p, q in refl.pairs], 1)  # [C, P]
        q = np.sqrt(np.clip(inverse @ refl.parts.T, 0, None))  # [C, M]
        index = np.interp(q, grid.q, np.arange(n, dtype=float), left=-2.0, right=n + 1.0)  # fractional grid index
        weight = refl.f2[None, :] * np.interp(q, grid.q, grid.factor)
        lower = np.floor(index).astype(np.int64)
        frac = index - lower
        rows = np.arange(len(s))[:, None] * n
        model = np.zeros(len(s) * n)
        for offset, share in ((0, 1 - frac), (1, frac)):
            at = lower + offset
            valid = (at >= 0) & (at < n)
            model += np.bincount((rows + at)[valid], weights=(weight * share)[valid], minlength=len(s) * n)
        model = fftconvolve(model.reshape(len(s), n), kernel[None, :], mode="same", axes=1)
        model = model - (model @ grid.basis) @ grid.basis.T
        dot = model @ grid.y
        norm_m = np.einsum("ij,ij->i", model, model)
        cos2 = np.where(dot > 0, dot**2 / np.maximum(norm_m * norm_y, 1e-300), 0.0)
        out[start:start + len(s)] = np.sqrt(np.clip(1 - cos2, 0, 1))
    return out


def _grid(uniform, ratios: list) -> np.ndarray:
    """[F, k] scale factors (u, u r_1, ..., u r_(k−1)) of every combination of ``uniform`` [U] and the ``ratios``
    (k − 1 arrays)."""
    grid = np.stack(np.meshgrid(uniform, *ratios, indexing="ij"), -1).reshape(-1, 1 + len(ratios))
    grid[:, 1:] *= grid[:, :1]
    return grid


def cell_axes(structure) -> tuple:
    """Which scale factor each cell row gets in the screen: (0, 0, 0) for a cubic or rhombohedral cell (one),
    (0, 0, 1) for tetragonal, hexagonal and trigonal ones (a and c), (0, 1, 2) for every lower system (angles
    kept)."""
    from scatterfit.structure.spacegroup import lattice_rule

    rule = lattice_rule(structure)
    if rule.size == 1 or rule.system in ("rhombohedral", "isotropic"):
        return (0, 0, 0)
    if rule.system in ("tetragonal", "hexagonal", "trigonal"):
        return (0, 0, 1)
    return (0, 1, 2)


def screen_one_powder(structure, grids: list[tuple[PowderGrid, PowderGrid]]) -> tuple[float, tuple]:
    """(mean R over the patterns, the best scale factors of the cell rows a, b, c) of ``structure``; ``grids``:
    per pattern its coarse (wide peaks, low angles) and fine grid."""
    axes = cell_axes(structure)
    refls = [(reflection_parts(structure, g_fine.qmax, g_fine.setup, axes), g_coarse, g_fine)
             for g_coarse, g_fine in grids]
    if axes != (0, 0, 0) and max(len(refl.f2) for refl, _, _ in refls) > MANY_REFLECTIONS:
        axes = (0, 0, 0)  # a large cell: one factor (its refinement, if the screen keeps it, frees the rest)
        refls = [(reflection_parts(structure, g_fine.qmax, g_fine.setup, axes), g_coarse, g_fine)
                 for g_coarse, g_fine in grids]
    k = max(axes) + 1

    def wide(factors):
        return sum(_scores(refl, g, factors) for refl, g, _ in refls) / len(refls)

    uniform = COARSE["uniform"]
    if k < 3:
        coarse = _grid(uniform, [COARSE_RATIO] * (k - 1))
        scores = wide(coarse)
    else:  # c/a with b/a = 1, then b/a at the c/a found: two 2-D scans instead of one 3-D one
        first = _grid(uniform, [np.ones(1), COARSE_RATIO])
        at = first[int(np.argmin(wide(first)))]
        coarse = _grid(uniform, [COARSE_RATIO, np.array([at[2] / at[0]])])
        scores = wide(coarse)
    best = coarse[int(np.argmin(scores))]
    steps = FINE[k]
    fine = _grid(best[0] * (1 + steps), [best[p] / best[0] + steps for p in range(1, k)])
    narrow = sum(_scores(refl, g, fine) for refl, _, g in refls) / len(refls)
    j = int(np.argmin(narrow))
    found, score = (fine[j], narrow[j]) if narrow[j] <= scores.min() else (best, scores.min())
    return float(score), tuple(float(found[p]) for p in axes)


def scaled(structure, factors: tuple):
    """``structure`` with its cell rows a, b, c scaled by ``factors`` (three, or one for all; fractional
    coordinates kept)."""
    import torch

    factors = tuple(factors) * 3 if len(factors) == 1 else tuple(factors)
    scale = torch.tensor(factors, dtype=structure.dtype, device=structure.device)
    frac = structure.positions @ torch.linalg.inv(structure.cell)
    cell = structure.cell * scale[:, None]
    return structure.with_(positions=frac @ cell, cell=cell)


def screen_powder(candidates: list, datasets: dict) -> list[Screened]:
    """Every candidate screened against Bragg patterns ({name: Dataset} of kind "xrd", 2θ or Q), best first, the
    promising ones kept (as :func:`screen`); ``Screened.factors`` are those of the cell rows a, b, c, ``factor``
    their geometric mean."""
    grids = []
    for data in datasets.values():
        x0 = float(np.asarray(data.x)[0])
        if data.x_unit == "inv_angstrom":
            coarse, fine = max(COARSE_Q, x0 + 2.0), max(SCREEN_Q, x0 + 3.0)
        else:
            wavelength = float(data.metadata.get("wavelength") or 0) or None
            sin_half = None if wavelength is None else SCREEN_Q * wavelength / (4 * np.pi)
            coarse = max(COARSE_TTH, x0 + 10.0)
            fine = None if sin_half is None or sin_half >= 1 else max(2 * np.degrees(np.arcsin(sin_half)), coarse)
        grids.append((powder_grid(data, xmax=coarse, wide=True), powder_grid(data, xmax=fine)))
    out = []
    for c in candidates:
        try:
            rw, factors = screen_one_powder(c.structure(), grids)
        except (ValueError, RuntimeError):
            rw, factors = 1.0, (1.0, 1.0, 1.0)
        out.append(Screened(c.label, rw, float(np.prod(factors)) ** (1 / 3), POWDER_UISO, factors=factors))
    return _keep(out)

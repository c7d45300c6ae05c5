"""Forward models bound to instrument settings: callables (State, x [n]) -> pattern [n] used by DataTerm."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.instrument import gaussian_resolution
from scatterfit.scattering.pdf import pdf
from scatterfit.scattering.transforms import (
    pdf_from_fq,
    qmin_window,
    reduced_structure_factor,
    sine_table,
    structure_factor,
)
from scatterfit.structure.neighbours import NeighbourCache


class PDFModel:
    """Real-space G(r) (PDFfit2 conventions) of the state's structure; the state's scale, qdamp, qbroad,
    delta1, delta2, spdiameter and shell_thickness are used. ``qmax`` (Å⁻¹) sets the termination ripples (0: none)."""

    mixture_weighting = "pdf"  # G(r) normalised by the structure's own ⟨b⟩² (scattering/mixture.py)

    def __init__(self, qmax: float = 0.0, *, radiation: str = "xray", ripple: str = "pdffit2", rho0=None,
                 skin: float = 1.0):
        self.qmax, self.radiation, self.ripple, self.rho0 = float(qmax), radiation, ripple, rho0
        self.cache = NeighbourCache(skin)

    def __call__(self, state, r: torch.Tensor) -> torch.Tensor:
        p = state.params
        s = state.structure
        return pdf(s, r, scale=p.get("scale") if p.get("scale") is not None else 1.0,
                   qdamp=p.get("qdamp") or 0.0, qbroad=p.get("qbroad") or 0.0, delta1=p.get("delta1") or 0.0,
                   delta2=p.get("delta2") or 0.0, spdiameter=p.get("spdiameter"),
                   shell_thickness=p.get("shell_thickness"), qmax=self.qmax, ripple=self.ripple, rho0=self.rho0,
                   radiation=self.radiation,
                   neighbour_cache=self.cache if s.periodic else None)


QMIN_HIGH = 2.0  # Å⁻¹: the largest qmin a G(r)'s transform is refined to (a reduction rarely starts higher)


@dataclass
class DebyeModel:
    """Debye-equation patterns of a finite structure: kind "iq", "sq", "fq" on the data's Q grid, or "gr"
    through the sine transform of F(Q) on [qmin, qmax] (with optional Lorch window and qdamp).

    The state's qdamp (Å⁻¹) is the instrument's Gaussian Q resolution: the iq, sq and fq patterns are
    convolved with it (scattering/instrument.gaussian_resolution), and G(r) gets its exp(−(qdamp r)²/2).

    A G(r) model declares ``qmin`` as a refinable parameter (:meth:`parameters`): the Q where the data's
    transform started, which a file without a header does not say and which shapes a cluster's G(r) strongly
    (its F(Q) is large at low Q). While the state's qmin is this model's ``qmin`` and not refined, the
    transform runs on [qmin, qmax] as before; otherwise on a grid extended below it to Q > 0, weighted by
    transforms.qmin_window (smooth in qmin; equal to the plain transform to second order in the grid step)."""

    kind: str = "iq"
    radiation: str = "xray"
    qmin: float = 0.5
    qmax: float = 25.0
    qstep: float = 0.02
    lorch: bool = False
    method: str = "fast"
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # sine tables by grid

    def __post_init__(self):
        if self.kind not in ("iq", "sq", "fq", "gr", "saxs"):
            raise ScatterfitError(f"Debye model cannot produce kind '{self.kind}'")

    def parameters(self, values: dict) -> dict:
        """{"qmin": (start, low, high)} of a G(r) model (start: ``values``' qmin, else this model's; bounds 0 to
        QMIN_HIGH Å⁻¹, or up to half qmax); {} for the other kinds."""
        if self.kind != "gr":
            return {}
        high = min(QMIN_HIGH, 0.5 * self.qmax)
        return {"qmin": (float(values.get("qmin", self.qmin)), 0.0, high)}

    @property
    def mixture_weighting(self) -> str | None:
        """I(Q) of a whole structure adds over phases (scattering/mixture.py); the normalised kinds do not."""
        return "structure" if self.kind in ("iq", "saxs") else None

    def __call__(self, state, x: torch.Tensor) -> torch.Tensor:
        s = state.structure
        scale = state.params.get("scale")
        scale = 1.0 if scale is None else scale
        qdamp = state.params.get("qdamp") or 0.0
        if self.kind in ("iq", "saxs"):
            i = debye_intensity(s, x, radiation=self.radiation, method=self.method)
            return scale * (gaussian_resolution(i, x, qdamp) if self.kind == "iq" else i)
        window = None
        if self.kind != "gr":
            q = x
        else:
            qmin = state.params.get("qmin")
            qmin = None if qmin is None else torch.as_tensor(qmin, dtype=x.dtype)
            if qmin is None or (not qmin.requires_grad and abs(float(qmin) - self.qmin) < 1e-12):
                q = torch.arange(self.qmin, self.qmax + 1e-9, self.qstep, dtype=x.dtype, device=x.device)
            else:  # qmin refined: the grid reaches down to Q > 0, weighted from qmin on
                below = math.ceil(self.qmin / self.qstep - 1e-9)
                q = self.qmin + self.qstep * torch.arange(-below, round((self.qmax - self.qmin) / self.qstep) + 1,
                                                          dtype=x.dtype, device=x.device)
                q = q[(q > 1e-9) & (q <= self.qmax + 1e-9)]
                window = qmin_window(q, qmin.to(x.device), self.qstep)
        i = debye_intensity(s, q, radiation=self.radiation, method=self.method)
        sq = structure_factor(i, s, q, radiation=self.radiation)
        if self.kind == "sq":
            return scale * gaussian_resolution(sq, q, qdamp)
        f = reduced_structure_factor(sq, q)
        if self.kind == "fq":
            return scale * gaussian_resolution(f, q, qdamp)
        return scale * pdf_from_fq(f, q, x, lorch=self.lorch, qdamp=qdamp, sin_table=self._sine_table(x, q),
                                   window=window)

    def __getstate__(self) -> dict:  # the sine tables are rebuilt where the model runs, not pickled with it
        return {**self.__dict__, "_tables": {}}

    def _sine_table(self, r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """sin(Q r) for this model's grids, kept for the next call (a refinement calls with the same grids; a
        range ramp with a few prefixes of r: one table per grid, at most four kept)."""
        key = (r.numel(), float(r[0]), float(r[-1]), float(r.sum()), q.numel(), float(q[0]), float(q[-1]),
               r.dtype, str(r.device))
        tables = self._tables
        if key not in tables:
            if len(tables) >= 4:
                tables.pop(next(iter(tables)))
            tables[key] = sine_table(r, q)
        return tables[key]


class BoxScatteringModel:
    """S(Q) or F(Q) of a periodic box (an amorphous or liquid model) from its real-space G(r):

        F(Q) = ∫_0^{R} G(r) sin(Qr) W(r) dr,   S(Q) = 1 + F(Q)/Q,

    with R = ``rmax`` (default: half the shortest box height, the range the box describes) and W the sinc
    (Lorch) window in r against truncation ripples. ``kind`` is "sq" or "fq"; radiation as in PDFModel.
    ``q_weighted=False`` gives S(Q) − 1 for kind "fq" (the interference function that Gudrun/NIMROD-style
    "F(Q)" files hold, in their absolute units through the scale). kind "gr" is the G(r) a user derives from
    such S(Q) data: F(Q) on [qmin, qmax] (step qstep, Å⁻¹)
    sine-transformed back to r — the same transform applied to data and model, so the two compare exactly.
    """

    def __init__(self, kind: str = "sq", *, radiation: str = "xray", rmax: float | None = None, dr: float = 0.01,
                 skin: float = 1.0, qmin: float = 0.8, qmax: float = 20.0, qstep: float = 0.02,
                 q_weighted: bool = True):
        if kind not in ("sq", "fq", "gr"):
            raise ScatterfitError(f"a box scattering model gives kind 'sq', 'fq' or 'gr', not '{kind}'")
        self.kind, self.radiation, self.rmax, self.dr = kind, radiation, rmax, float(dr)
        self.qmin, self.qmax, self.qstep = float(qmin), float(qmax), float(qstep)
        self.q_weighted = bool(q_weighted)
        self.cache = NeighbourCache(skin)

    def __call__(self, state, q: torch.Tensor) -> torch.Tensor:
        from scatterfit.scattering.transforms import fq_from_pdf

        s = state.structure
        if not s.periodic:
            raise ScatterfitError("the box S(Q) model needs a periodic structure (use the Debye model for finite ones)")
        cell = s.cell.detach()
        volume = float(torch.linalg.det(cell).abs())
        heights = [volume / float(torch.linalg.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]).norm()) for k in range(3)]
        rmax = self.rmax or 0.5 * min(heights)
        x = q
        if self.kind == "gr":
            q = torch.arange(self.qmin, self.qmax + 1e-9, self.qstep, dtype=x.dtype, device=x.device)
        r = torch.arange(self.dr, rmax + 1e-9, self.dr, dtype=q.dtype, device=q.device)
        p = state.params
        g = pdf(s, r, qdamp=p.get("qdamp") or 0.0, radiation=self.radiation, neighbour_cache=self.cache)
        f = fq_from_pdf(g, r, q, window=True)
        scale = p.get("scale") if p.get("scale") is not None else 1.0
        if self.kind == "gr":
            return scale * pdf_from_fq(f, q, x)
        if self.kind == "fq":
            return scale * (f if self.q_weighted else f / q)
        return scale * (1.0 + f / q)


class PowderModel:
    """Bragg powder pattern (Rietveld) of the state's crystal on the data grid: 2θ, time of flight or Q as the
    setup's geometry says (scattering/powder.py). The state's scale and the setup's refinable parameters
    (zero, U, V, W, X, Y, ..., difc, alpha1, ...: powder.PARAMETERS) are read from the state, so they are
    refined like any other parameter; the data term adds its Chebyshev background. ``start`` holds starting
    values read off the data (the peak width), used where the config gives none."""

    mixture_weighting = "cell"  # |F|² per unit cell (scattering/mixture.py)

    def __init__(self, setup, start: dict | None = None):
        self.setup = setup
        self.start = dict(start or {})

    def parameters(self, values: dict) -> dict:
        """{name: (start, low, high)} of the instrument parameters this model reads, starting from ``values``,
        else from what the data suggested, else from the defaults."""
        from scatterfit.scattering.powder import parameter_bounds

        return parameter_bounds(self.setup, {**self.start, **values})

    def peaks(self, state, x: torch.Tensor):
        """The calculated peaks (powder.PowderPeaks) on the grid ``x``."""
        from scatterfit.scattering.powder import powder_peaks

        return powder_peaks(state.structure, x, self.setup, state.params)

    def __call__(self, state, x: torch.Tensor) -> torch.Tensor:
        return self.peaks(state, x).pattern()


def _powder(data, *, qmax: float | None = None, **_):
    from scatterfit.scattering.powder import PowderSetup

    geometry = {"degrees": "cw", "microseconds": "tof", "inv_angstrom": "q"}.get(data.x_unit)
    if geometry is None:
        raise ScatterfitError(f"{data.path or 'dataset'}: a powder pattern needs x in 2θ (degrees), time of flight "
                              f"(microseconds) or Q (inv_angstrom), not {data.x_unit}")
    settings = dict(data.metadata.get("powder", {}))  # the config's diffractometer settings (config/builders.py)
    axis = settings.pop("preferred_orientation", None)
    wavelength = data.metadata.get("wavelength")
    if geometry == "cw" and not isinstance(wavelength, (int, float)):
        raise ScatterfitError(f"{data.path or 'dataset'}: a 2θ powder pattern needs its wavelength (Å): the file "
                              "gives none; set wavelength in its [[datasets]] table")
    setup = PowderSetup(geometry=geometry, radiation=data.radiation, wavelength=wavelength if geometry == "cw"
                        else None, preferred_orientation=None if axis is None else tuple(axis), **settings)
    start = {}
    if geometry == "cw":  # the strongest peak's width as the starting W (deg²), inside W's bounds
        from scatterfit.scattering.powder import PARAMETERS, estimate_fwhm

        fwhm = estimate_fwhm(data.x, data.y)
        if fwhm is not None:
            start["W"] = min(max(fwhm**2, 1e-4), 0.9 * PARAMETERS["cw"]["W"].high)
    return PowderModel(setup, start)


def _pdf(data, *, qmax: float, ripple: str = "pdffit2", **_):
    return PDFModel(qmax=qmax, radiation=data.radiation, ripple=ripple)


def _debye(data, *, qmax: float | None = None, qmin: float | None = None, debye_kind: str | None = None, **_):
    return DebyeModel(kind=debye_kind or data.kind, radiation=data.radiation,
                      qmin=float(qmin if qmin is not None else data.metadata.get("qmin", 0.5)),
                      qmax=float(qmax if qmax is not None else data.metadata.get("qmax", 25.0)))


def _box(data, *, q_weighted: bool, qmin: float | None = None, qmax: float | None = None, **_):
    """A box model; for G(r) data the Q range of its transform is the term's qmin/qmax, else the data's."""
    if data.kind != "gr":
        return BoxScatteringModel(kind=data.kind, radiation=data.radiation, q_weighted=q_weighted)
    return BoxScatteringModel(kind="gr", radiation=data.radiation,
                              qmin=float(qmin if qmin is not None else data.metadata.get("qmin", 0.0)),
                              qmax=float(qmax if qmax is not None else data.metadata.get("qmax", 20.0)))


def _shape(data, **options):
    from scatterfit.scattering.shapes import _shape as make

    return make(data, **options)


FORWARD_MODELS = {
    "pdf": _pdf,
    "shape": _shape,
    "debye": _debye,
    "powder": _powder,
    "box": lambda data, **options: _box(data, q_weighted=True, **options),
    "box-interference": lambda data, **_: BoxScatteringModel(kind=data.kind, radiation=data.radiation,
                                                             q_weighted=False),
}
"""Forward models by name (the config's [[terms]].model): factory(dataset, **the term's options) -> a callable
(State, x [n]) -> pattern [n]. A new forward model is one module and one :func:`register_forward_model` line."""


def register_forward_model(name: str, factory) -> None:
    """Make ``factory(dataset, **options)`` available as ``model = "name"`` in config files."""
    FORWARD_MODELS[name] = factory


def make_forward_model(name: str, data, **options):
    """The forward model ``name`` for ``data`` (a Dataset), with the term's options (qmax, qmin, ripple, ...)."""
    if name not in FORWARD_MODELS:
        raise ScatterfitError(f"unknown model '{name}' (known: {', '.join(FORWARD_MODELS)})")
    return FORWARD_MODELS[name](data, **options)

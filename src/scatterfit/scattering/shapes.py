"""Small-angle scattering of homogeneous particles by their shape: analytic form factors of a sphere, a spheroid
and a cylinder, averaged over orientations and over a log-normal distribution of sizes, and the forward model
that refines them (model "shape").

At small Q (Q·d ≪ 2π for the interatomic distances d) a particle scatters as a homogeneous body of its shape:

    I(Q) = scale · ⟨V² P(Q)⟩ / ⟨V²⟩ + background,

with P the orientation-averaged form factor (P(0) = 1), V the particle's volume and ⟨⟩ the average over the
number distribution of sizes, so that ``scale`` is I(0) (the background is the data term's Chebyshev series).
The number distribution of the size is log-normal with median ``radius`` and width ``polydispersity`` (σ of
ln R); weighted by V² ∝ R⁶ it is again log-normal, with median R e^{6σ²} (the moments of a log-normal), which is
what the quadrature samples (SIZES nodes uniform in ln R over ±SPREAD σ, extended by 4σ² below, where the Porod
tail's R⁻⁴ moves the weight at high Q; where the oscillations of P are faster than the nodes, at σ·Q·R ≳ 10, they
have averaged out; within 1e-3 of a brute-force integral up to σ = 0.35, tests/scattering/test_shapes.py). The
shapes:

- sphere of radius R: amplitude 3 (sin x − x cos x) / x³, x = QR;
- spheroid with semi-axes R, R and aspect·R (aspect > 1 prolate, < 1 oblate): the sphere's amplitude at
  x = QR √(1 + μ²(aspect² − 1)), averaged over μ = cos(angle to the axis) ∈ [0, 1] (Gauss–Legendre);
- cylinder of radius R and length 2·aspect·R (aspect ≫ 1 a rod, ≪ 1 a disc): amplitude
  2 J1(QR sinα)/(QR sinα) · sin(QL cosα / 2)/(QL cosα / 2), averaged over μ = cosα.

Everything is differentiable (torch autograd; J1's derivative J0 − J1/x is supplied), in the dtype of Q.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scatterfit.errors import ScatterfitError

SHAPES = ("sphere", "spheroid", "cylinder")
ORIENTATIONS = 64  # Gauss–Legendre nodes over μ ∈ [0, 1]
SIZES = 161  # nodes over the log-normal size distribution: uniform in ln R over ±SPREAD σ
SPREAD = 4.5
SMALL = 1e-4  # below this argument the amplitudes use their Taylor series


class _BesselJ1(torch.autograd.Function):
    """J1(x) with its derivative J0(x) − J1(x)/x (→ 1/2 at x = 0); torch.special.bessel_j1 has no backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.special.bessel_j1(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        small = x.abs() < SMALL
        safe = torch.where(small, torch.ones_like(x), x)
        d = torch.special.bessel_j0(x) - torch.special.bessel_j1(safe) / safe
        return grad * torch.where(small, torch.full_like(x, 0.5), d)


def sphere_amplitude(x: torch.Tensor) -> torch.Tensor:
    """3 (sin x − x cos x) / x³, elementwise (→ 1 − x²/10 at small x)."""
    small = x.abs() < SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    exact = 3 * (torch.sin(safe) - safe * torch.cos(safe)) / safe**3
    return torch.where(small, 1 - x**2 / 10, exact)


def _disc_amplitude(x: torch.Tensor) -> torch.Tensor:
    """2 J1(x) / x (→ 1 − x²/8 at small x)."""
    small = x.abs() < SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 - x**2 / 8, 2 * _BesselJ1.apply(safe) / safe)


def _sinc(x: torch.Tensor) -> torch.Tensor:
    """sin(x) / x (→ 1 − x²/6 at small x)."""
    small = x.abs() < SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 - x**2 / 6, torch.sin(safe) / safe)


def _legendre(n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights on [0, 1] (weights sum to 1)."""
    t, w = np.polynomial.legendre.leggauss(n)
    return (torch.as_tensor((t + 1) / 2, dtype=like.dtype, device=like.device),
            torch.as_tensor(w / 2, dtype=like.dtype, device=like.device))


def form_factor(shape: str, q: torch.Tensor, radius: torch.Tensor, aspect=1.0) -> torch.Tensor:
    """The orientation-averaged form factor P(Q) (P(0) = 1) of one particle, [..., nQ] for ``radius`` (Å) of
    shape [...] and ``q`` [nQ] (Å⁻¹); ``aspect`` as in the module docstring (ignored for a sphere)."""
    if shape not in SHAPES:
        raise ScatterfitError(f"unknown particle shape '{shape}' (known: {', '.join(SHAPES)})")
    qr = radius[..., None] * q  # [..., nQ]
    if shape == "sphere":
        return sphere_amplitude(qr) ** 2
    mu, w = _legendre(ORIENTATIONS, q)
    aspect = torch.as_tensor(aspect, dtype=q.dtype, device=q.device)
    if shape == "spheroid":
        a = sphere_amplitude(qr[..., None] * torch.sqrt(1 + mu**2 * (aspect**2 - 1)))  # [..., nQ, nμ]
    else:
        sin = torch.sqrt(torch.clamp(1 - mu**2, min=0.0))
        a = _disc_amplitude(qr[..., None] * sin) * _sinc(qr[..., None] * aspect * mu)
    return (a**2 * w).sum(-1)


def polydisperse_intensity(shape: str, q: torch.Tensor, radius, aspect=1.0, polydispersity=0.0) -> torch.Tensor:
    """⟨V² P(Q)⟩ / ⟨V²⟩ over a log-normal number distribution of sizes with median ``radius`` (Å) and σ(ln R) =
    ``polydispersity`` (the aspect fixed), [nQ]; 1 at Q = 0."""
    radius = torch.as_tensor(radius, dtype=q.dtype, device=q.device)
    sigma = torch.as_tensor(polydispersity, dtype=q.dtype, device=q.device)
    t = np.linspace(-SPREAD - 4 * float(sigma.detach()), SPREAD, SIZES)  # at high Q, P ∝ R⁻⁴ weights the small sizes
    w = np.exp(-t**2 / 2)
    t = torch.as_tensor(t, dtype=q.dtype, device=q.device)
    w = torch.as_tensor(w / w.sum(), dtype=q.dtype, device=q.device)
    radii = radius * torch.exp(6 * sigma**2 + sigma * t)  # the V²-weighted log-normal's nodes
    return (w[:, None] * form_factor(shape, q, radii, aspect)).sum(0)


def volume(shape: str, radius: float, aspect: float = 1.0) -> float:
    """The particle's volume, Å³."""
    if shape == "sphere":
        return 4 / 3 * math.pi * radius**3
    if shape == "spheroid":
        return 4 / 3 * math.pi * radius**3 * aspect
    return math.pi * radius**2 * 2 * aspect * radius


def guinier_radius(shape: str, radius: float, aspect: float = 1.0) -> float:
    """The radius of gyration of one particle, Å (sphere √(3/5) R; spheroid √((2 + aspect²)/5) R; cylinder
    √(R²/2 + L²/12))."""
    if shape == "sphere":
        return math.sqrt(3 / 5) * radius
    if shape == "spheroid":
        return math.sqrt((2 + aspect**2) / 5) * radius
    return math.sqrt(radius**2 / 2 + (2 * aspect * radius) ** 2 / 12)


def polydisperse_extent(shape: str, radius: float, aspect: float = 1.0, polydispersity: float = 0.0) -> float:
    """The largest dimension, Å, of a particle at the 95th percentile of the log-normal number distribution of
    sizes (median ``radius``): the Dmax of the Shannon sampling of its curve."""
    r = radius * math.exp(1.645 * polydispersity)
    if shape == "sphere":
        return 2 * r
    if shape == "spheroid":
        return 2 * r * max(1.0, aspect)
    return 2 * r * math.hypot(1.0, aspect)


SHAPE_BOUNDS = {"radius": (2.0, 2000.0), "aspect": (0.05, 20.0), "polydispersity": (0.001, 0.5)}
"""Bounds of the shape model's parameters: radius in Å, aspect (spheroid's polar/equatorial semi-axes, cylinder's
length/diameter), polydispersity σ(ln R)."""


class ShapeModel:
    """Forward model "shape": a homogeneous particle's small-angle intensity (kind "iq" or "saxs", Q in Å⁻¹),
    ``scale`` · ⟨V² P(Q)⟩/⟨V²⟩ with the state's radius, aspect and polydispersity (declared by :meth:`parameters`,
    refined like any instrument parameter); the structure's atoms do not enter (the shape's interior is
    homogeneous at these Q)."""

    mixture_weighting = None

    def __init__(self, shape: str = "sphere"):
        if shape not in SHAPES:
            raise ScatterfitError(f"unknown particle shape '{shape}' (known: {', '.join(SHAPES)})")
        self.shape = shape

    def parameters(self, values: dict) -> dict:
        """{name: (start, low, high)}: radius, polydispersity and, for a spheroid or cylinder, aspect, starting
        from ``values`` (else 50 Å, 0.1, 1)."""
        names = ("radius", "polydispersity") + (() if self.shape == "sphere" else ("aspect",))
        starts = {"radius": 50.0, "polydispersity": 0.1, "aspect": 1.0}
        return {k: (float(values.get(k, starts[k])), *SHAPE_BOUNDS[k]) for k in names}

    def __call__(self, state, q: torch.Tensor) -> torch.Tensor:
        p = state.params
        scale = p.get("scale")
        scale = 1.0 if scale is None else scale
        aspect = p.get("aspect") if self.shape != "sphere" else 1.0
        return scale * polydisperse_intensity(self.shape, q, p["radius"], aspect, p["polydispersity"])


def _shape(data, *, shape: str = "sphere", **_):
    if data.x_unit != "inv_angstrom":
        raise ScatterfitError(f"{data.path or 'dataset'}: the shape model needs Q in Å⁻¹, not {data.x_unit}")
    return ShapeModel(shape)

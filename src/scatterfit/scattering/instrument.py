"""Instrument and sample effects applied to computed patterns: Qmax termination, envelopes, Lorch window, Q
resolution. Pure torch, differentiable in every parameter."""

from __future__ import annotations

import math

import torch


def shape_envelope_sphere(r: torch.Tensor, diameter: torch.Tensor) -> torch.Tensor:
    """Spherical-particle envelope γ0(r) = 1 − 3/2 (r/d) + 1/2 (r/d)³ for r < d, else 0 (PDFgui's spdiameter).

    Args:
        r: [nR] Å.
        diameter: 0-d tensor, Å (differentiable).
    """
    x = r / diameter
    return torch.where(x < 1.0, 1.0 - 1.5 * x + 0.5 * x**3, torch.zeros_like(x))


def sphere_overlap_volume(r: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Volume common to two balls of radii r1 and r2 whose centres are r apart, Å³ (differentiable in all three):
    the smaller ball's volume for r ≤ |r1 − r2|, 0 for r ≥ r1 + r2, else the lens
    π (r1 + r2 − r)² (r² + 2r(r1 + r2) − 3(r1 − r2)²) / (12 r).

    Args:
        r: [nR] Å (≥ 0).
        r1, r2: 0-d tensors, Å (> 0).
    """
    small = torch.minimum(r1, r2)
    inside = (r <= (r1 - r2).abs())
    apart = r >= r1 + r2
    r_safe = torch.where(inside | apart, torch.ones_like(r), r)
    lens = math.pi * (r1 + r2 - r_safe) ** 2 * (r_safe**2 + 2 * r_safe * (r1 + r2) - 3 * (r1 - r2) ** 2) / (
        12 * r_safe)
    whole = (4.0 * math.pi / 3.0) * small**3 * torch.ones_like(r)
    return torch.where(apart, torch.zeros_like(r), torch.where(inside, whole, lens))


def shape_envelope_shell(r: torch.Tensor, inner_diameter: torch.Tensor, thickness: torch.Tensor) -> torch.Tensor:
    """Characteristic function γ0(r) of a spherical shell (a hollow sphere) of inner diameter d and wall
    ``thickness`` t: the volume the shell shares with itself shifted by r, over its volume, so γ0(0) = 1.

    With the shell S = B(R_o) − B(R_i) (R_i = d/2, R_o = R_i + t) its self-overlap is
    V(R_o, R_o) − 2 V(R_o, R_i) + V(R_i, R_i) (``sphere_overlap_volume``); d = 0 gives the solid sphere's
    γ0 of diameter 2t (:func:`shape_envelope_sphere`). The envelope of the shell phase of a core–shell particle
    (diffpy.srfit's shell characteristic function); tests/scattering/test_instrument.py checks it against the
    distances between random points of a shell.

    Args:
        r: [nR] Å (≥ 0).
        inner_diameter: 0-d tensor, Å (≥ 0, differentiable).
        thickness: 0-d tensor, Å (> 0, differentiable).
    """
    ri = 0.5 * inner_diameter
    ro = ri + thickness
    overlap = (sphere_overlap_volume(r, ro, ro) - 2.0 * sphere_overlap_volume(r, ro, ri)
               + sphere_overlap_volume(r, ri, ri))
    volume = (4.0 * math.pi / 3.0) * (ro**3 - ri**3)
    return torch.clamp(overlap / volume, min=0.0)


def qmax_ripple(g: torch.Tensor, dr: float, qmax: float) -> torch.Tensor:
    """Apply the termination of a sine transform at Qmax to G(r) sampled at r_n = (n − 1)·dr.

    G is extended as an odd function about r = 0, Fourier transformed, cut at |Q| > qmax and transformed back
    (equivalent to convolving with the sinc kernel that PDFfit2 applies). Differentiable (FFT).

    Args:
        g: [n_nodes] values at r_n = (n − 1)·dr (node 1 is r = 0).
        dr: node spacing, Å.
        qmax: Å⁻¹.
    """
    body = g[1:]  # r = 0, dr, 2dr, ...
    n = body.numel()
    odd = torch.cat([body, torch.zeros(1, dtype=g.dtype, device=g.device), -body.flip(0)[:-1]])  # period 2n
    spec = torch.fft.rfft(odd)
    freq = torch.fft.rfftfreq(odd.numel(), d=dr) * 2 * math.pi  # angular, Å⁻¹
    spec = spec * (freq <= qmax).to(spec.real.dtype)
    back = torch.fft.irfft(spec, n=odd.numel())[:n]
    return torch.cat([g[:1], back])


def lorch_window(q: torch.Tensor, qmax: float) -> torch.Tensor:
    """Lorch modification function sin(πQ/Qmax)/(πQ/Qmax) on [nQ]."""
    return torch.sinc(q / qmax)


def qmax_ripple_segment(g: torch.Tensor, dr: float, qmax: float) -> torch.Tensor:
    """PDFfit2's Qmax cutoff: the segment g (uniform step dr, starting anywhere) is zero-padded to the power of
    two ≥ 2·len, Fourier transformed, cut at |Q| ≥ qmax with PDFfit2's step dQ = 2π/((n_pad − 1)·dr), and
    transformed back. Unlike :func:`qmax_ripple` it ignores the mirror image at negative r, exactly as PDFfit2
    does, so fits can be compared with PDFgui's Rw.

    Args:
        g: [n] values on the calculation segment.
    """
    n = g.numel()
    n_pad = 1 << int(math.ceil(math.log2(2 * n)))
    spec = torch.fft.fft(torch.nn.functional.pad(g, (0, n_pad - n)).to(torch.complex128 if g.dtype == torch.float64
                                                                         else torch.complex64))
    dq = 2 * math.pi / ((n_pad - 1) * dr)
    lo = int(math.ceil(qmax / dq))
    hi = n_pad + 1 - lo
    idx = torch.arange(n_pad, device=g.device)
    keep = ((idx < lo) | (idx >= hi)).to(g.dtype)
    return torch.fft.ifft(spec * keep).real[:n].to(g.dtype)


def gaussian_resolution(pattern: torch.Tensor, q: torch.Tensor, sigma) -> torch.Tensor:
    """A pattern convolved with a Gaussian Q resolution of standard deviation ``sigma`` (Å⁻¹).

    Each output point is the Gaussian-weighted mean of the pattern over the Q grid (rows normalised, so a
    flat pattern stays flat up to the grid's ends). In real space this is the exp(−(σ r)²/2) envelope that
    PDF programs call Qdamp, which is why the DebyeModel takes σ from the qdamp parameter.

    Args:
        pattern: [nQ]; q: [nQ] Å⁻¹ (any spacing); sigma: float or 0-d tensor, Å⁻¹ (≤ 0: unchanged).
    Returns:
        [nQ] the convolved pattern.
    """
    sigma_t = sigma if isinstance(sigma, torch.Tensor) else torch.tensor(float(sigma), dtype=pattern.dtype)
    if float(sigma_t.detach()) <= 0:
        return pattern
    if q.numel() > 2:
        step = q[1:] - q[:-1]
        if bool(((step - step[0]).abs() <= 1e-9 * step[0].abs()).all()):
            return _banded_resolution(pattern, float(step[0].abs()), sigma_t)
    dq = torch.gradient(q)[0].abs()  # [nQ] local spacing: the quadrature weights of the convolution
    kernel = torch.exp(-0.5 * ((q[:, None] - q[None, :]) / sigma_t) ** 2) * dq[None, :]
    return (kernel @ pattern) / kernel.sum(1)


def _banded_resolution(pattern: torch.Tensor, dq: float, sigma: torch.Tensor) -> torch.Tensor:
    """gaussian_resolution on a uniform grid of spacing ``dq`` (Å⁻¹): the same row-normalised Gaussian weights,
    truncated at 6σ (weights below e⁻¹⁸ of the centre's) and applied as a 1-D convolution, O(nQ · σ/dq)."""
    n = pattern.numel()
    half = min(int(math.ceil(6.0 * float(sigma.detach()) / dq)), n - 1)
    offsets = torch.arange(-half, half + 1, dtype=pattern.dtype, device=pattern.device) * dq  # [K]
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)  # [K], symmetric
    padded = torch.nn.functional.pad(pattern.reshape(1, 1, n), (half, half))
    inside = torch.nn.functional.pad(torch.ones_like(pattern).reshape(1, 1, n), (half, half))
    weights = kernel.reshape(1, 1, -1)
    numerator = torch.nn.functional.conv1d(padded, weights).reshape(n)
    denominator = torch.nn.functional.conv1d(inside, weights).reshape(n)
    return numerator / denominator

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

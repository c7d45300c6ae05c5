"""Peak shapes and backgrounds of powder patterns: pure torch, differentiable in every argument.

Constant wavelength: the pseudo-Voigt, its Thompson–Cox–Hastings (TCH) width and mixing from a Gaussian and a
Lorentzian width, and Caglioti's Gaussian width H² = U tan²θ + V tanθ + W. Time of flight: the back-to-back
exponentials of the moderator pulse convolved with a Gaussian (Jorgensen / Von Dreele, GSAS TOF profile 1), or
with a pseudo-Voigt (its Lorentzian part through the exponential integral E1 of a complex argument, as GSAS
and FullProf do).
Backgrounds: Chebyshev polynomials of the first kind on the fit range mapped to [−1, 1].
"""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)
TCH_FWHM = (1.0, 2.69269, 2.42843, 4.47163, 0.07842, 1.0)  # H⁵ = Σ_k c_k H_G^(5−k) H_L^k
TCH_ETA = (1.36603, -0.47719, 0.11116)  # η = Σ_k c_k (H_L/H)^(k+1)


def pseudo_voigt(dx: torch.Tensor, fwhm: torch.Tensor, eta) -> torch.Tensor:
    """Area-normalised pseudo-Voigt η L + (1 − η) G of full width at half maximum ``fwhm``.

    Args:
        dx: [..., n] distance from the peak centre, any unit.
        fwhm: full width in the same unit, broadcastable to dx (> 0).
        eta: Lorentzian fraction, 0 ≤ η ≤ 1, broadcastable to dx.
    Returns:
        profile values in 1/unit, the shape of the broadcast.
    """
    sigma = fwhm / (2 * math.sqrt(2 * LN2))
    gauss = torch.exp(-0.5 * (dx / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    gamma = fwhm / 2
    lorentz = gamma / (math.pi * (dx**2 + gamma**2))
    return eta * lorentz + (1 - eta) * gauss


def tch_width(h_gauss: torch.Tensor, h_lorentz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Thompson–Cox–Hastings: the pseudo-Voigt (FWHM, η) that best matches the Voigt of a Gaussian of FWHM
    ``h_gauss`` and a Lorentzian of FWHM ``h_lorentz`` (same unit, any shape, ≥ 0, not both 0)."""
    powers = [h_gauss ** (5 - k) * h_lorentz**k for k in range(6)]
    fwhm = sum(c * p for c, p in zip(TCH_FWHM, powers)) ** 0.2
    ratio = h_lorentz / fwhm
    eta = TCH_ETA[0] * ratio + TCH_ETA[1] * ratio**2 + TCH_ETA[2] * ratio**3
    return fwhm, eta


def caglioti_gaussian(theta: torch.Tensor, u, v, w, p=0.0) -> torch.Tensor:
    """Gaussian FWHM (degrees 2θ) H_G = √(U tan²θ + V tanθ + W + P / cos²θ), floored at 1e-4°.

    Args:
        theta: [m] Bragg angles θ (radians, half of 2θ).
        u, v, w: Caglioti parameters, deg²; p: the Scherrer-like Gaussian size term, deg².
    """
    tan = torch.tan(theta)
    h2 = u * tan**2 + v * tan + w + p / torch.cos(theta) ** 2
    return torch.sqrt(torch.clamp(h2, min=1e-8))


def lorentzian_width(theta: torch.Tensor, x, y) -> torch.Tensor:
    """Lorentzian FWHM (degrees 2θ) H_L = X tanθ + Y / cosθ: strain (X) and size (Y) broadening."""
    return x * torch.tan(theta) + y / torch.cos(theta)


def back_to_back_gaussian(dt: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                          sigma: torch.Tensor) -> torch.Tensor:
    """Back-to-back exponentials (rise α, decay β) convolved with a Gaussian of standard deviation σ, the
    time-of-flight peak of GSAS profile 1, normalised to unit area:

        Ω(Δ) = αβ / (2(α + β)) [e^u erfc(y) + e^v erfc(z)],
        u = α(ασ² + 2Δ)/2, y = (ασ² + Δ)/(σ√2), v = β(βσ² − 2Δ)/2, z = (βσ² − Δ)/(σ√2).

    e^u erfc(y) is evaluated as e^(u − y²) erfcx(y) where y > 0, so wide tails neither overflow nor give NaN
    gradients.

    Args:
        dt: [..., n] t − t_hkl, µs. alpha, beta: 1/µs; sigma: µs (broadcastable to dt).
    """
    root2 = math.sqrt(2.0)
    s2 = sigma**2
    y = (alpha * s2 + dt) / (sigma * root2)
    z = (beta * s2 - dt) / (sigma * root2)
    u = 0.5 * alpha * (alpha * s2 + 2 * dt)
    v = 0.5 * beta * (beta * s2 - 2 * dt)
    return alpha * beta / (2 * (alpha + beta)) * (_exp_erfc(u, y) + _exp_erfc(v, z))


def back_to_back_pseudo_voigt(dt: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, sigma: torch.Tensor,
                              gamma: torch.Tensor) -> torch.Tensor:
    """Back-to-back exponentials (rise α, decay β) convolved with a pseudo-Voigt whose Gaussian has standard
    deviation σ and whose Lorentzian has FWHM γ, normalised to unit area (GSAS TOF profile 3 as FullProf and
    cryspy write it): the TCH (FWHM H, η) of the two widths, then

        Ω = (1 − η) Ω_G(Δ; σ_H) + η Ω_L(Δ; H),   σ_H = H / √(8 ln 2),
        Ω_L = −(2/π) αβ/(2(α + β)) Im[e^(z₁) E₁(z₁) + e^(z₂) E₁(z₂)],  z₁ = αΔ + iαH/2,  z₂ = −βΔ + iβH/2.

    Args:
        dt: [..., n] t − t_hkl, µs. alpha, beta: 1/µs; sigma: µs; gamma: Lorentzian FWHM, µs (≥ 0);
            all broadcastable to dt.
    """
    fwhm, eta = tch_width(sigma * math.sqrt(8 * LN2), gamma)
    gaussian = back_to_back_gaussian(dt, alpha, beta, fwhm / math.sqrt(8 * LN2))
    half = 0.5 * fwhm
    lorentzian = (-2 / math.pi) * alpha * beta / (2 * (alpha + beta)) * (
        imag_exp_e1(alpha * dt, alpha * half) + imag_exp_e1(-beta * dt, beta * half))
    return (1 - eta) * gaussian + eta * lorentzian


def imag_exp_e1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Im[e^z E₁(z)] at z = x + iy (y > 0), elementwise over the broadcast of x and y, differentiable in both
    (by d/dz e^z E₁(z) = e^z E₁(z) − 1/z and the Cauchy–Riemann equations). Evaluated by scipy's complex E₁ for
    |z| < 40 and by the asymptotic series Σ (−1)^k k!/z^(k+1) (20 terms, error < 1e-15) beyond, so neither
    factor overflows."""
    x, y = torch.broadcast_tensors(x, y)
    return _ImagExpE1.apply(x, y)


def _exp_e1(z):
    """e^z E₁(z) for a complex numpy array z with Im z > 0."""
    import numpy as np
    from scipy.special import exp1

    out = np.empty_like(z)
    far = np.abs(z) >= 40.0
    near = ~far
    out[near] = np.exp(z[near]) * exp1(z[near])
    zf = z[far]
    term, total = 1.0 / zf, 1.0 / zf
    for k in range(1, 20):
        term = -term * k / zf
        total = total + term
    out[far] = total
    return out


class _ImagExpE1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        import numpy as np

        z = x.detach().cpu().numpy().astype(np.float64) + 1j * y.detach().cpu().numpy().astype(np.float64)
        w = _exp_e1(z)
        derivative = w - 1.0 / z  # d/dz e^z E₁(z), holomorphic
        ctx.save_for_backward(torch.as_tensor(derivative.real, dtype=x.dtype, device=x.device),
                              torch.as_tensor(derivative.imag, dtype=x.dtype, device=x.device))
        return torch.as_tensor(w.imag, dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors  # f'(z) = a + ib: ∂Im f/∂x = b, ∂Im f/∂y = a
        return grad * b, grad * a


def _exp_erfc(a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """e^a erfc(y) without overflow: e^(a − y²) erfcx(y) for y > 0, e^a erfc(y) otherwise (each branch fed
    harmless values where it is not used, so the gradient has no NaN)."""
    positive = y > 0
    y_pos = torch.where(positive, y, torch.ones_like(y))
    a_neg = torch.where(positive, torch.zeros_like(a), a)
    y_neg = torch.where(positive, torch.zeros_like(y), y)
    return torch.where(positive, torch.exp(a - y_pos**2) * torch.special.erfcx(y_pos),
                       torch.exp(a_neg) * torch.erfc(y_neg))


def chebyshev_background(t: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Σ_k c_k T_k(t) for t in [−1, 1] (Chebyshev polynomials of the first kind, by their recurrence).

    Args:
        t: [n] positions mapped to [−1, 1]; coefficients: [K] in the pattern's units.
    Returns:
        [n] background.
    """
    out = coefficients[0] * torch.ones_like(t)
    if coefficients.numel() == 1:
        return out
    previous, current = torch.ones_like(t), t
    out = out + coefficients[1] * current
    for k in range(2, coefficients.numel()):
        previous, current = current, 2 * t * current - previous
        out = out + coefficients[k] * current
    return out

"""Peak shapes and backgrounds of powder patterns: pure torch, differentiable in every argument.

Constant wavelength: the pseudo-Voigt, its Thompson–Cox–Hastings (TCH) width and mixing from a Gaussian and a
Lorentzian width, and Caglioti's Gaussian width H² = U tan²θ + V tanθ + W. Time of flight: the back-to-back
exponentials of the moderator pulse convolved with a Gaussian (Jorgensen / Von Dreele, GSAS TOF profile 1).
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

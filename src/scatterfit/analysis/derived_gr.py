"""The G(r) a user derives from reciprocal-space data, for data and model alike: both reduced to F(Q) and
sine-transformed over the fitted Q range with the same Lorch window, so their Rw compares like with like
(the real-space check a referee asks of an S(Q) or F(Q) fit)."""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.transforms import pdf_from_fq

FORMS = ("sq", "interference", "fq")


def reduced_fq(q: np.ndarray, y: np.ndarray, form: str) -> np.ndarray:
    """F(Q) from a pattern: "sq" S(Q) → Q[S − 1]; "interference" S(Q) − 1 (any units) → Q·y; "fq" as is."""
    if form == "sq":
        return q * (y - 1.0)
    if form == "interference":
        return q * y
    if form == "fq":
        return y
    raise ScatterfitError(f"unknown pattern form '{form}' (use {', '.join(FORMS)})")


def derived_gr(q, y_obs, y_calc, form: str, r=None, lorch: bool = True) -> dict:
    """G(r) of data and model by the same transform, and their Rw.

    Args:
        q: [nQ] Å⁻¹ (the fitted range); y_obs, y_calc: [nQ] the patterns (same units); form: see reduced_fq.
        r: [nR] Å (default 1–15 Å, step 0.01 Å).
    Returns:
        {"r": [nR], "g_obs": [nR], "g_calc": [nR] (in the F(Q) units × Å⁻¹), "rw": float}.
    """
    q = np.asarray(q, dtype=float)
    r = np.arange(1.0, 15.0 + 1e-9, 0.01) if r is None else np.asarray(r, dtype=float)
    qt, rt = torch.as_tensor(q), torch.as_tensor(r)
    g = {k: pdf_from_fq(torch.as_tensor(reduced_fq(q, np.asarray(y, dtype=float), form)), qt, rt,
                        lorch=lorch).numpy() for k, y in (("g_obs", y_obs), ("g_calc", y_calc))}
    rw = float(np.sqrt(((g["g_obs"] - g["g_calc"]) ** 2).sum() / max((g["g_obs"] ** 2).sum(), 1e-300)))
    return {"r": r, **g, "rw": rw}

"""What solve reads: G(r) as it is, and total-scattering S(Q) or F(Q) turned into G(r) as a PDF program does
(F(Q) = Q[S(Q) − 1], sine-transformed over the measured Q range without a window, so the model's Qmax
termination describes the result), with Qmax the data's last Q. Other kinds (I(Q) in arbitrary units, Bragg
powder patterns, SAXS) are refused with one line: they need a config in this version.
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError

R_STEP = 0.01  # Å
R_MIN, R_MAX = 0.5, 30.0  # Å: the G(r) derived from S(Q) or F(Q)


def as_pdf(dataset):
    """``dataset`` as a G(r) Dataset ("gr", r in Å; metadata qmax, and "derived_from": the original kind).

    Raises:
        ScatterfitError: a kind solve does not read, or too short a Q range.
    """
    from scatterfit.analysis.derived_gr import reduced_fq
    from scatterfit.scattering.transforms import pdf_from_fq

    if dataset.kind == "gr":
        return dataset
    if dataset.kind not in ("sq", "fq"):
        raise ScatterfitError(f"{dataset.path or 'dataset'}: solve reads G(r), S(Q) and F(Q) in this version (got "
                              f"kind '{dataset.kind}'); refine other kinds with a config")
    q, y = np.asarray(dataset.x, float), np.asarray(dataset.y, float)
    keep = np.isfinite(y) & (q > 0)
    q, y = q[keep], y[keep]
    if len(q) < 50 or q[-1] < 8.0:
        raise ScatterfitError(f"{dataset.path or 'dataset'}: too short a Q range for a PDF (up to {q[-1]:.1f} Å⁻¹; "
                              "solve needs at least 8 Å⁻¹)")
    f = reduced_fq(q, y, dataset.kind)
    r = np.arange(R_MIN, R_MAX + 1e-9, R_STEP)
    g = pdf_from_fq(torch.as_tensor(f), torch.as_tensor(q), torch.as_tensor(r), lorch=False).numpy()
    metadata = {**dataset.metadata, "qmax": float(q[-1]), "derived_from": dataset.kind}
    return dataset.with_(x=r, y=g, sigma=None, kind="gr", x_unit="angstrom", metadata=metadata)

"""Standard uncertainties and correlations of refined parameters from the Jacobian at the minimum, as PDFgui
(PDFfit2) and Rietveld programs report them.

The residuals of every data term, r = √w (y_obs − s·y_model − background) (w = 1/σ² or 1), are differentiated by
central finite differences with respect to the free entries of θ (the unbounded parameter vector) and analytically
with respect to each term's analytic scale s, and the reported parameters v(θ) (a, Uiso per element, qdamp, ...)
get Cov(v) = G (JᵀJ)⁻¹ Gᵀ with G = ∂v/∂θ. Two conventions are reported:

- ``esd``: scaled by the goodness of fit, √(χ²/(N − P)) (GSAS-II, TOPAS): meaningful with or without σ;
- ``esd_unscaled``: √diag(G (JᵀJ)⁻¹ Gᵀ), what PDFfit2/PDFgui print; with σ = 1 (no uncertainties in the data
  file) its absolute size has no meaning.

Energy and restraint terms are not counted: the uncertainties are those the data alone give.
"""

from __future__ import annotations

import math

import numpy as np
import torch

HIGH_CORRELATION = 0.95


def _data_terms(loss):
    from scatterfit.loss import DataTerm

    return [t for t in loss.terms if isinstance(t, DataTerm) and t.weight > 0]


def _residuals(terms, parametrisation, theta, scales=None):
    """(r [N], per-term columns ∂r/∂s [N] each, the terms' analytic scales) at θ; scales fixed when given."""
    state = parametrisation.state(theta)
    parts, columns, found = [], [], []
    for k, term in enumerate(terms):
        x, y, w, model, background, scale = term.model_curves(state)
        s = scale if scales is None else scales[k]
        root_w = torch.ones_like(y) if w is None else torch.sqrt(w)
        parts.append(root_w * (y - s * model - background))
        columns.append(-root_w * model)
        found.append(scale)
    return torch.cat(parts), columns, found


def _named_values(parametrisation, theta) -> dict:
    """The reported parameters that are numbers, flattened: {"a": ..., "Uiso_Ni": ..., "background_0": ...}."""
    out = {}
    for name, value in parametrisation.report(theta).items():
        if isinstance(value, list):
            out.update({f"{name}_{k}": float(v) for k, v in enumerate(value)})
        elif isinstance(value, (int, float)) and value is not None:
            out[name] = float(value)
    return out


def uncertainties(loss, parametrisation, theta: torch.Tensor, *, max_parameters: int = 100,
                  step: float = 1e-5) -> dict:
    """Standard uncertainties (esd) and correlations of the refined parameters at θ.

    Returns:
        {"esd": {name: value}, "esd_unscaled": {name: value}, "correlation": {"names": [...], "matrix": [[...]]},
        "high_correlations":
        [[name, name, r], ...] (|r| > 0.95), "undetermined": names the data do not move at all (a symmetric
        stationary point), "reduced_chi2": float, "points": N, "parameters": P}, or
        {"skipped": reason} when there is no data term or more than ``max_parameters`` free entries.
    """
    terms = _data_terms(loss)
    if not terms:
        return {"skipped": "no data term"}
    theta = theta.detach().clone()
    p = theta.numel()
    if p > max_parameters:
        return {"skipped": f"{p} free parameters (more than {max_parameters}): uncertainties not computed"}
    with torch.no_grad():
        r0, scale_columns, scales = _residuals(terms, parametrisation, theta)
        jac = torch.zeros((r0.numel(), p + len(terms)), dtype=r0.dtype, device=r0.device)
        for k in range(p):
            e = torch.zeros_like(theta)
            e[k] = step
            up = _residuals(terms, parametrisation, theta + e, scales)[0]
            down = _residuals(terms, parametrisation, theta - e, scales)[0]
            jac[:, k] = (up - down) / (2 * step)
        row = 0
        for k, column in enumerate(scale_columns):
            jac[row:row + column.numel(), p + k] = column
            row += column.numel()
    n, m = r0.numel(), p + len(terms)
    dof = max(n - m, 1)
    chi2_red = float((r0 * r0).sum()) / dof
    jac_np = jac.cpu().double().numpy()
    norms = np.linalg.norm(jac_np, axis=0)
    blind = norms <= 1e-9 * max(norms.max(), 1e-300)  # the data do not move with these (e.g. a symmetric point)
    covariance = np.linalg.pinv(jac_np.T @ jac_np) * chi2_red
    covariance[blind, :] = 0.0
    covariance[:, blind] = 0.0
    # reported parameters: v(θ) by central differences, and the analytic scales themselves
    names = list(_named_values(parametrisation, theta))
    g = np.zeros((len(names) + len(terms), m))
    for k in range(p):
        e = torch.zeros_like(theta)
        e[k] = step
        up, down = _named_values(parametrisation, theta + e), _named_values(parametrisation, theta - e)
        g[: len(names), k] = [(up[name] - down[name]) / (2 * step) for name in names]
    for k in range(len(terms)):
        g[len(names) + k, p + k] = 1.0
    names += [f"scale[{t.name}]" for t in terms]
    cov_v = g @ covariance @ g.T
    undetermined = sorted({names[i] for i in range(len(names)) for k in np.flatnonzero(blind) if abs(g[i, k]) > 0})
    refined = [i for i in range(len(names)) if np.abs(g[i]).max() > 0 and names[i] not in undetermined]
    esd = {names[i]: math.sqrt(max(cov_v[i, i], 0.0)) for i in refined}
    unscaled = {name: value / math.sqrt(chi2_red) if chi2_red > 0 else math.nan for name, value in esd.items()}
    # the correlation matrix over distinct parameters: b, c of an isotropic lattice, Biso beside Uiso, and the
    # atom and mass fractions of two phases (c₂ = 1 − c₁) are one parameter seen several times
    distinct = []
    for i in refined:
        if names[i].startswith("Biso_") or ".Biso_" in names[i]:
            continue
        row = g[i] / np.abs(g[i]).max()
        if not any(np.allclose(row, sign * g[j] / np.abs(g[j]).max(), atol=1e-9) for j in distinct
                   for sign in (1, -1)):
            distinct.append(i)
    sub = cov_v[np.ix_(distinct, distinct)]
    d = np.sqrt(np.clip(np.diag(sub), 1e-300, None))
    corr = sub / d[:, None] / d[None, :]
    kept = [names[i] for i in distinct]
    high = [[kept[i], kept[j], float(corr[i, j])] for i in range(len(kept)) for j in range(i + 1, len(kept))
            if abs(corr[i, j]) > HIGH_CORRELATION]
    return {"esd": esd, "esd_unscaled": unscaled, "correlation": {"names": kept, "matrix": np.round(corr, 6).tolist()},
            "high_correlations": high, "undetermined": undetermined, "reduced_chi2": chi2_red, "points": n,
            "parameters": m}

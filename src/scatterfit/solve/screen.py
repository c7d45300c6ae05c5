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

RANGE = (1.5, 10.0)  # Å: the short range the screen compares (the data's end if shorter)
SCALES = np.linspace(0.85, 1.15, 61)  # the uniform cell factors tried (the refinement's lattice bound is ±15 %)
UISO = (0.003, 0.012)  # Å²: a sharp and a soft guess of the atoms' displacements
QDAMP = 0.03  # Å⁻¹
KEEP = 8  # at most this many types are refined after the screen (besides the elements' reference structures)
MIN_KEEP = 2  # at least this many
RELATIVE = 1.6  # and between the two, those whose screening Rw is within this factor of the best


@dataclass
class Screened:
    """One candidate's screen: its label, the best Rw on RANGE, the cell factor and Uiso (Å²) that gave it."""

    label: str
    rw: float
    factor: float
    uiso: float
    kept: bool = False

    def as_dict(self) -> dict:
        return {"label": self.label, "rw": self.rw, "cell_factor": self.factor, "uiso": self.uiso,
                "kept": self.kept}


def _rw(model: np.ndarray, y: np.ndarray) -> float:
    """Rw of ``model`` [..., n] against ``y`` [n] at the analytic scale ≥ 0 (unit weights), [...]."""
    scale = np.clip((model @ y) / np.maximum(np.einsum("...i,...i->...", model, model), 1e-300), 0.0, None)
    residual = y - scale[..., None] * model
    return np.sqrt(np.einsum("...i,...i->...", residual, residual) / float(y @ y))


def screen_one(structure, datasets: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[float, float, float]:
    """(mean Rw over ``datasets``, cell factor, Uiso Å²) of the best uniform expansion of ``structure``;
    ``datasets``: (r Å [n], G(r) [n], Qmax Å⁻¹) on RANGE."""
    import torch

    from scatterfit.scattering.pdf import pdf

    best = (np.inf, 1.0, UISO[0])
    for uiso in UISO:
        s = structure.with_uiso(uiso)
        scores = np.zeros(len(SCALES))
        for r, y, qmax in datasets:
            lo, hi = r[0] / SCALES[-1], r[-1] / SCALES[0]
            grid = np.arange(lo - 0.05, hi + 0.05, min(0.01, float(np.median(np.diff(r)))))
            with torch.no_grad():
                g = pdf(s, torch.as_tensor(grid, dtype=s.positions.dtype), qmax=qmax, qdamp=QDAMP).cpu().numpy()
            model = np.stack([np.interp(r / f, grid, g) for f in SCALES])  # [F, n]
            scores += _rw(model, y)
        scores /= len(datasets)
        k = int(np.argmin(scores))
        if scores[k] < best[0]:
            best = (float(scores[k]), float(SCALES[k]), uiso)
    return best


def screen(candidates: list, datasets: dict, qmax: float | None) -> list[Screened]:
    """Every candidate (structure/library.Candidate) screened against ``datasets`` ({name: G(r) Dataset}), best
    first; those worth a refinement are marked kept: the best MIN_KEEP to KEEP, as many as lie within RELATIVE of
    the best Rw. A candidate whose structure cannot be built scores Rw 1."""
    from scatterfit.errors import ScatterfitError

    parts = []
    for name, data in datasets.items():
        q = qmax or float(data.metadata.get("qmax", 0))
        if not q:
            raise ScatterfitError(f"{data.path or name}: no Qmax in the header; give --qmax")
        x, y = np.asarray(data.x, float), np.asarray(data.y, float)
        inside = (x >= max(RANGE[0], x[0])) & (x <= min(RANGE[1], x[-1]))
        parts.append((x[inside], y[inside], q))
    out = []
    for c in candidates:
        try:
            rw, factor, uiso = screen_one(c.structure(), parts)
        except (ValueError, RuntimeError):
            rw, factor, uiso = 1.0, 1.0, UISO[0]
        out.append(Screened(c.label, rw, factor, uiso))
    out.sort(key=lambda s: s.rw)
    close = sum(s.rw <= RELATIVE * out[0].rw for s in out) if out else 0
    for s in out[:min(KEEP, max(MIN_KEEP, close))]:
        s.kept = True
    return out

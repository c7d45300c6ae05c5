"""The unified loss: a weighted sum of named terms, each returning its value and a breakdown.

A term is any object with ``name``, ``weight`` and ``evaluate(model_state) -> TermValue``; DataTerm pairs a
forward model with a Dataset. Energy and restraint terms plug in with the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io.datasets import Dataset
from scatterfit.scattering.profiles import chebyshev_background


@dataclass
class TermValue:
    """One term's value at a state.

    Attributes:
        value: 0-d tensor (differentiable).
        breakdown: plain floats for reports (Rw, scale, energy per atom, ...).
        curve_tensors: the fitted curves as detached tensors ({"x", "y_obs", "y_calc"} [n] each, the weighted
            residual "residual" √w (y_obs − y_calc) [n], plus "kind", "x_unit" and "form"), or None; ``curves``
            gives them as numpy arrays, copied off the device only when a report asks.
    """

    value: torch.Tensor
    breakdown: dict = field(default_factory=dict)
    curve_tensors: dict | None = None

    @property
    def curves(self) -> dict | None:
        if not self.curve_tensors:
            return None
        return {k: (v.cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in self.curve_tensors.items()}


class Term(Protocol):
    """What a loss term provides. ``xmax`` restricts a data term to x ≤ xmax (a stage's r-range ramp); terms that
    have no x ignore it."""

    name: str
    weight: float

    def evaluate(self, state, xmax: float | None = None) -> TermValue: ...


def rw(y_obs: torch.Tensor, y_calc: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """PDFgui/diffpy weighted residual Rw = sqrt(Σ w (y_obs − y_calc)² / Σ w y_obs²), w = 1/σ² or 1. At a
    perfect fit (Rw = 0, e.g. data simulated by the same model) its gradient is taken as zero, not NaN."""
    w = torch.ones_like(y_obs) if w is None else w
    return torch.sqrt(((w * (y_obs - y_calc) ** 2).sum() / (w * y_obs**2).sum()).clamp_min(1e-300))


def optimal_scale(y_obs: torch.Tensor, y_calc: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """The scale s ≥ 0 minimising Σ w (y_obs − s·y_calc)² (differentiable in y_calc). A scale is a positive
    amount of scatterers: a model that only fits the data upside down gets s = 0 (Rw 1), not a negative scale
    that would make a wrong structure look right."""
    w = torch.ones_like(y_obs) if w is None else w
    return ((w * y_obs * y_calc).sum() / (w * y_calc * y_calc).sum().clamp_min(1e-300)).clamp_min(0.0)


class DataTerm:
    """Misfit between a forward model and a dataset on the data grid, within [xmin, xmax].

    Args:
        model: callable (state, x [n] tensor) -> [n] tensor; ``state`` is what the Parametrisation builds
            (structure and instrument parameters).
        dataset: the measured pattern.
        metric: "rw" (PDFgui Rw), "chi2" (Σ((y−ŷ)/σ)² / n, σ = 1 without uncertainties) or "mse".
        xmin, xmax: fit range in the dataset's x units.
        fit_scale: solve the scale factor analytically (True) or use the model's own scale (False: a free
            parameter).
        weight: weight of this term in the loss.
    """

    def __init__(self, model: Callable, dataset: Dataset, *, metric: str = "rw", xmin: float | None = None,
                 xmax: float | None = None, fit_scale: bool = True, weight: float = 1.0, name: str | None = None,
                 dtype=torch.float64):
        if metric not in ("rw", "chi2", "mse"):
            raise ScatterfitError(f"unknown metric '{metric}' (use rw, chi2 or mse)")
        self.model, self.metric, self.fit_scale, self.weight = model, metric, fit_scale, float(weight)
        self.dataset = dataset.select(xmin, xmax)
        self.name = name or f"data:{dataset.kind}"
        self.x = torch.as_tensor(self.dataset.x, dtype=dtype)
        self.y = torch.as_tensor(self.dataset.y, dtype=dtype)
        self.w = None if self.dataset.sigma is None else torch.as_tensor(1.0 / self.dataset.sigma**2, dtype=dtype)

    def to(self, device) -> "DataTerm":
        """A copy whose data live on ``device`` (the term itself is left as it is)."""
        import copy

        moved = copy.copy(self)
        moved.x, moved.y = self.x.to(device), self.y.to(device)
        moved.w = None if self.w is None else self.w.to(device)
        return moved

    def model_curves(self, state, xmax: float | None = None) -> tuple:
        """(x, y_obs, w or None, model before scaling, background, analytic scale) on the term's range, or on its
        part below ``xmax``. The data are used on the structure's device (copied there on every call unless the
        term was moved with ``to``)."""
        device = state.structure.device
        x, y, w = self.x, self.y, self.w
        if x.device != device:
            x, y, w = x.to(device), y.to(device), None if w is None else w.to(device)
        if xmax is not None and xmax < float(x[-1]):
            m = x <= xmax
            if int(m.sum()) >= 10:
                x, y, w = x[m], y[m], None if w is None else w[m]
        y_calc = self.model(state, x)
        coeffs = getattr(state, "params", {}).get("background")
        background = torch.zeros_like(y_calc)
        if coeffs is not None:  # Chebyshev polynomials on the fit range mapped to [−1, 1]
            lo, hi = float(self.x[0]), float(self.x[-1])
            t = (2 * x - (lo + hi)) / max(hi - lo, 1e-12)
            background = chebyshev_background(t, coeffs)
        scale = optimal_scale(y - background, y_calc, w) if self.fit_scale else torch.ones((), dtype=y_calc.dtype,
                                                                                             device=y_calc.device)
        return x, y, w, y_calc, background, scale

    def evaluate(self, state, xmax: float | None = None) -> TermValue:
        """Misfit on the term's range, or on its part below ``xmax`` (used by range-ramping stages)."""
        x, y, w, y_calc, background, scale = self.model_curves(state, xmax)
        y_calc = scale * y_calc + background
        r = rw(y, y_calc, w)
        if self.metric == "rw":
            value = r
        elif self.metric == "chi2":
            ww = torch.ones_like(y) if w is None else w
            value = (ww * (y - y_calc) ** 2).sum() / y.numel()
        else:
            value = ((y - y_calc) ** 2).mean()
        breakdown = {"rw": float(r.detach()), "scale": float(scale.detach()), "points": len(x)}
        weights = getattr(self.model, "weights", None)
        if weights is not None:  # several phases: each one's scale as PDFgui and Rietveld programs give it
            overall = scale.detach() * (state.params.get("scale") or 1.0)
            breakdown["phase_scales"] = {p: float(overall * w) for p, w in zip(self.model.models,
                                                                               weights(state).detach())}
        residual = (y - y_calc).detach() * (1.0 if w is None else torch.sqrt(w))
        return TermValue(value, breakdown, {"x": x, "y_obs": y, "y_calc": y_calc.detach(), "residual": residual,
                                            "kind": self.dataset.kind, "x_unit": self.dataset.x_unit,
                                            "form": self.pattern_form()})

    def statistics(self, state) -> dict:
        """Agreement factors as Rietveld programs report them, on the term's whole range: Rwp and Rp, Rexp and
        χ²/N (with the data's σ), and R_Bragg when the forward model gives its peaks (a powder model).

        Rwp = √(Σw(y−ŷ)²/Σw y²), Rp = Σ|y−ŷ|/Σ|y|, Rexp = √(N/Σw y²), χ²/N = Σw(y−ŷ)²/N (the reduced χ² with the
        parameter count is in the uncertainties); R_Bragg: powder.bragg_r_factor."""
        with torch.no_grad():
            x, y, w, y_model, background, scale = self.model_curves(state)
            y_calc = scale * y_model + background
            out = {"rp": float((y - y_calc).abs().sum() / y.abs().sum().clamp(min=1e-300))}
            if w is not None:
                out["rexp"] = float(torch.sqrt(y.numel() / (w * y**2).sum()))
                out["chi2_per_point"] = float((w * (y - y_calc) ** 2).sum() / y.numel())
            peaks = getattr(self.model, "peaks", None)
            phase_peaks = getattr(self.model, "phase_peaks", None)
            if peaks is not None or (phase_peaks is not None and self.model.weighting == "cell"):
                from scatterfit.scattering.powder import bragg_r_factor

                if peaks is not None:
                    out["r_bragg"] = bragg_r_factor(peaks(state, x), y, y_calc, background, scale)
                else:  # one R_Bragg per phase, the observed intensities apportioned by the whole pattern
                    for name, p in phase_peaks(state, x).items():
                        out[f"r_bragg[{name}]"] = bragg_r_factor(p, y, y_calc, background, scale)
        return out

    def pattern_form(self) -> str | None:
        """How the fitted pattern reduces to F(Q) (analysis/derived_gr.py), or None for real-space and
        intensity data: "sq" S(Q), "interference" S(Q) − 1 in any units, "fq" Q[S(Q) − 1]."""
        kind = getattr(self.model, "kind", None)
        if kind not in ("sq", "fq"):
            return None
        if kind == "fq" and not getattr(self.model, "q_weighted", True):
            return "interference"
        return kind


class EnergyTerm:
    """Potential energy per atom relative to a reference, eV/atom: (E(structure)/N − reference).

    Args:
        model: an EnergyModel (scatterfit.energy), e.g. ``default_potential()``.
        weight: weight in the loss, per eV/atom.
        reference: energy per atom subtracted (e.g. of the relaxed known phase), eV/atom, so the weight means
            the same across systems.
    """

    def __init__(self, model, weight: float = 1.0, reference: float = 0.0, name: str = "energy"):
        self.model, self.weight, self.reference, self.name = model, float(weight), float(reference), name

    def evaluate(self, state, xmax: float | None = None) -> TermValue:
        """E/N − reference; for several phases the mean of the phases' E/N (each phase must be physical; the
        fractions are left to the data), with each phase's energy in the breakdown."""
        energies, per_atom = {}, []
        for name, st in state.phase_states().items():
            e = self.model.energy(st.structure)
            per_atom.append(e / len(st.structure))
            if not bool(torch.isfinite(per_atom[-1].detach())):
                where = f" (phase {name})" if name else ""
                raise ScatterfitError(f"{self.name}: the {self.model.name} energy{where} is not finite "
                                      "(atoms on top of each other?)")
            energies[name] = (e, per_atom[-1])
        mean = sum(per_atom) / len(per_atom)
        breakdown = {"potential": self.model.name, "energy_eV": float(sum(e for e, _ in energies.values()).detach()),
                     "energy_per_atom_eV": float(mean.detach())}
        if len(energies) > 1:
            breakdown["phases"] = {name: float(pa.detach()) for name, (_, pa) in energies.items()}
        return TermValue(mean - self.reference, breakdown)


class RestraintTerm:
    """A chemical restraint (scatterfit.constraints) as a loss term; Loss wraps restraints automatically."""

    def __init__(self, restraint):
        self.restraint, self.name, self.weight = restraint, restraint.name, restraint.weight

    def evaluate(self, state, xmax: float | None = None) -> TermValue:
        """The restraint's penalty; for several phases the sum over the phases, each phase's breakdown under
        its name."""
        phases = state.phase_states()
        if len(phases) == 1:
            value, breakdown = self.restraint.penalty(state.structure)
            return TermValue(value, {"penalty": float(value.detach()), **breakdown})
        values, breakdown = [], {}
        for name, st in phases.items():
            v, b = self.restraint.penalty(st.structure)
            values.append(v)
            breakdown[name] = {"penalty": float(v.detach()), **b}
        value = sum(values)
        return TermValue(value, {"penalty": float(value.detach()), "phases": breakdown})


class Loss:
    """Σ_k weight_k · term_k(state). ``evaluate`` returns the total and every term's TermValue.

    Terms are DataTerm, EnergyTerm, RestraintTerm or any object with name, weight and evaluate(state);
    restraints (objects with ``penalty``) are wrapped in RestraintTerm.
    """

    def __init__(self, terms: list):
        terms = [RestraintTerm(t) if hasattr(t, "penalty") and not hasattr(t, "evaluate") else t for t in terms]
        if not terms:
            raise ScatterfitError("a loss needs at least one term")
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ScatterfitError(f"loss term names must be unique, got {names}")
        self.terms = terms

    def declared_parameters(self, values: dict) -> dict:
        """{name: (start, low, high)} of the instrument parameters the data terms' forward models declare (a
        powder model's zero, U, V, W, ...; a Debye G(r)'s qmin), starting from ``values`` where they give one: what
        a Parametrisation's ``instrument`` takes."""
        out = {}
        for term in self.terms:
            declare = getattr(getattr(term, "model", None), "parameters", None)
            if declare is not None:
                out.update(declare(values))
        return out

    def evaluate(self, state, xmax: float | None = None, weights: dict | None = None, report_all: bool = False
                 ) -> tuple[torch.Tensor, dict[str, TermValue]]:
        """Total and per-term values; ``weights`` ({term name: weight}) overrides the terms' own weights (a
        stage of a schedule may switch terms off with 0, which skips their evaluation). ``report_all`` also
        evaluates the switched-off terms (for the final report; they still add nothing to the total)."""
        weights = weights or {}
        unknown = sorted(set(weights) - {t.name for t in self.terms})
        if unknown:
            raise ScatterfitError(f"stage weights name unknown term(s) {unknown} "
                                  f"(terms: {[t.name for t in self.terms]})")
        active = [t for t in self.terms if weights.get(t.name, t.weight) != 0]
        shown = self.terms if report_all else active
        values = {t.name: t.evaluate(state, xmax=xmax) for t in shown}
        if report_all:  # the final report: the statistics Rietveld programs print, where a term has them
            for t in shown:
                if hasattr(t, "statistics"):
                    values[t.name].breakdown.update(t.statistics(state))
        total = sum(weights.get(t.name, t.weight) * values[t.name].value for t in active)
        return total, values

    def __call__(self, state) -> torch.Tensor:
        return self.evaluate(state)[0]

    def to(self, device) -> "Loss":
        """The loss with every term that holds data moved to ``device`` (a refinement calls it once)."""
        return Loss([t.to(device) if hasattr(t, "to") else t for t in self.terms])

"""Ranking refined hypotheses by the Bayesian information criterion, with the data's independent points.

For a PDF the independent points of a fit range [rmin, rmax] are the Nyquist count N = (rmax − rmin) Qmax / π
(the points of G(r) are correlated on a finer grid); for a Bragg powder pattern they are its resolution
elements, the range over the peak width (:func:`resolution_elements`). With a misfit Rw (the residual relative
to the signal) and k refined parameters,

    BIC = Σ_datasets N_d ln(Rw_d²) + k ln(Σ N_d),

and the weight of hypothesis i is exp(−ΔBIC_i/2) normalised over the hypotheses (a probability-like weight).

The prior is the chemistry's: a crystal, particle or mixture whose phases lie E eV/atom above the most stable of
the library's types of their formulas (``energy_above_library``, solve/checks.py) gets the prior exp(−E /
METASTABLE_SCALE), no less than LEAST_PRIOR, i.e. the penalty −2 ln(prior) (:func:`energy_penalty`) added to its
BIC; the rest have none. Two hypotheses whose scores differ by less than INDISTINCT cannot be told apart by these
data; then the energy decides (:func:`prefer_stable`): of two such hypotheses of one formula, the one more than
ENERGY_MARGIN eV/atom lower in energy (the default potential) is put first.
"""

from __future__ import annotations

import math

INDISTINCT = 2.0  # ΔBIC below which two hypotheses are not told apart ("not worth more than a bare mention")
STRONG = 6.0  # ΔBIC above which the evidence is strong (Kass & Raftery 1995)
ENERGY_MARGIN = 0.05  # eV/atom: an energy difference the default potential resolves between polymorphs
UNLIKELY_ABOVE = 0.1  # eV/atom above the library's most stable type of the formula: a phase rarely made (90 % of the
#                       known metastable crystals lie within 0.067 eV/atom of the hull, Sun et al., Sci. Adv. 2,
#                       e1600225, 2016; plus the potential's error)
METASTABLE_SCALE = 0.05  # eV/atom: the decay of the prior above the most stable type (the known metastable crystals'
#                          energies above the hull fall off as an exponential of mean 0.03 eV/atom: median 15 meV,
#                          90 % within 67 meV, Sun et al. 2016; widened for the potential and the unrelaxed types)
LEAST_PRIOR = 1e-3  # the prior of a phase far above: made at high pressure, or the potential wrong (a cap on the
#                     penalty: 2 ln 1000 = 13.8, reached 0.35 eV/atom above)
SYSTEMATIC = 0.3  # mean Rw of the best from which its misfit is mostly the model's: the BIC overstates the evidence
MAX_PENALTY = 2 * math.log(1 / LEAST_PRIOR)  # the energy penalty's cap: the ΔBIC within which it can reorder
NO_FIT = 0.5  # mean Rw from which the best hypothesis does not explain the data (short-range rejection: 0.6)


def independent_points(data, xmin: float, xmax: float, qmax: float) -> float:
    """Nyquist count (xmax − xmin) Qmax / π of a G(r) fit range, at least 1."""
    return max((xmax - xmin) * qmax / math.pi, 1.0)


def resolution_elements(data) -> float:
    """The independent points of a Bragg powder pattern: its range over the strongest peak's FWHM (the points
    within one peak width are tied together by the profile; the noise of each is independent, but the misfit
    that decides between structures is systematic and peak-sized), at least 1."""
    import numpy as np

    from scatterfit.scattering.powder import estimate_fwhm

    x = np.asarray(data.x, float)
    fwhm = estimate_fwhm(x, data.y) or 20 * float(np.median(np.diff(x)))
    return max((float(x[-1]) - float(x[0])) / fwhm, 1.0)


def bic(rw: dict, points: dict, n_parameters: int) -> float:
    """Σ_d N_d ln(Rw_d²) + k ln(Σ N_d) (see the module docstring)."""
    total = sum(points.values())
    return sum(points[d] * math.log(max(rw[d], 1e-12) ** 2) for d in rw) + n_parameters * math.log(total)


def energy_penalty(hypothesis) -> float:
    """−2 ln(prior) of a hypothesis' energy above the library's most stable types of its formulas (see the module
    docstring): 2 min(E / METASTABLE_SCALE, ln(1 / LEAST_PRIOR)) for E > 0; 0 without that energy."""
    above = getattr(hypothesis, "energy_above_library", None)  # tests rank namespaces without it
    if above is None or above <= 0:
        return 0.0
    return min(2 * above / METASTABLE_SCALE, MAX_PENALTY)


def rank(hypotheses: list, points: dict) -> list[dict]:
    """The refined hypotheses best first by BIC plus :func:`energy_penalty`: [{"hypothesis", "bic",
    "energy_penalty", "delta_bic" (the score's difference from the first's), "weight"}], failed ones left out."""
    scored = []
    for h in hypotheses:
        if h.error is None:
            row = {"hypothesis": h, "bic": bic(h.rw, points, h.n_parameters), "energy_penalty": energy_penalty(h)}
            scored.append((row["bic"] + row["energy_penalty"], row))
    if not scored:
        return []
    scored.sort(key=lambda pair: pair[0])
    best = scored[0][0]
    total = sum(math.exp(-0.5 * (score - best)) for score, _ in scored)
    for score, row in scored:
        row["delta_bic"] = score - best
        row["weight"] = math.exp(-0.5 * (score - best)) / total
    return [row for _, row in scored]


def prefer_stable(ranked: list[dict]) -> list[dict]:
    """``ranked`` with the first place given to a hypothesis the data cannot tell from the best (ΔBIC below
    INDISTINCT) of the same formula and more than ENERGY_MARGIN eV/atom lower in energy; that row gets
    ``"decided_by": "energy"``. Rows without energies are left where they are."""
    if len(ranked) < 2:
        return ranked
    best = ranked[0]["hypothesis"]
    if best.energy_per_atom is None:
        return ranked
    from scatterfit.solve.checks import formula_key

    rivals = [row for row in ranked[1:] if row["delta_bic"] < INDISTINCT
              and formula_key(row["hypothesis"].formula) == formula_key(best.formula)
              and row["hypothesis"].energy_per_atom is not None
              and row["hypothesis"].energy_per_atom < best.energy_per_atom - ENERGY_MARGIN]
    if not rivals:
        return ranked
    chosen = min(rivals, key=lambda row: row["hypothesis"].energy_per_atom)
    chosen = {**chosen, "decided_by": "energy"}
    return [chosen] + [row for row in ranked if row["hypothesis"] is not chosen["hypothesis"]]


def separating_measurement(first, second) -> str:
    """What measurement would tell two close hypotheses apart."""
    kinds = {first.kind, second.kind}
    if kinds == {"crystal", "nanoparticle"}:
        return ("the instrument's qdamp from a calibration standard measured on it (give --qdamp: a crystal's free "
                "qdamp can mimic a particle's envelope), a PDF to higher r with a better-resolved instrument, or SAXS "
                "for the particle size: the two differ in how the signal fades")
    if "mixture" in kinds:
        return ("a second probe with other contrast (neutron against X-ray) or a Bragg powder pattern: the phases' "
                "fractions and peaks separate there")
    if getattr(first, "model", None) == getattr(second, "model", None) == "shape":  # two small-angle shapes
        return ("the curve to higher Q (where the shapes' form factors differ most) with less noise, or a "
                "micrograph (TEM) of the particles")
    if first.kind == second.kind == "crystal":
        return ("a Bragg powder pattern (peak positions and extinctions tell the space groups apart) or a PDF "
                "with higher Qmax")
    return "a second measurement with other contrast (neutron against X-ray) or higher Qmax"


def verdict(ranked: list[dict]) -> dict:
    """{"best", "fits", "distinguishable", "evidence", "runner_up", "next_measurement", "stability", "caution"}
    of a ranking; "fits" is False when even the best hypothesis leaves a mean Rw of NO_FIT or more (then
    "evidence" says so: the answer is none of these); "caution" is there from a mean Rw of SYSTEMATIC (the
    evidence is overstated); "stability" is there when the best's phases lie more than UNLIKELY_ABOVE above the
    library's most stable type of their formula (a warning beside the energy's capped prior in the ranking)."""
    if not ranked:
        return {"best": None, "fits": False, "distinguishable": False, "evidence": "no hypothesis refined"}
    best = ranked[0]["hypothesis"]
    stability = {}
    above = getattr(best, "energy_above_library", None)  # any object with a label, rw, ... (tests: namespaces)
    if above is not None and above > UNLIKELY_ABOVE:
        stability["stability"] = (f"unlikely: it lies {above:.2f} eV/atom above {best.library_reference}, the most "
                                  "stable of the library's types of its formula (the default potential, each type at "
                                  "its estimated cell)")
    mean_rw = sum(best.rw.values()) / max(len(best.rw), 1)
    if mean_rw >= NO_FIT:
        return {"best": best.label, "fits": False, "distinguishable": False, **stability,
                "evidence": f"none: the best hypothesis leaves Rw {mean_rw:.2f}, none of them explains the data"}
    if len(ranked) == 1:
        return {"best": best.label, "fits": True, "distinguishable": True, "evidence": "only hypothesis", **stability}
    second = ranked[1]["hypothesis"]
    delta = abs(ranked[1]["delta_bic"] - ranked[0]["delta_bic"])
    evidence = "strong" if delta >= STRONG else "positive" if delta >= INDISTINCT else "none"
    out = {"best": best.label, "fits": True, "runner_up": second.label, "delta_bic": delta, "distinguishable":
           delta >= INDISTINCT, "evidence": evidence, **stability}
    if mean_rw >= SYSTEMATIC:  # the BIC counts the misfit as noise of N independent points
        out["caution"] = (f"the best leaves Rw {mean_rw:.2f}: most of its misfit is the model's, not noise, and the "
                          "information criterion, which counts it as noise, overstates the evidence")
    if ranked[0].get("decided_by") == "energy":
        out["decided_by"] = (f"energy: {best.energy_per_atom - second.energy_per_atom:+.3f} eV/atom against the "
                             "runner-up, which the data cannot tell apart")
    if delta < STRONG:
        out["next_measurement"] = separating_measurement(best, second)
    return out

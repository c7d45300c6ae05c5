"""solve(): from measured G(r) data (or S(Q), F(Q), turned into G(r)) or Bragg powder patterns and a composition to
ranked structures, without a config.

1. triage the data (solve/triage.py);
2. screen every library structure type the composition fits (structure/library.py; solve/screen.py) and refine
   a crystal hypothesis for the most promising and for every CIF the user gives (a Bragg pattern's by Rietveld);
3. from the best crystals: when the triage lists a mixture among its classes, mixtures of the best with a
   partner (the best crystal of another formula, and the reference structure of each element it lacks; for a list
   of compounds the best pairs of a two-phase screen, :func:`_compound_mixtures`; for such a list, or when none of
   these is supported, the partners a screen beside the best crystal's fit finds, :func:`_beside_partners`; for a
   Bragg pattern those of its residual, :func:`_residual_partners`); when a two-phase mixture is then the best
   hypothesis, that mixture with a third phase found the same way (:func:`_third_phases`); the best two
   crystals inside a spherical envelope (a nanoparticle), started from the refined crystals; when the triage puts
   particles or clusters first (the signal ends well inside the data, and not as a glass's), also discrete
   closed-shell particles (icosahedra, decahedra, cuboctahedra) of a one-element fcc crystal at the triaged and the
   envelope's refined sizes; each kept
   only when it improves on its crystal (hypotheses.MIN_GAIN) and, for a particle, predicts the G(r) beyond the
   fit range no worse than its crystal (hypotheses.check_holdout);
4. when the triage puts a glass or liquid among its first two classes: an amorphous box of the composition at
   the density the data give (:func:`box_densities`: one or two boxes), every position refined, with the
   classical potential made for exactly its elements where there is one (energy/registry.classical_potential);
5. when the triage does not put a crystal first and the composition names a finite formula (W12O40, C60): a
   molecule or cluster of exactly those atoms, found by a symmetric random search (solve/clusters.py);
6. rank everything by the information criterion (solve/ranking.py); the best few get the default potential's
   energy per atom and their chemistry (solve/checks.py); the energy above the library's most stable type of
   the formula is the ranking's prior, and the energy decides between hypotheses of one formula that the data
   cannot tell apart; the verdict warns when the best lies far above that type.

For Bragg patterns steps 3 to 5 are replaced by mixtures only: the best crystal with the next best of any
formula, with each missing element's reference structure, and with the best type against its residual
(:func:`_residual_partners`), and the best two-phase mixture with the best type against its residual.

The hypotheses of each step are independent: they run on the executor given (a local process pool or a Dask
cluster, optim/executor.py), in this process by default.

Every hypothesis is refined by the same machinery as a refine config (Parametrisation, the r-range ramp,
Levenberg–Marquardt), so each one can be written down and replayed as a refine config (report/solution.py).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from scatterfit.errors import ScatterfitError
from scatterfit.solve.hypotheses import (
    BOUNDS,
    ROOM_TEMPERATURE,
    Hypothesis,
    amorphous_hypothesis,
    calibrated,
    check_bulk,
    check_gain,
    check_holdout,
    checked_calibration,
    core_shell_hypotheses,
    crystal_hypothesis,
    discrete_particle_hypotheses,
    fit_range,
    mixture_hypothesis,
    mixture_with,
    nanoparticle_hypothesis,
    powder_free,
    refine_hypothesis,
    sample_bounds,
    sample_starts,
    structural_count,
    supersede_damped_crystals,
    thermal_bounds,
)
from scatterfit.solve.ranking import (
    INDISTINCT,
    MAX_PENALTY,
    independent_points,
    prefer_stable,
    rank,
    resolution_elements,
    verdict,
)
from scatterfit.solve.screen import RANGE as SCREEN_RANGE
from scatterfit.solve.screen import scaled, screen, screen_powder
from scatterfit.solve.small_angle import MAX_CUT_ATOMS
from scatterfit.solve.triage import Triage, powder_triage, triage
from scatterfit.solve.triage import at_temperature as triage_at_temperature
from scatterfit.solve.triage import in_solution as triage_in_solution

PARTICLES_OF = 2  # the best crystals put into particles
PACKING = (0.15, 1.6)  # plausible ρ0 d1³ of condensed matter (silica glass 0.27, liquid Ar 1.09, fcc 1.41)
GLASS_DENSITY = 0.92  # a glass or liquid against its crystal (typically 5–15 % less dense)
SLOPE_AGREES = 0.25  # a slope density this close to the best crystal's: the data's scale is about 1, take it
CHECKED = 8  # the best hypotheses given an energy and chemistry checks
COMPLEX = 10  # crystal hypotheses with more structural parameters wait for the simpler ones (see _occam)
OCCAM = 0.8  # a complex type is refined when its screening Rw is below this × the best simpler type's


def _partners(ranked: list, hypotheses: list, polymorphs: bool = False, each_formula: bool = False) -> list:
    """Second phases for the best crystal: the best refined crystal of another formula (of any formula with
    ``polymorphs``: a Bragg pattern tells anatase + rutile from either alone, a PDF hardly; of each other formula
    with ``each_formula``, as for a list of candidate compounds), and for each element the best crystal lacks,
    that element's reference structure (ASE's reference states: fcc Ni, diamond Si), refined or not (a minority
    phase alone fails the short-range screen)."""
    if not ranked:
        return []
    best = ranked[0]
    out = []
    for h in ranked[1:]:
        if polymorphs or h.formula != best.formula:
            if not each_formula or h.formula not in {o.formula for o in out}:
                out.append(h)
        if len(out) == 1 and not each_formula:
            break
    present = set(re.findall(r"[A-Z][a-z]?", best.formula))
    elements = {e for h in hypotheses for e in re.findall(r"[A-Z][a-z]?", h.formula)}
    for element in sorted(elements - present):
        label = _reference_label(element)
        match = [h for h in hypotheses if h.label == label and h not in out]
        out += match[:1]
    return out


RESIDUAL_PARTNERS = 1  # second phases taken from the screen of the best crystal's residual (Bragg patterns)
RESIDUAL_PARTNERS_PDF = 2  # second phases taken from the screen beside the best crystal's fit (PDFs)
AT_NOISE = 1.2  # an Rwp within this factor of the counting statistics' expected one leaves nothing to explain


def _at_noise(h: Hypothesis, datasets: dict) -> bool:
    """Whether ``h`` fits every pattern to its noise: Rwp < AT_NOISE × the expected Rwp √(N / Σ y²/σ²) (only for
    patterns with uncertainties)."""
    import numpy as np

    for name, data in datasets.items():
        if data.sigma is None:
            return False
        y, sigma = np.asarray(data.y, float), np.asarray(data.sigma, float)
        if h.rw.get(name, 1.0) >= AT_NOISE * np.sqrt(len(y) / np.sum((y / sigma) ** 2)):
            return False
    return True


def _unrefined(rows: list, options: list, model: str, instrument: tuple = ()) -> list:
    """Unrefined crystal hypotheses of the screened ``rows`` (solve/screen.Screened) at their screened cells."""
    by_label = {c.label: c for c in options}
    return [crystal_hypothesis(scaled(by_label[row.label].structure(), row.factors), row.label,
                               by_label[row.label].formula, by_label[row.label].prototype.source, model, instrument)
            for row in rows]


def _residual_partners(best: list, options: list, datasets: dict, taken: set) -> list:
    """Second phases of a Bragg pattern found where the best refined crystal leaves signal: the library screened
    against its residual (data − fit), as search–match programs look for a second phase; the best
    RESIDUAL_PARTNERS types that are neither the best crystal nor already ``taken`` (labels), as unrefined crystal
    hypotheses at their screened cells. A minority phase screens poorly against the whole pattern (anatase's
    strong peaks outweigh 20 % rutile's), but its peaks are most of the residual."""
    if not best or best[0].result is None or _at_noise(best[0], datasets):
        return []
    others = [c for c in options if c.label not in taken and c.label != best[0].label]
    terms = best[0].result.terms
    residual = {name: data.with_(x=terms[name].curves["x"], sigma=None,
                                 y=terms[name].curves["y_obs"] - terms[name].curves["y_calc"])
                for name, data in datasets.items()}
    return _unrefined(screen_powder(others, residual)[:RESIDUAL_PARTNERS], others, "powder", powder_free(datasets))


def _beside_partners(best: list, options: list, datasets: dict, taken: set, qmax: float | None) -> list:
    """Second phases of a PDF: the library screened beside the best refined crystal's fitted G(r), where the
    phases overlap at every r (screen(..., beside=): data ≈ a·fit + b·candidate, a, b ≥ 0); the best
    RESIDUAL_PARTNERS_PDF types that are neither the best crystal nor already ``taken`` (labels), unrefined at
    their screened cells. hcp Ag's G(r) hides zinc blende GaAs's, but GaAs is most of what hcp Ag leaves."""
    if not best or best[0].result is None or _at_noise(best[0], datasets):
        return []
    others = [c for c in options if c.label not in taken and c.label != best[0].label]
    terms = best[0].result.terms
    beside = {name: (terms[name].curves["x"], terms[name].curves["y_calc"]) for name in datasets}
    return _unrefined(screen(others, datasets, qmax, beside=beside)[:RESIDUAL_PARTNERS_PDF], others, "pdf")


def _third_phases(refined: list, points: dict, options: list, datasets: dict, qmax, bragg: bool) -> list:
    """Three-phase mixtures (hypotheses.mixture_with): when the best of the ``refined`` hypotheses (by BIC) is a
    supported two-phase mixture, it (and another two-phase mixture the data cannot tell from it, ΔBIC below
    INDISTINCT: zinc blende MgO + rock salt ZnS fits as well as the reverse) with each third phase found as its
    second was: the library screened against its residual (a Bragg pattern: :func:`_residual_partners`) or beside
    its fit (a PDF: :func:`_beside_partners`), of types that are neither of its phases; a refined crystal of that
    type where there is one."""
    def two_phase(h) -> bool:
        return h.kind == "mixture" and len(h.structures) == 2 and h.result is not None

    rows = rank(refined, points)
    if not rows or not two_phase(rows[0]["hypothesis"]):
        return []
    tied = [row["hypothesis"] for row in rows[1:] if row["delta_bic"] < INDISTINCT and two_phase(row["hypothesis"])]
    done = {h.label: h for h in refined if h.kind == "crystal" and h.result is not None and not h.error}
    out = []
    for best in [rows[0]["hypothesis"], *tied[:1]]:
        taken = {p.label for p in best.parents}
        thirds = (_residual_partners([best], options, datasets, taken) if bragg
                  else _beside_partners([best], options, datasets, taken, qmax))
        out += [mixture_with(best, done.get(t.label, t)) for t in thirds]
    return out


PAIR_LEADERS = 2  # of each listed compound, the best-screened types that the others are screened beside
COMPOUND_MIXTURES = 2  # the best pairs of a two-phase screen refined as mixtures


def _compound_mixtures(compound_labels: list[set] | None, options: list, screened: list, datasets: dict, qmax,
                       refined: list) -> list:
    """For a list of candidate compounds ("ZnS + Ni"; PDF data): mixtures found by a two-phase screen, whatever
    the phases score alone (a mixture's short range may fail every single type: CsCl's G(r) beside corundum's
    Al–O and O–O peaks). The best PAIR_LEADERS screened types of each compound are fixed in turn, every type of
    each other compound is screened beside its G(r) (screen(..., beside=)), and the COMPOUND_MIXTURES best pairs
    become mixtures of those crystals: the ``refined`` crystal hypothesis of that type where one succeeded, else
    unrefined at its screened cell (the mixture is then refined with the r-range ramp)."""
    from scatterfit.solve.screen import screened_curves

    if compound_labels is None:
        return []
    by_label = {c.label: c for c in options}
    pairs = {}
    for k, own in enumerate(compound_labels):
        leaders = [row for row in screened if row.label in own][:PAIR_LEADERS]
        others = [c for m, other in enumerate(compound_labels) if m != k for c in options if c.label in other]
        for row in leaders:
            beside = screened_curves(by_label[row.label].structure(), row, datasets, qmax)
            for partner in screen(others, datasets, qmax, beside=beside)[:PAIR_LEADERS]:
                key = frozenset((row.label, partner.label))
                if key not in pairs or partner.rw < pairs[key][0]:
                    pairs[key] = (partner.rw, row, partner)
    done = {h.label: h for h in refined if h.result is not None and not h.error}
    out = []
    for _, first, second in sorted(pairs.values(), key=lambda p: p[0])[:COMPOUND_MIXTURES]:
        phases = [done.get(r.label) or _unrefined([r], options, "pdf")[0] for r in (first, second)]
        out.append(mixture_hypothesis(*phases))
    return out


def _tied_leader(rows: list):
    """The refined crystal of another formula that the data cannot tell from the best (ΔBIC < INDISTINCT), or None:
    its mixtures are tried too. On a one-element structure type the G(r) does not depend on the element, so "diamond
    Ni" fits Si + Ni data exactly as well as "diamond Si"; which of the two ranks first is then decided by the
    last bits of the arithmetic (the thread count of the pair sums), and with it which mixtures are tried."""
    if len(rows) < 2 or rows[0]["hypothesis"].result is None:
        return None
    best = rows[0]["hypothesis"]
    for row in rows[1:]:
        h = row["hypothesis"]
        if row["delta_bic"] >= INDISTINCT:
            return None
        if h.result is not None and not h.error and h.formula != best.formula:
            return h
    return None


def _reference_label(element: str) -> str | None:
    """The library label of an element's reference structure (ASE's reference state: "fcc Ni", "diamond Si"),
    or None."""
    from ase.data import atomic_numbers, reference_states

    symmetry = (reference_states[atomic_numbers[element]] or {}).get("symmetry")
    if symmetry is None:
        return None
    return f"{'simple cubic' if symmetry == 'sc' else symmetry} {element}"


def _reference_labels(composition: str) -> set:
    """The reference structures of the composition's elements: always refined (as phases of a mixture they
    matter even when they fail the screen alone)."""
    from scatterfit.structure.library import parse_composition

    return {_reference_label(e) for e in parse_composition(composition)} - {None}


def _compound_labels(composition: str) -> list[set] | None:
    """For a composition that lists candidate compounds ("ZnS + Ni"): the library labels of each compound's
    structure types, in the list's order; None otherwise."""
    from scatterfit.structure.library import candidates, compounds

    listed = compounds(composition)
    return None if listed is None else [{c.label for c in candidates(part)} for part in listed]


def _compound_leaders(compound_labels: list[set] | None, screened: list) -> set:
    """The best-screened structure type of each listed compound (``compound_labels``, :func:`_compound_labels`),
    always refined (a minority phase fails the screen alone, and each compound must be there to be a phase of a
    mixture); empty without a list."""
    out = set()
    for labels in compound_labels or []:
        best = next((row.label for row in screened if row.label in labels), None)  # screened: best first
        if best is not None:
            out.add(best)
    return out


def _family(datasets: dict) -> str:
    """What the datasets are: "bragg" (powder patterns, kind "xrd"), "small-angle" (kind "saxs", or an I(Q)
    ending below small_angle.SMALL_ANGLE_QMAX), "intensity" (wide-angle I(Q) of finite objects, kind "iq") or
    "total" (G(r), S(Q), F(Q)); raises when they mix families."""
    from scatterfit.solve.small_angle import is_small_angle

    families = {"bragg" if data.kind == "xrd" else "small-angle" if is_small_angle(data)
                else "intensity" if data.kind == "iq" else "total" for data in datasets.values()}
    if len(families) > 1:
        raise ScatterfitError("solve takes Bragg powder patterns, small-angle curves, intensities I(Q) or "
                              "total-scattering data (PDF, S(Q), F(Q)) in one run, not two of them: solve them "
                              "separately")
    return families.pop()


def _subgroups(crystals: list, points: dict, notes: list) -> list:
    """The unrefined subgroup hypotheses (solve/subgroups.py) of the best refined crystal among ``crystals`` when
    it is worth lowering (subgroups.worth_lowering), with a note of what was tried; [] otherwise."""
    from scatterfit.solve.subgroups import SUBGROUP_FROM, subgroup_hypotheses, worth_lowering

    rows = [row for row in rank(crystals, points) if row["hypothesis"].kind == "crystal"]
    if not rows or not worth_lowering(rows[0]["hypothesis"]):
        return []
    best = rows[0]["hypothesis"]
    lowered, skipped = subgroup_hypotheses(best)
    tried = ", ".join(h.label.split(" in ")[-1].removesuffix(" (subgroup)") for h in lowered) or "none"
    notes.append(f"{best.label} leaves a mean Rw of {sum(best.rw.values()) / len(best.rw):.3f} (at least "
                 f"{SUBGROUP_FROM:g}): its maximal translationengleiche subgroups were tried ({tried})"
                 + (f"; left out: {'; '.join(skipped)}" if skipped else ""))
    return lowered


def _occam(simple: list, complex_: list, screened: dict) -> list:
    """The crystal hypotheses with more than COMPLEX structural parameters worth refining after the simpler ones:
    those whose screen beat the best simpler type's by OCCAM (all of them when there is no simpler type); the others are
    marked not refined (a crystallographer takes the simplest type that explains the data, and a complex type that
    screens no better than a simple one is not worth minutes of refinement, fit or no fit: a glass's data fit no
    crystal)."""
    best_screen = min((screened[h.label].rw for h in simple if h.label in screened), default=float("inf"))
    out = []
    for h in complex_:
        if h.label not in screened or screened[h.label].rw < OCCAM * best_screen:
            out.append(h)
        else:
            h.error = (f"not refined: {structural_count(h)} structural parameters, and its screen (Rw "
                       f"{screened[h.label].rw:.3f}) was not clearly better than a simpler type's "
                       f"({best_screen:.3f})")
    return out


def box_densities(found: Triage, data, crystals: list) -> list[tuple[float, str]]:
    """[(ρ0 in atoms/Å³, where it comes from)] for amorphous boxes: the low-r slope's density when ρ0 d1³ is
    plausible (PACKING), alone when the data are on an absolute scale (G(r) derived from S(Q) or a normalised
    interference function) or when it is within SLOPE_AGREES of the best refined crystal's; otherwise also (or,
    without a plausible slope, only) GLASS_DENSITY × that crystal's (the best crystal may be a wrong type, and
    the slope is ρ0 times an unknown scale); ρ0 d1³ = 0.7 when neither exists."""
    slope = found.density
    plausible = slope is not None and PACKING[0] <= slope * found.first_peak**3 <= PACKING[1]
    out = []
    if plausible:
        how = "on an absolute scale" if data.metadata.get("absolute") else "assumed on an absolute scale"
        out.append((slope, f"from the low-r slope of G(r), {how}"))
        if data.metadata.get("absolute"):
            return out
    for h in crystals:
        if h.result is not None:
            s = h.result.structure
            rho = float(s.occupancy.detach().sum() / s.volume)
            if plausible and abs(slope / rho - 1) <= SLOPE_AGREES:
                return out
            return out + [(GLASS_DENSITY * rho, f"{GLASS_DENSITY:g} × the refined {h.label}'s")]
    return out or [(0.7 / found.first_peak**3, "ρ0 d1³ = 0.7 from the first peak")]


def _supersede_by(again: Hypothesis, crystals: list) -> None:
    """Mark the crystal that ``again`` (a crystal refined again from its bulk particle's minimum) refined anew as
    superseded, when the new refinement is the better."""
    label = again.label.removesuffix(" (refined again)")
    for h in crystals:
        if h.label == label and h.error is None and again.error is None and h.rw and again.rw \
                and sum(again.rw.values()) < sum(h.rw.values()):
            h.error = f"superseded by {again.label}: the minimum its particle found is better (Rw " \
                      f"{sum(again.rw.values()) / len(again.rw):.4f})"


def box_hypotheses(composition: str, data, found: Triage, crystals: list, density: float | None = None
                   ) -> tuple[list, list]:
    """(the amorphous boxes of a glass or liquid, notes): at a given ``density`` (atoms/Å³), kept, else at the
    densities :func:`box_densities` reads from ``data`` (a G(r)) and the refined ``crystals``, kept when the data
    are on an absolute scale (the low-r slope is then the density) and refined otherwise. On an absolute scale
    a box also gets the network restraints its first peak shows (:func:`_network`), and where a classical
    potential covers the composition's elements it is refined with that energy."""
    from scatterfit.energy.registry import classical_potential
    from scatterfit.structure.library import parse_composition

    measured = bool(data.metadata.get("absolute"))
    classical = classical_potential(parse_composition(composition))  # a box's energy, where one covers it
    densities = [(density, "given")] if density is not None else box_densities(found, data, crystals)
    boxes = [amorphous_hypothesis(composition, rho, found.first_peak, found.extent, how,
                                  refine_density=not measured and density is None,
                                  network=_network(composition, data, found, rho) if measured else None,
                                  energy=classical)
             for rho, how in densities]
    notes = []
    if classical:
        notes.append(f"the glass or liquid boxes are refined with the {classical[0]} energy (a classical potential "
                     f"made for {composition}'s elements; the default potential is too slow for a box at every "
                     "step)")
    return boxes, notes


def _check_density(density: float, found: Triage) -> None:
    """Refuse a given ``density`` (atoms/Å³) that is not positive or that, with the first peak of G(r), packs
    atoms outside PACKING (ρ0 d1³): a unit mistaken (0.0664 read as g/cm³ is 0.002 atoms/Å³) would otherwise
    build a box of vacuum or of overlapping atoms."""
    if not (density > 0 and math.isfinite(density)):
        raise ScatterfitError(f"density {density}: not a positive number of atoms/Å³")
    packing = density * found.first_peak**3
    if not PACKING[0] <= packing <= PACKING[1]:
        raise ScatterfitError(f"density {density:.4g} atoms/Å³ with the first peak of G(r) at "
                              f"{found.first_peak:.2f} Å gives ρ0 d1³ = {packing:.3g}, outside condensed "
                              f"matter's {PACKING[0]:g}–{PACKING[1]:g}: check the value and its unit (g/cm3 or "
                              "atoms/A3)")


def _network(composition: str, data, found: Triage, density: float) -> dict:
    """The network restraints of a glass or melt (solve/ionic.network_restraints) from a G(r) ``data`` on an
    absolute scale at ``density`` atoms/Å³: the first peak's area read with the radiation's weights (coherent
    neutron lengths, or X-rays' f at Q = 0)."""
    from ase.data import atomic_numbers

    from scatterfit.scattering.formfactors import length_at_zero
    from scatterfit.solve.ionic import network_restraints
    from scatterfit.solve.triage import first_shell_area
    from scatterfit.structure.library import compounds, parse_composition

    if compounds(composition) is not None:
        return {}
    counts = parse_composition(composition)
    lengths = {e: length_at_zero(atomic_numbers[e], data.radiation) for e in counts}
    return network_restraints(counts, found.first_peak, first_shell_area(data, found.first_peak, density), lengths)


@dataclass
class Solution:
    """The outcome of a solve: the triage, every hypothesis ranked (best first; failed ones after, with their
    errors), the verdict on the first two, the data's independent points, the time per class (s) and the screen
    of the library's structure types (solve/screen.Screened, best first)."""

    composition: str
    datasets: dict
    triage: Triage
    ranked: list
    failed: list
    verdict: dict
    points: dict
    seconds: dict = field(default_factory=dict)
    wall_time: float = 0.0
    notes: list = field(default_factory=list)
    workers: int = 1
    screened: list = field(default_factory=list)


def _refine_task(task: tuple) -> Hypothesis:
    """Refine one hypothesis (run by an executor; ``task`` = (hypothesis, datasets, qmax, deadline)): unless the
    wall-clock ``deadline`` (time.time(), s) has passed."""
    hypothesis, datasets, qmax, deadline = task
    if deadline is not None and time.time() > deadline:
        hypothesis.error = "not refined: the time budget was spent"
        return hypothesis
    return refine_hypothesis(hypothesis, datasets, qmax=qmax)


class _Ledger:
    """The hypotheses refined so far, saved after each one to ``path`` (a "solve" checkpoint) so that a killed
    solve resumes where it stopped; keyed by class and label (a derived hypothesis is determined by the refined
    crystals it comes from, so its key names it)."""

    def __init__(self, path, fingerprint: str, resume: bool):
        from scatterfit.optim.checkpoint import load_checkpoint

        self.path, self.fingerprint = path, fingerprint
        self.done = {}
        if path is not None and resume and Path(path).is_file():
            self.done = load_checkpoint(path, "solve", fingerprint)["done"]

    @staticmethod
    def key(h: Hypothesis) -> str:
        return f"{h.kind}:{h.label}"

    def record(self, h: Hypothesis) -> None:
        from scatterfit.optim.checkpoint import save_checkpoint

        self.done[self.key(h)] = h
        if self.path is not None:
            save_checkpoint(self.path, "solve", self.fingerprint, {"done": self.done})


def _refine_all(hypotheses: list, datasets: dict, qmax, deadline, executor, progress, ledger: _Ledger,
                t0: float, first_always: bool = False) -> list:
    """The hypotheses refined on ``executor`` (copies when it runs them elsewhere), in their order; those the
    ledger already holds are taken from it; the first is refined whatever the ``deadline`` when
    ``first_always`` (a solve always has an answer). ``progress`` gets one event per hypothesis: {"line", "step"
    (class), "index", "total", "label", "rw", "seconds", "best_rw", "elapsed_s"}."""
    out = [ledger.done.get(ledger.key(h)) for h in hypotheses]
    todo = [k for k, h in enumerate(out) if h is None]
    best = [min((min(h.rw.values()) for h in out if h is not None and h.rw), default=None)]

    def report(k: int, h: Hypothesis) -> None:
        ledger.record(h)
        if h.rw:
            best[0] = min(min(h.rw.values()), best[0] if best[0] is not None else float("inf"))
        if progress is not None:
            rw = ", ".join(f"{v:.4f}" for v in h.rw.values()) if not h.error else h.error
            index = todo[k] + 1
            progress({"line": f"{h.kind} {index}/{len(hypotheses)} {h.label}: Rw {rw} ({h.seconds:.1f} s)",
                      "step": h.kind, "index": index, "total": len(hypotheses), "label": h.label,
                      "rw": h.rw or None, "seconds": h.seconds, "best_rw": best[0],
                      "elapsed_s": time.perf_counter() - t0})

    fresh = executor.map(_refine_task, [(hypotheses[k], datasets, qmax, None if first_always and k == 0 else deadline)
                                        for k in todo], on_result=report)
    for k, h in zip(todo, fresh):
        out[k] = h
    return out


def fingerprint(datasets: dict, composition: str, cifs, qmax, density: float | None = None,
                in_solution: bool = False, qmin: float | None = None, temperature: float | None = None) -> str:
    """A digest of what a solve depends on: the data (and its calibrated instrument), the composition, the CIFs,
    Qmax and the hints (a given density, in solution, Qmin, temperature)."""
    import hashlib

    import numpy as np

    given = ("" if density is None else f"|density {density!r}") + ("|in solution" if in_solution else "")
    given += "" if qmin is None else f"|qmin {qmin!r}"
    given += "" if temperature is None else f"|temperature {temperature!r}"
    digest = hashlib.sha256(f"{composition}|{qmax}|{sorted(calibrated(datasets).items())}{given}".encode())
    for name, data in datasets.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(data.x, dtype=float).tobytes())
        digest.update(np.ascontiguousarray(data.y, dtype=float).tobytes())
    for path in cifs or []:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _widest(*bounds: dict) -> dict:
    """The union of bound dicts {group: (lo, hi)}: each group's lowest lo and highest hi."""
    out = {}
    for given in bounds:
        for key, (lo, hi) in given.items():
            out[key] = (min(lo, out[key][0]), max(hi, out[key][1])) if key in out else (lo, hi)
    return out


def _with_qmin(datasets: dict, qmin: float, qmax: float | None) -> dict:
    """``datasets`` with the given Qmin (Å⁻¹) in the metadata of the G(r) files (not of a G(r) derived from S(Q),
    whose transform starts where its data do).

    Raises:
        ScatterfitError: Qmin negative, not a number, or not below the dataset's Qmax."""
    from scatterfit.solve.inputs import checked_qmin

    out = {}
    for name, data in datasets.items():
        try:
            checked_qmin(qmin, qmax or float(data.metadata.get("qmax", 0) or 0))
        except ScatterfitError as exc:
            raise ScatterfitError(f"{data.path or name}: {exc}") from None
        given = data.kind == "gr" and "derived_from" not in data.metadata
        out[name] = data.with_(metadata={**data.metadata, "qmin": float(qmin)}) if given else data
    return out


def _clusters(composition: str, datasets: dict, qmax, found: Triage, pool, checkpoint, resume: bool, notes: list,
              deadline, progress, t0: float) -> list:
    """Cluster hypotheses (solve/clusters.py) of a composition that names a finite formula (at least
    MIN_CLUSTER_ATOMS atoms: W12O40, C60, Pt21; TiO2 is a formula unit), unrefined; none, with a note saying why,
    when it names elements only, is too large, or when the budget is spent or the search fails.
    The search checkpoints beside the solve's ``checkpoint`` and reports each generation to ``progress`` (an
    event {"line", "step": "cluster search", "index": candidates evaluated, "total": the search's budget, "best_rw",
    "elapsed_s"})."""
    from scatterfit.solve.clusters import (
        MAX_CLUSTER_ATOMS,
        MIN_CLUSTER_ATOMS,
        SEARCH_BUDGET,
        cluster_counts,
        cluster_hypotheses,
        search_cluster,
    )

    counts = cluster_counts(composition)
    if counts is None or sum(counts.values()) < MIN_CLUSTER_ATOMS:
        notes.append(f"no cluster hypotheses: '{composition}' gives no whole atom counts of {MIN_CLUSTER_ATOMS} to "
                     f"{MAX_CLUSTER_ATOMS} atoms (give the cluster's formula, e.g. W12O40)")
        return []
    if deadline is not None and time.time() > deadline:
        notes.append("no cluster hypotheses: the time budget was spent")
        return []
    where = None if checkpoint is None else Path(checkpoint).with_name("solve_cluster_search.pt")

    def report(evaluations: int, generation: int, best: float, rw) -> None:
        if progress is not None:
            line = (f"cluster search: generation {generation}, {evaluations} candidates, best loss {best:.4f}"
                    + (f" (Rw {rw:.4f})" if rw is not None else ""))
            progress({"line": line, "step": "cluster search", "index": evaluations, "total": SEARCH_BUDGET,
                      "best_rw": rw, "elapsed_s": time.perf_counter() - t0})

    try:
        found_cluster, restraints, offered = search_cluster(counts, datasets, qmax, found.first_peak, executor=pool,
                                                            checkpoint=where, resume=resume, observers=[report])
    except ScatterfitError as exc:
        notes.append(f"no cluster hypotheses: {exc}")
        return []
    formula = "".join(f"{e}{n}" for e, n in counts.items())
    out = cluster_hypotheses(found_cluster, restraints, offered, formula, datasets)
    if out:  # the search's time counts once, with the first
        out[0].search_seconds = found_cluster.wall_time
    return out


def _check(ranked: list, potential, notes: list, candidates: list = ()) -> None:
    """Energy per atom and chemistry of the CHECKED best hypotheses and of any other the energy prior could put
    ahead of the best (ΔBIC within MAX_PENALTY; notes say why energies are missing), and their energies above the
    most stable of the library ``candidates`` of their formulas (ranking.energy_penalty reads them)."""
    from scatterfit.solve.checks import chemistry_checks, energetics

    top = [row["hypothesis"] for k, row in enumerate(ranked) if k < CHECKED or row["delta_bic"] < MAX_PENALTY]
    for h in top:
        h.checks = chemistry_checks(h)
    if potential is None:
        notes.append("energies not computed (no potential)")
        return
    try:
        from scatterfit.energy.registry import make_potential

        model = make_potential(potential) if isinstance(potential, str) else potential
    except ScatterfitError as exc:
        notes.append(f"energies not computed: {exc}")
        return
    energetics(top, model, candidates)


def solve(datasets: dict, composition: str, *, cifs: list | None = None, qmax: float | None = None,
          qmin: float | None = None, instrument: dict | None = None, density: float | None = None,
          in_solution: bool = False, temperature: float | None = None, budget: float | None = None, progress=None,
          executor=None, potential="chgnet", checkpoint=None, resume: bool = False) -> Solution:
    """Ranked structures for ``datasets`` ({name: Dataset}, G(r), S(Q) or F(Q) of one sample; see
    solve/inputs.py) of ``composition`` (a formula, "TiO2", or elements, "Ti O").

    Args:
        cifs: structure files of further crystal hypotheses (a folder's CIFs).
        qmax: Qmax of the data's Fourier transform, Å⁻¹, when the headers do not say.
        qmin: Qmin of the data's Fourier transform, Å⁻¹ (a G(r) file's; a G(r) derived here from S(Q) starts
            where its data do): held in the Debye models of clusters, which otherwise refine it (it shapes a
            finite object's G(r): solve/clusters.py), and taken off the low-r slope of the triage.
        instrument: the instrument's resolution from a calibration standard, {"qdamp": Å⁻¹, "qbroad": Å⁻¹}
            (either or both): held at these values in every hypothesis of a PDF instead of refined.
        density: the sample's number density, atoms/Å³, when it was measured (solve/inputs.number_density reads
            g/cm³): a glass's or liquid's box is built at it and keeps it, instead of the density the low-r slope
            of G(r) suggests (total scattering only; other data do not use it).
        in_solution: the sample is dissolved or dispersed in a solvent whose scattering was subtracted: only
            finite objects (clusters, molecules, particles) are ranked (triage.in_solution); the crystals are
            refined only as the particles' parents, and a particle needs no gain over its crystal.
        temperature: the sample's temperature during the measurement, K: an element above its melting point is
            tried as a liquid first (triage.at_temperature), and above room temperature the Biso bound grows with
            it (hypotheses.thermal_bounds).
        budget: seconds: no new hypothesis is started after this (those refined so far are ranked).
        progress: called with an event dict after each hypothesis (its "line" is one line of text; see
            :func:`_refine_all`).
        executor: where the hypotheses run: None (this process), an executor spec ("processes:2",
            "dask-local:2", "dask://host:8786") or an executor object (optim/executor.py).
        potential: the energy model of the checks (a registry name or an object with ``energy``), or None.
        checkpoint: a file the refined hypotheses are saved to after each one.
        resume: take the hypotheses already in ``checkpoint`` instead of refining them again.
    Raises:
        ScatterfitError: no dataset, a dataset without Qmax (header or ``qmax``), or a composition no hypothesis
            fits, a density that is not positive or, with the first peak of G(r), not that of condensed matter.
    """
    from scatterfit.optim.executor import make_executor
    from scatterfit.solve.inputs import as_pdf
    from scatterfit.structure import read_structure
    from scatterfit.structure.library import candidates, formula_of

    if not datasets:
        raise ScatterfitError("solve needs at least one dataset")
    family = _family(datasets)
    calibration = _checked_instrument(instrument or {}, family)
    bragg = family == "bragg"
    t0 = time.perf_counter()
    deadline = None if budget is None else time.time() + budget
    if family == "small-angle":
        return _solve_small_angle(datasets, composition, budget=budget, progress=progress, executor=executor,
                                  checkpoint=checkpoint, resume=resume, t0=t0)
    if family == "intensity":
        return _solve_intensity(datasets, composition, budget=budget, progress=progress, executor=executor,
                                potential=potential, checkpoint=checkpoint, resume=resume, t0=t0)
    datasets = {name: data if bragg else as_pdf(data, composition) for name, data in datasets.items()}
    if qmin is not None and not bragg:
        datasets = _with_qmin(datasets, qmin, qmax)
    first = next(iter(datasets.values()))
    found = powder_triage(first) if bragg else triage(first)
    if in_solution:
        if bragg:
            raise ScatterfitError(f"{first.path or 'dataset'}: a Bragg powder pattern is of a crystalline powder, not "
                                  "of a sample in solution (give its total scattering or PDF, or leave out the "
                                  "in-solution hint)")
        found = triage_in_solution(found)
    if temperature is not None:
        from scatterfit.solve.inputs import checked_temperature

        temperature = checked_temperature(temperature)
        if not bragg:
            found = triage_at_temperature(found, composition, temperature)
    if density is not None and not bragg:
        _check_density(density, found)
    if bragg and found.classes[0] == "amorphous":
        raise ScatterfitError(f"{first.path or 'dataset'}: {found.reasons[0]}; solve its total scattering (S(Q) "
                              "to high Q, or the PDF) instead")
    points = {}
    # Biso bounds (of a small particle's surface, of a hot sample), which hypotheses.refine_hypothesis reads
    wide = thermal_bounds(temperature) if bragg else _widest(sample_bounds(found), thermal_bounds(temperature))
    for name, data in datasets.items():
        if bragg:
            points[name] = resolution_elements(data)
            if wide:
                datasets[name] = data.with_(metadata={**data.metadata, "bounds": wide})
            continue
        q = qmax or float(data.metadata.get("qmax", 0))
        if not q:
            raise ScatterfitError(f"{data.path or name}: no Qmax in the header; give --qmax")
        given = {"calibration": calibration} if calibration else {}
        if wide:
            given["bounds"], given["starts"] = wide, sample_starts(found)
        datasets[name] = data = data.with_(metadata={**data.metadata, "qmax": q, **given})  # what models read
        points[name] = independent_points(data, *fit_range(data), q)

    options = candidates(composition)
    screened = screen_powder(options, datasets) if bragg else screen(options, datasets, qmax)
    compound_labels = _compound_labels(composition)
    always = _reference_labels(composition) | _compound_leaders(compound_labels, screened)
    chosen = {row.label: row for row in screened if row.kept or row.label in always}
    order = {row.label: k for k, row in enumerate(screened)}
    model, instrument = ("powder", powder_free(datasets)) if bragg else ("pdf", ())
    hypotheses = [crystal_hypothesis(scaled(c.structure(), chosen[c.label].factors), c.label, c.formula,
                                     c.prototype.source, model, instrument)
                  for c in sorted(options, key=lambda c: order[c.label]) if c.label in chosen]
    for path in cifs or []:
        s = read_structure(path)
        hypotheses.append(crystal_hypothesis(s, f"{path.stem} (CIF)", formula_of(s), str(path), model, instrument))
    if not hypotheses:
        raise ScatterfitError(f"no library structure type fits the composition '{composition}' (give CIFs with "
                              "--cif)")
    ledger = _Ledger(checkpoint, fingerprint(datasets, composition, cifs, qmax, density, in_solution, qmin,
                                             temperature), resume)
    notes = [f"{name} = {value:g} Å⁻¹ (given: the instrument's calibration) held fixed in every hypothesis"
             for name, value in calibration.items()]
    if density is not None and not bragg:
        slope = "" if found.density is None else f"; the low-r slope of G(r) gives {found.density:.4f}"
        notes.append(f"density given: {density:.4f} atoms/Å³, a glass's or liquid's box is built at it and keeps "
                     f"it{slope}")
    if not bragg and sample_bounds(found):
        notes.append(f"Biso up to {wide['biso'][1]:g} Å² (not {BOUNDS['biso'][1]:g}): particles of about "
                     f"{found.particle_diameter:.0f} Å, mostly surface, whose static displacements look like large "
                     "ADPs")
    if thermal_bounds(temperature):
        notes.append(f"Biso up to {wide['biso'][1]:g} Å² (not {BOUNDS['biso'][1]:g}): measured at {temperature:g} K "
                     f"(given), where displacements grow as T / {ROOM_TEMPERATURE:g} K")
    pool = make_executor(executor)
    try:
        simple = [h for h in hypotheses if structural_count(h) <= COMPLEX]
        complex_ = [h for h in hypotheses if h not in simple]
        refined = _refine_all(simple, datasets, qmax, deadline, pool, progress, ledger, t0, first_always=True)
        wanted = _occam(refined, complex_, chosen)
        refined += _refine_all(wanted, datasets, qmax, deadline, pool, progress, ledger, t0, first_always=not simple)
        hypotheses = refined + [h for h in complex_ if h not in wanted]
        crystal_rows = rank(hypotheses, points)
        ranked_crystals = [row["hypothesis"] for row in crystal_rows]
        crystals = ranked_crystals[:PARTICLES_OF]
        derived = []
        if not bragg and "amorphous" in found.classes[:2]:  # a glass or liquid: a box at the data's density
            boxes, note = box_hypotheses(composition, first, found, ranked_crystals, density)
            notes += note
            derived += _refine_all(boxes, datasets, qmax, deadline, pool, progress, ledger, t0)
        if not bragg and found.classes[0] != "crystal":  # a finite formula may be a molecule or cluster
            clusters = _clusters(composition, datasets, qmax, found, pool, checkpoint, resume, notes, deadline,
                                 progress, t0)
            derived += _refine_all(clusters, datasets, qmax, deadline, pool, progress, ledger, t0)
        listed = compound_labels is not None
        partners = (_partners(ranked_crystals, hypotheses, polymorphs=bragg, each_formula=listed)
                    if "mixture" in found.classes else [])
        if bragg and "mixture" in found.classes:  # what the best crystal leaves: its second phase (search–match)
            partners += _residual_partners(ranked_crystals[:1], options, datasets, {h.label for h in partners})
        pending = [mixture_hypothesis(crystals[0], partner) for partner in partners]
        if "mixture" in found.classes:  # a tie the data cannot break gets its own mixtures (see _tied_leader)
            tied = _tied_leader(crystal_rows)
            if tied is not None:
                order = [tied] + [h for h in ranked_crystals if h is not tied]
                seen = {frozenset((m.parents[0].label, m.parents[1].label)) for m in pending}
                pending += [mixture_hypothesis(tied, p)
                            for p in _partners(order, hypotheses, polymorphs=bragg, each_formula=listed)
                            if frozenset((tied.label, p.label)) not in seen]
        if not bragg and "mixture" in found.classes:
            seen = {frozenset((m.parents[0].label, m.parents[1].label)) for m in pending}
            pending += [m for m in _compound_mixtures(compound_labels, options, screened, datasets, qmax, hypotheses)
                        if frozenset((m.parents[0].label, m.parents[1].label)) not in seen]
        if not bragg:
            diameter = min(found.particle_diameter, found.r_range[1])
            pending += [nanoparticle_hypothesis(c, diameter) for c in crystals]
        derived += [check_holdout(check_gain(h, finite=in_solution), datasets, qmax)
                    for h in _refine_all(pending, datasets, qmax, deadline, pool, progress, ledger, t0)]
        if not bragg and found.classes[0] == "nanoparticle":  # the best two crystals as core and shell
            shelled = _core_shells(ranked_crystals, derived, diameter)
            derived += [check_holdout(check_gain(h, finite=in_solution), datasets, qmax)
                        for h in _refine_all(shelled, datasets, qmax, deadline, pool, progress, ledger, t0)]
        again = [c for c in map(check_bulk, derived) if c is not None]  # a crystal's better minimum, found by its
        if again:  # particle
            again = _refine_all(again, datasets, qmax, deadline, pool, progress, ledger, t0)
            hypotheses += again
        if not bragg and "mixture" in found.classes and (listed or not any(h.kind == "mixture" and h.error is None
                                                                           for h in derived)):
            # search the library for what the best crystal leaves (PDFs): always among the types of a list of
            # compounds; otherwise only when no known partner explains it (on Si + Ni, searching every compound of
            # the elements let a Ni8Si type's extra parameters beat the fcc Ni of the reference partners)
            taken = {p.label for m in pending if m.kind == "mixture" for p in m.parents}
            searched = [mixture_hypothesis(crystals[0], partner)
                        for partner in _beside_partners(ranked_crystals[:1], options, datasets, taken, qmax)]
            derived += [check_gain(h) for h in _refine_all(searched, datasets, qmax, deadline, pool, progress, ledger,
                                                            t0)]
        if "mixture" in found.classes:  # a third phase beside the best two-phase mixture, found as its second was
            thirds = _third_phases(hypotheses + derived, points, options, datasets, qmax, bragg)
            derived += [check_gain(h) for h in _refine_all(thirds, datasets, qmax, deadline, pool, progress, ledger,
                                                            t0)]
        if not bragg and not in_solution and found.classes[0] == "crystal":  # the best crystal's subgroups
            lowered = _subgroups(hypotheses, points, notes)
            derived += [check_gain(h) for h in _refine_all(lowered, datasets, qmax, deadline, pool, progress, ledger,
                                                            t0)]
        if not bragg and found.classes[0] in ("nanoparticle", "cluster"):  # discrete particles of the triaged size
            # (not when a glass comes first: a Lennard-Jones glass's icosahedral short-range order made a 147-atom
            # icosahedron at Rw 0.29 outrank the glass's box at 0.086, whose coordinates count as parameters)
            envelope = {h.parents[0].label: h for h in derived if h.kind == "nanoparticle" and h.result is not None}
            # an fcc metal's closed-shell particles whatever its crystal's rank: a twinned particle's G(r) fits the
            # fcc crystal worse than other types' (a 309-atom Au icosahedron: fcc fifth)
            makers = crystals + [c for c in ranked_crystals if c not in crystals and c.label.startswith("fcc ")]
            discrete = [p for c in makers for p in discrete_particle_hypotheses(c, envelope.get(c.label), diameter)]
            derived += [check_holdout(check_gain(h, finite=in_solution), datasets, qmax)
                        for h in _refine_all(discrete, datasets, qmax, deadline, pool, progress, ledger, t0)]
        workers = getattr(pool, "workers", 1)
    finally:
        if pool is not executor:
            pool.close()
    everything = hypotheses + derived
    supersede_damped_crystals(everything)
    for h in hypotheses:  # marked once everything is refined: the checkpoint keeps each hypothesis as it is
        if h.label.endswith(" (refined again)"):  # when saved, and a crystal saved as superseded would, on resume,
            _supersede_by(h, hypotheses)  # make no particle and so no crystal refined again
    if in_solution:
        for h in hypotheses:
            if h.error is None:
                h.error = ("not a candidate: the sample is in solution (given), and a bulk crystal is no finite "
                           "object (refined as its particles' parent only)")
    ranked = rank(everything, points)
    notes += [f"{name}: G(r) derived from its {data.metadata['derived_from'].upper()} (sine transform to Qmax = "
             f"{data.metadata['qmax']:.2f} Å⁻¹, no window)" for name, data in datasets.items()
             if data.metadata.get("derived_from")]
    notes += [warning for data in datasets.values() for warning in data.metadata.get("warnings", [])]  # how read
    _check(ranked, potential, notes, options)
    ranked = prefer_stable(rank(everything, points))  # with the energies' priors
    seconds = {}
    for h in everything:
        seconds[h.kind] = seconds.get(h.kind, 0.0) + h.seconds + h.search_seconds
    against = ("the Bragg peaks (reflections moved by the cell's free scale factors, a smooth background projected "
               "out)" if bragg else f"r ≤ {SCREEN_RANGE[1]:g} Å (cell expanded uniformly, two Uiso)")
    notes.insert(0, f"screened {len(screened)} library structure types against {against}; refined the best "
                    f"{sum(row.kept for row in screened)} and the elements' reference structures")
    return Solution(composition, datasets, found, ranked, [h for h in everything if h.error], verdict(ranked),
                    points, seconds, time.perf_counter() - t0, notes, workers, screened)


def _core_shells(ranked_crystals: list, derived: list, diameter: float) -> list:
    """Core–shell particles (hypotheses.core_shell_hypotheses) of outer ``diameter`` Å from the best refined crystal
    and the best refined crystal of another formula, each once the core."""
    refined = [h for h in ranked_crystals if h.result is not None and h.error is None]
    if not refined:
        return []
    partner = next((h for h in refined[1:] if h.formula != refined[0].formula), None)
    if partner is None:
        return []
    particles = [h for h in derived if h.kind == "nanoparticle" and "spdiameter" in h.free]
    return core_shell_hypotheses(refined[0], partner, diameter, particles)


def _checked_instrument(instrument: dict, family: str) -> dict:
    """``instrument`` ({"qdamp", "qbroad": Å⁻¹}) checked (hypotheses.checked_calibration), and for PDF data."""
    calibration = checked_calibration(instrument)
    if calibration and family != "total":
        raise ScatterfitError(f"{', '.join(calibration)} (the instrument's PDF resolution) apply to G(r), S(Q) or "
                              f"F(Q) data; these are {family} data")
    return calibration


def _solve_intensity(datasets: dict, composition: str, *, budget, progress, executor, potential, checkpoint,
                     resume: bool, t0: float) -> Solution:
    """solve() for intensities I(Q) (kind "iq") of finite objects in arbitrary units (a molecule or cluster in
    solution, a Debye-equation pattern): crystals and glasses are not described by an I(Q) without its
    normalisation, so the hypotheses are the clusters of the composition's formula (solve/clusters.py), each
    with a Chebyshev background (clusters.INTENSITY_BACKGROUND) and the Q resolution (qdamp) refined; the
    independent points are the Shannon channels (Qmax − Qmin) D / π of a cluster of that many atoms
    (clusters.cluster_diameter).

    Raises:
        ScatterfitError: the composition names no finite formula (an I(Q) alone cannot say how many atoms).
    """
    from scatterfit.optim.executor import make_executor
    from scatterfit.solve.clusters import MAX_CLUSTER_ATOMS, MIN_CLUSTER_ATOMS, cluster_counts, cluster_diameter
    from scatterfit.solve.triage import intensity_triage

    counts = cluster_counts(composition)
    if counts is None or sum(counts.values()) < MIN_CLUSTER_ATOMS:
        raise ScatterfitError(f"an intensity I(Q) is solved as a molecule or cluster: give its formula with "
                              f"{MIN_CLUSTER_ATOMS} to {MAX_CLUSTER_ATOMS} atoms (e.g. C60), not '{composition}'")
    deadline = None if budget is None else time.time() + budget
    found = intensity_triage(next(iter(datasets.values())), counts)
    diameter = cluster_diameter(sum(counts.values()))
    points = {name: max((float(d.x[-1]) - float(d.x[0])) * diameter / math.pi, 1.0) for name, d in datasets.items()}
    ledger = _Ledger(checkpoint, fingerprint(datasets, composition, None, None), resume)
    notes = [f"an intensity I(Q): only molecules and clusters of {composition} were tried (crystals and glasses "
             "need a PDF, S(Q) or a Bragg pattern)"]
    pool = make_executor(executor)
    try:
        pending = _clusters(composition, datasets, None, found, pool, checkpoint, resume, notes, deadline, progress,
                            t0)
        hypotheses = _refine_all(pending, datasets, None, deadline, pool, progress, ledger, t0, first_always=True)
        workers = getattr(pool, "workers", 1)
    finally:
        if pool is not executor:
            pool.close()
    ranked = rank(hypotheses, points)
    _check(ranked, potential, notes)
    ranked = prefer_stable(ranked)  # clusters: no library energies, no priors
    seconds = {"cluster": sum(h.seconds + h.search_seconds for h in hypotheses)}
    return Solution(composition, datasets, found, ranked, [h for h in hypotheses if h.error], verdict(ranked),
                    points, seconds, time.perf_counter() - t0, notes, workers, [])


def _solve_small_angle(datasets: dict, composition: str, *, budget, progress, executor, checkpoint, resume: bool,
                       t0: float) -> Solution:
    """solve() for small-angle curves (solve/small_angle.py): the triage reads the Guinier Rg and the Porod
    exponent of the first curve; the hypotheses are homogeneous particles of each shape (sphere, prolate and
    oblate spheroids, rods, discs) with log-normal sizes, ranked with the Shannon channels (Qmax − Qmin) Dmax / π
    of the data as their independent points (Dmax: the largest refined particle's, at its 95th size
    percentile, at least the triage's); curves without uncertainties are weighted relatively (σ = |I|). The
    refined particles are cut from the composition's crystal for the 3D view; no energies (the atoms are not
    determined)."""
    from scatterfit.optim.executor import make_executor
    from scatterfit.scattering.shapes import polydisperse_extent
    from scatterfit.solve.small_angle import particle_atoms, relative_weights, shape_hypotheses, small_angle_triage

    deadline = None if budget is None else time.time() + budget
    datasets = {name: relative_weights(d) for name, d in datasets.items()}
    first = next(iter(datasets.values()))
    found = small_angle_triage(first)
    ledger = _Ledger(checkpoint, fingerprint(datasets, composition, None, None), resume)
    notes = [f"small-angle data: homogeneous particles of {composition} tried (shape, size, size distribution); "
             "the atoms inside are the composition's crystal, not determined by these data; energies not computed"]
    notes += [f"{name}: no uncertainties in the file: weighted relatively (σ = |I|, every decade alike)"
              for name, d in datasets.items() if d.metadata.get("weights") == "relative"]
    pool = make_executor(executor)
    try:
        pending = shape_hypotheses(composition, found, datasets)
        hypotheses = _refine_all(pending, datasets, None, deadline, pool, progress, ledger, t0, first_always=True)
        workers = getattr(pool, "workers", 1)
    finally:
        if pool is not executor:
            pool.close()
    extent = found.extent
    for h in hypotheses:
        if h.result is None:
            continue
        p = h.result.parameters()
        shape = h.options["shape"]
        extent = max(extent, polydisperse_extent(shape, float(p["radius"]), float(p.get("aspect") or 1.0),
                                                 float(p["polydispersity"])))
        (crystal,) = h.structures.values()
        atoms = particle_atoms(crystal, shape, float(p["radius"]), float(p.get("aspect") or 1.0))
        if atoms is not None:
            h.result.state.structure = atoms
        else:
            notes.append(f"{h.label}: the particle (more than {MAX_CUT_ATOMS} atoms) is not cut: its structure file "
                         "is the crystal")
    points = {name: max((float(d.x[-1]) - float(d.x[0])) * extent / math.pi, 1.0) for name, d in datasets.items()}
    ranked = prefer_stable(rank(hypotheses, points))
    seconds = {"nanoparticle": sum(h.seconds for h in hypotheses)}
    return Solution(composition, datasets, found, ranked, [h for h in hypotheses if h.error], verdict(ranked),
                    points, seconds, time.perf_counter() - t0, notes, workers, [])

"""Hypotheses across structure classes and their refinement by the existing machinery (Parametrisation, the
r-range ramp with Levenberg–Marquardt).

A hypothesis is a starting structure (several, for a mixture), the parameter groups its class refines and their
starting values:
- crystal: a library candidate or a user's CIF; lattice, ADPs per site, the free Wyckoff coordinates, qdamp and
  delta2;
- nanoparticle: the same crystal inside a spherical envelope of refined diameter (PDFgui's spdiameter),
  starting at the triaged extent;
- mixture: two crystal hypotheses as phases with a refined atom fraction;
- discrete nanoparticle: a closed-shell cluster (icosahedron, decahedron, cuboctahedron) of a one-element fcc
  crystal's element, refined by isotropic expansion, ADPs, delta2 and qdamp.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import torch

from scatterfit.structure import Structure

XMAX = 30.0  # Å: the fit range of a hypothesis' refinement (or the data's end, if shorter)
STEPS = (8, 8, 20)  # the r-range ramp's step limits: a right model converges well within them (LM)
BOUNDS = {"biso": (0.01, 2.5), "lattice": (0.85, 1.15), "delta2": (0.0, 6.0), "qdamp": (0.0, 0.1)}
"""Physical bounds for hypotheses: Uiso up to 0.032 Å², delta2 up to 6 Å² (a wrong model otherwise blurs itself
out, and wide peaks cost time), qdamp up to 0.1 Å⁻¹, the cell within 15 % of the estimate from the bond
length."""
WARM_STEPS = 25  # one full-range LM stage for hypotheses that start from refined crystals
SHORT_RANGE_RW = 0.6  # a crystal hypothesis whose Rw stays above this on r ≤ 5 Å is rejected there
TIME_LIMIT = 90.0  # s: a hypothesis still refining after this is stopped and left out


class _Stop(Exception):
    """Raised by the refinement's observer to end a hypothesis early (the message says why)."""


def _screen(limit: float, t0: float):
    """An observer that stops a ramp whose first (short-range) stage ended above SHORT_RANGE_RW, or a refinement
    past ``limit`` seconds."""
    last = {}

    def observe(stage: int, step: int, value: float, terms: dict) -> None:
        if stage == 0:
            last["value"] = value
        elif "value" in last and last.pop("value") > SHORT_RANGE_RW:
            raise _Stop(f"rejected at short range: Rw above {SHORT_RANGE_RW} on r ≤ 5 Å after its refinement")
        if time.perf_counter() - t0 > limit:
            raise _Stop(f"stopped: not converged within {limit:.0f} s")

    return observe


@dataclass(eq=False)
class Hypothesis:
    """One explanation of the data, before and after its refinement.

    Attributes:
        kind: "crystal", "mixture", "nanoparticle", "cluster" or "amorphous".
        label: e.g. "rock salt NaCl", "fcc Ni + bcc Fe".
        formula: the chemical formula (a mixture's phases' formulas joined by " + ").
        structures: {phase name: starting Structure}.
        free: parameter groups refined.
        values: starting parameter values.
        source: where the starting structure comes from.
        result: the refinement's Result (after :func:`refine_hypothesis`), or None.
        rw: {dataset name: Rw} after refinement.
        n_parameters: refined parameters, the data terms' scales included.
        seconds: wall time of the refinement.
        error: why the refinement failed, or None.
        warm: the structures and values are refined ones (a particle or mixture made from refined crystals):
            one full-range stage instead of the r-range ramp.
        parents: the crystal hypotheses a particle or mixture was made from.
        energy_per_atom: the default potential's energy of the refined structure, eV/atom (solve/checks.py).
        energy_above_best: eV/atom above the lowest refined hypothesis of the same formula.
        checks: the refined structure's chemistry (solve/checks.chemistry_checks).
    """

    kind: str
    label: str
    formula: str
    structures: dict
    free: list
    values: dict = field(default_factory=dict)
    source: str = ""
    result: object = None
    rw: dict = field(default_factory=dict)
    n_parameters: int = 0
    seconds: float = 0.0
    error: str | None = None
    warm: bool = False
    parents: list = field(default_factory=list)
    energy_per_atom: float | None = None
    energy_above_best: float | None = None
    checks: dict = field(default_factory=dict)


def phase_name(label: str) -> str:
    """A phase name from a label: letters, digits and underscores ("rock salt NaCl" → "rock_salt_NaCl")."""
    return re.sub(r"[^A-Za-z0-9_]", "_", label).strip("_") or "phase"


def crystal_free(structure: Structure) -> list:
    """The groups a crystal hypothesis refines: lattice, ADPs, the Wyckoff coordinates when the space group leaves
    any free, qdamp and delta2."""
    from scatterfit.structure.spacegroup import wyckoff_basis

    basis = wyckoff_basis(structure)
    free = ["lattice", "biso"]
    if basis is not None and basis.shape[1] > 0:
        free.append("fractional")
    return free + ["qdamp", "delta2"]


def crystal_hypothesis(structure: Structure, label: str, formula: str, source: str) -> Hypothesis:
    return Hypothesis("crystal", label, formula, {phase_name(label): structure}, crystal_free(structure),
                      {"qdamp": 0.04, "delta2": 2.0}, source)


def _refined(h: Hypothesis) -> tuple[dict, dict]:
    """({phase: refined Structure}, {qdamp, delta2: refined values}) of a refined crystal hypothesis, or its
    starting structure and values when it has no result (rejected at short range)."""
    (phase,) = h.structures
    if h.result is None:
        return dict(h.structures), dict(h.values)
    params = h.result.parameters()
    values = {k: float(params[k]) for k in ("qdamp", "delta2") if params.get(k) is not None}
    return {phase: h.result.structure.with_(operations=h.structures[phase].operations)}, values


def nanoparticle_hypothesis(crystal: Hypothesis, diameter: float) -> Hypothesis:
    """The refined crystal inside a spherical envelope of starting ``diameter`` Å."""
    structures, values = _refined(crystal)
    return Hypothesis("nanoparticle", f"{crystal.label} particle", crystal.formula, structures,
                      crystal.free + ["spdiameter"], {**values, "spdiameter": float(diameter)},
                      crystal.source + "; spherical envelope (PDFgui's spdiameter)", warm=True, parents=[crystal])


MAX_SHELLS = 12  # the largest discrete particle tried: 6,525 atoms, about 7 nm of a metal
DISCRETE_SHAPES = ("icosahedron", "decahedron", "cuboctahedron")
"""The closed-shell clusters of an fcc metal tried as discrete particles: the multiply twinned ones (which no
envelope of a crystal describes) and the cuboctahedron cut from the crystal itself."""


def discrete_particle_hypotheses(crystal: Hypothesis, envelope: Hypothesis | None,
                                 diameter: float) -> list[Hypothesis]:
    """Closed-shell particles (DISCRETE_SHAPES) of the refined crystal's element at its refined nearest-neighbour
    distance, of the sizes (shells) that make particles of about the triaged ``diameter`` Å (that size and one
    shell less: the triage's estimate runs large) and of the envelope particle's refined diameter; refined by
    isotropic expansion, ADPs, delta2, qdamp and the diameter of the baseline −4πρ0 r γ0(r) (spdiameter),
    started from the envelope particle's values when it has them (a crystal's qdamp has absorbed the finite
    size). Only for a one-element fcc crystal (label "fcc X"); otherwise none."""
    import math

    from scatterfit.structure.builders import nanoparticle

    if crystal.result is None or not crystal.label.startswith("fcc ") or len(crystal.label.split()) != 2:
        return []
    element = crystal.label.split()[1]
    params = crystal.result.parameters()
    nn = float(params["a"]) / math.sqrt(2)
    shells = {round(diameter / (2 * nn)) - 1, round(diameter / (2 * nn))}
    if envelope is not None and envelope.result is not None:
        params = envelope.result.parameters()
        shells.add(round(float(params["spdiameter"]) / (2 * nn)))
    values = {k: float(params[k]) for k in ("qdamp", "delta2") if params.get(k) is not None}
    biso = float(params.get(f"Biso_{element}", 0.5))
    out = []
    for n in sorted(k for k in shells if 2 <= k <= MAX_SHELLS):
        for shape in DISCRETE_SHAPES:
            s = nanoparticle(element, shape, n, nn_distance=nn)
            s = s.with_(biso=torch.full((len(s),), biso, dtype=s.dtype))
            label = f"{crystal.label} {shape} ({len(s)} atoms)"
            size = 2 * float(s.positions.norm(dim=1).max()) + nn  # the baseline's particle diameter
            out.append(Hypothesis("nanoparticle", label, crystal.formula, {phase_name(label): s},
                                  ["expansion", "biso", "qdamp", "delta2", "spdiameter"],
                                  {**values, "spdiameter": size},
                                  f"closed-shell {shape} of {n} shells (ASE's cluster builders) at the refined "
                                  f"nearest-neighbour distance of {crystal.label}", parents=[crystal]))
    return out


def mixture_hypothesis(first: Hypothesis, second: Hypothesis) -> Hypothesis:
    """Two crystal hypotheses as the phases of one sample, half each to start: from their refined values (one
    full-range stage), or with the r-range ramp when one was not refined on its own (a minority phase, rejected
    alone at short range)."""
    (s1, v1), (s2, v2) = _refined(first), _refined(second)
    values = {"qdamp": v1.get("qdamp", 0.04)}
    for structures, v in ((s1, v1), (s2, v2)):
        values.update({f"{next(iter(structures))}.delta2": v.get("delta2", 2.0)})
    free = sorted(set(first.free) | set(second.free), key=(first.free + second.free).index) + ["fraction"]
    return Hypothesis("mixture", f"{first.label} + {second.label}", f"{first.formula} + {second.formula}",
                      {**s1, **s2}, free, values, f"{first.source} | {second.source}",
                      warm=first.result is not None and second.result is not None, parents=[first, second])


MIN_GAIN = {"mixture": 0.25, "nanoparticle": 0.05}
"""How much lower (relative) a mixture's or a particle's mean Rw must be than its best parent crystal's to count:
on measured data the misfit is mostly systematic, and any added phase or envelope absorbs some of it (fcc Ni +
a spurious hcp Ni lowers Ni.gr's Rw by 12 %, which an information criterion with the Nyquist count rewards)."""


def check_gain(hypothesis: Hypothesis) -> Hypothesis:
    """Mark a refined particle or mixture that does not improve on its parents by MIN_GAIN as unsupported."""
    need = MIN_GAIN.get(hypothesis.kind)
    if need is None or hypothesis.error or not hypothesis.parents:
        return hypothesis
    mean = sum(hypothesis.rw.values()) / len(hypothesis.rw)
    parents = [sum(p.rw.values()) / len(p.rw) for p in hypothesis.parents if p.rw]
    gain = 1 - mean / min(parents)
    if gain < need:
        compared = (f"is only {100 * gain:.0f} % below" if gain >= 0 else "is above")
        hypothesis.error = (f"not supported: Rw {mean:.4f} {compared} its best crystal's {min(parents):.4f} (a "
                            f"{hypothesis.kind} needs {100 * need:.0f} % less)")
    return hypothesis


def refine_hypothesis(hypothesis: Hypothesis, datasets: dict, *, qmax: float | None = None,
                      time_limit: float = TIME_LIMIT) -> Hypothesis:
    """Refine ``hypothesis`` against ``datasets`` ({name: G(r) Dataset}) with the default r-range ramp (LM);
    fills its result, rw, n_parameters and seconds, or its error when the refinement fails, when the
    short-range screen rejects it (a ramp whose first stage ends above SHORT_RANGE_RW) or when it runs past
    ``time_limit`` seconds."""
    from scatterfit.errors import ScatterfitError
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.optim import pdf_range_ramp, refine
    from scatterfit.optim.stages import default_optimizer
    from scatterfit.scattering.mixture import PhaseMixture
    from scatterfit.scattering.models import PDFModel
    from scatterfit.structure.parametrisation import Parametrisation
    from scatterfit.structure.phases import MixtureParametrisation

    t0 = time.perf_counter()
    try:
        terms = []
        for name, data in datasets.items():
            q = qmax or float(data.metadata.get("qmax", 0)) or None
            if q is None:
                raise ScatterfitError(f"{data.path or name}: no Qmax in the header; give --qmax")
            model = PDFModel(qmax=q, radiation=data.radiation)
            if len(hypothesis.structures) > 1:
                model = PhaseMixture({p: PDFModel(qmax=q, radiation=data.radiation) for p in hypothesis.structures},
                                     data.radiation)
            terms.append(DataTerm(model, data, xmin=max(1.5, float(data.x[0])), xmax=min(XMAX, float(data.x[-1])),
                                  name=name))
        loss = Loss(terms)
        if len(hypothesis.structures) > 1:
            param = MixtureParametrisation(hypothesis.structures, free=hypothesis.free, values=hypothesis.values,
                                           bounds=BOUNDS)
        else:
            (structure,) = hypothesis.structures.values()
            param = Parametrisation(structure, free=hypothesis.free, values=hypothesis.values, bounds=BOUNDS)
        optimizer = default_optimizer(loss, param)
        if hypothesis.warm:
            from scatterfit.optim import Stage

            stages = [Stage(optimizer, steps=WARM_STEPS)]
        else:
            stages = pdf_range_ramp(param.free, optimizer, STEPS)
        result = refine(loss, param, stages, observers=[_screen(time_limit, t0)])
    except (ScatterfitError, RuntimeError, ValueError, _Stop) as exc:
        hypothesis.error = str(exc).splitlines()[0]
        hypothesis.seconds = time.perf_counter() - t0
        return hypothesis
    hypothesis.result = result
    hypothesis.rw = {name: result.terms[name].breakdown["rw"] for name in datasets}
    hypothesis.n_parameters = int(result.theta.numel()) + len(terms)
    hypothesis.seconds = time.perf_counter() - t0
    return hypothesis

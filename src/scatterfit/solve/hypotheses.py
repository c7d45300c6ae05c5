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
  crystal's element, refined by isotropic expansion, ADPs, delta2 and qdamp;
- core–shell particle: two refined crystals, one inside a spherical envelope, the other in a spherical shell
  around it;
- amorphous: a random periodic box of the composition at the triaged number density, every position refined
  against the data (as reverse Monte Carlo does, by gradients here) under a hard-core restraint; its G(r) is
  the box's up to half its length, taken through the data's Q range (scattering/models.BoxScatteringModel), so
  beyond half the box the model is the homogeneous medium (G = 0).
"""

from __future__ import annotations

import math
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
SHAPE_STEPS = 50  # the LM steps of each stage of a small-angle shape hypothesis (the whole curve)
SHAPE_STAGES = 3
SHORT_RANGE_RW = 0.6  # a crystal hypothesis whose Rw stays above this on r ≤ 5 Å is rejected there
TIME_LIMIT = 90.0  # CPU s of the refining process: a hypothesis still refining after this is stopped and left out
SMALL_PARTICLE = 30.0  # Å: a triaged particle diameter below which the ADPs may be those of a disordered particle
DISORDERED_BISO = 10.0  # Å²: their upper bound there (Uiso 0.127 Å²: examples/cdse_envelope.toml refines 8–9 Å² for
#                         2 nm CdSe, as PDFfit2 does: the static displacements of a particle that is mostly surface)
DISORDERED_DELTA2 = 5.0  # Å²: delta2's start there (examples/cdse_envelope.toml refines 6, the bound, for 2 nm CdSe)


class _Stop(Exception):
    """Raised by the refinement's observer to end a hypothesis early (the message says why)."""


def _screen(limit: float, cpu0: float):
    """An observer that stops a ramp whose first (short-range) stage ended above SHORT_RANGE_RW, or a refinement
    past ``limit`` (:func:`_time_limit`)."""
    last = {}
    over_time = _time_limit(limit, cpu0)

    def observe(stage: int, step: int, value: float, terms: dict) -> None:
        if stage == 0:
            last["value"] = value
        elif "value" in last and last.pop("value") > SHORT_RANGE_RW:
            raise _Stop(f"rejected at short range: Rw above {SHORT_RANGE_RW} on r ≤ 5 Å after its refinement")
        over_time(stage, step, value, terms)

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
        energy_above_library: eV/atom of the phases above the most stable library type of their formulas
            (solve/checks.py: crystals, mixtures and particles), and library_reference those types' labels.
        checks: the refined structure's chemistry (solve/checks.chemistry_checks).
        model: the forward model ("pdf", or "box": a periodic box's G(r) to half its length).
        restraints: {restraint name: its args, or a list of args (one term each)} refined with the data, each at
            RESTRAINT_WEIGHTS[name] (config form: constraints.RESTRAINTS names, a [[terms]] table's args).
        bounds: parameter bounds over BOUNDS (config form).
        steps: one L-BFGS stage of this many steps instead of the ramp (many parameters).
        time_limit: CPU s, instead of TIME_LIMIT when set.
        search_seconds: s spent finding the starting structure (a cluster's symmetric search), counted once
            among the hypotheses made from it.
        options: the forward model's options (a [[terms]] table's keys: the shape model's "shape").
        fit_scale: the data terms' scale solved analytically (False: held at 1, data on an absolute scale).
        anneal: MD steps of a melt-and-quench on the restraints alone before the fit (:func:`network_stages`).
        energy: {"potential": name, "args": {...}} of an energy term refined with the data at BOX_ENERGY_WEIGHT
            (a box's classical potential, energy/registry.CLASSICAL), or empty.
        shells: {shell phase: core phase} of a core–shell particle (structure/phases.py), or empty.
        stages: the optim Stages it was refined with (a G(r)'s: the ramp or the warm stage), which its replay
            config writes.
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
    energy_above_library: float | None = None
    library_reference: str | None = None
    checks: dict = field(default_factory=dict)
    model: str = "pdf"
    restraints: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)
    steps: int | None = None
    time_limit: float = 0.0
    search_seconds: float = 0.0
    options: dict = field(default_factory=dict)
    fit_scale: bool = True
    anneal: int = 0
    energy: dict = field(default_factory=dict)
    shells: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)

    def __setstate__(self, state: dict) -> None:
        """Unpickled from a checkpoint an earlier version wrote: the fields added since take their defaults."""
        from dataclasses import MISSING, fields

        for f in fields(self):
            if f.name not in state:
                state[f.name] = f.default_factory() if f.default_factory is not MISSING else f.default
        self.__dict__.update(state)


def phase_name(label: str) -> str:
    """A phase name from a label: letters, digits and underscores ("rock salt NaCl" → "rock_salt_NaCl")."""
    return re.sub(r"[^A-Za-z0-9_]", "_", label).strip("_") or "phase"


POWDER_FREE = {"degrees": ("zero", "U", "V", "W", "Y"), "inv_angstrom": ("fwhm_q", "eta")}
"""What a crystal hypothesis refines of a Bragg pattern besides its structure and a Chebyshev background, by the
pattern's x unit: of a 2θ pattern the zero shift and the TCH widths (Caglioti U, V, W and the Lorentzian size
term Y); of a Q pattern the width and the Lorentzian fraction."""


def powder_free(datasets: dict) -> tuple:
    """The instrument parameters a crystal hypothesis refines against ``datasets`` (Bragg patterns), then
    "background"."""
    from scatterfit.errors import ScatterfitError

    out = []
    for name, data in datasets.items():
        if data.x_unit not in POWDER_FREE:
            raise ScatterfitError(f"{data.path or name}: solve reads 2θ and Q powder patterns; a time-of-flight "
                                  "pattern needs a refine config in this version")
        out += [k for k in POWDER_FREE[data.x_unit] if k not in out]
    return (*out, "background")
POWDER_BACKGROUND = 5  # Chebyshev order


def crystal_free(structure: Structure, model: str = "pdf", instrument: tuple = ()) -> list:
    """The groups a crystal hypothesis refines: lattice, ADPs, the Wyckoff coordinates when the space group leaves
    any free, and qdamp and delta2 for a PDF (``model`` "pdf") or the ``instrument`` groups for a Bragg pattern
    ("powder"; :func:`powder_free`)."""
    from scatterfit.structure.spacegroup import wyckoff_basis

    basis = wyckoff_basis(structure)
    free = ["lattice", "biso"]
    if basis is not None and basis.shape[1] > 0:
        free.append("fractional")
    return free + (list(instrument) if model == "powder" else ["qdamp", "delta2"])


STRUCTURAL = ("lattice", "biso", "fractional", "occupancy")  # what :func:`structural_count` counts


def structural_count(h: Hypothesis) -> int:
    """The structural parameters a crystal hypothesis refines (the STRUCTURAL groups of its Parametrisation: cell,
    ADPs, coordinates; not the instrument's or the background's, which every hypothesis of the data shares)."""
    from scatterfit.structure.parametrisation import Parametrisation

    (structure,) = h.structures.values()
    free = [g for g in h.free if g in STRUCTURAL]
    return int(Parametrisation(structure, free=free, bounds=BOUNDS).initial_vector().numel())


def crystal_hypothesis(structure: Structure, label: str, formula: str, source: str, model: str = "pdf",
                       instrument: tuple = ()) -> Hypothesis:
    """A crystal hypothesis of ``structure`` refined against PDFs (``model`` "pdf") or Bragg patterns ("powder",
    with the ``instrument`` groups of :func:`powder_free`)."""
    values = {"background_order": POWDER_BACKGROUND} if model == "powder" else {"qdamp": 0.04, "delta2": 2.0}
    return Hypothesis("crystal", label, formula, {phase_name(label): structure},
                      crystal_free(structure, model, instrument), values, source, model=model)


def instrument_groups(h: Hypothesis) -> list:
    """The free groups of a Bragg hypothesis that are the powder model's instrument parameters."""
    from scatterfit.structure.parametrisation import GROUPS

    return [g for g in h.free if g not in GROUPS and g != "fraction"]


def refined_start(h: Hypothesis) -> tuple[dict, dict]:
    """({phase: refined Structure}, {qdamp, delta2: refined values}) of a refined crystal hypothesis, or its
    starting structure and values when it has no result (rejected at short range)."""
    (phase,) = h.structures
    if h.result is None:
        return dict(h.structures), dict(h.values)
    params = h.result.parameters()
    carried = instrument_groups(h) if h.model == "powder" else ("qdamp", "delta2")
    values = {k: float(params[k]) for k in carried if params.get(k) is not None}
    if h.model == "powder":
        values["background_order"] = h.values.get("background_order", POWDER_BACKGROUND)
    return {phase: h.result.structure.with_(operations=h.structures[phase].operations)}, values


def nanoparticle_hypothesis(crystal: Hypothesis, diameter: float) -> Hypothesis:
    """The refined crystal inside a spherical envelope of starting ``diameter`` Å."""
    structures, values = refined_start(crystal)
    if "qdamp" in crystal.values:  # the crystal's refined qdamp has absorbed the finite size: the particle starts
        values["qdamp"] = crystal.values["qdamp"]  # from the instrument's typical resolution, as the crystal did
    return Hypothesis("nanoparticle", f"{crystal.label} particle", crystal.formula, structures,
                      crystal.free + ["spdiameter"], {**values, "spdiameter": float(diameter)},
                      crystal.source + "; spherical envelope (PDFgui's spdiameter)", warm=True, parents=[crystal])


def bulk_particle(particle: Hypothesis) -> bool:
    """Whether a refined envelope particle's diameter ended on its upper bound (structure/parametrisation's
    SCALAR_BOUNDS: 2000 Å): the data show no finite size, and the particle is its crystal in another minimum
    (measured CdSe-bulk: the wurtzite crystal stopped at Rw 0.384 with qdamp on its bound, its "particle", restarted
    from the instrument's qdamp, reached 0.156 with a 2000 Å envelope)."""
    from scatterfit.structure.parametrisation import SCALAR_BOUNDS

    if particle.kind != "nanoparticle" or particle.result is None or "spdiameter" not in particle.free:
        return False
    diameter = particle.result.parameters().get("spdiameter")
    return diameter is not None and float(diameter) >= 0.999 * SCALAR_BOUNDS["spdiameter"][1]


def check_bulk(particle: Hypothesis) -> Hypothesis | None:
    """Mark a :func:`bulk_particle` unsupported (it shows no finite size), and return its crystal to be refined
    again from the particle's refined structure and values (without the envelope) when the particle fitted better
    than the crystal by MIN_GAIN — the crystal's refinement stopped in a worse minimum; else None."""
    if not bulk_particle(particle):
        return None
    (crystal,) = particle.parents
    mean = sum(particle.rw.values()) / len(particle.rw)
    better = bool(crystal.rw) and mean < (1 - MIN_GAIN["nanoparticle"]) * sum(crystal.rw.values()) / len(crystal.rw)
    particle.error = ("not supported: its envelope grew to the bound (2000 Å), the data show no finite size"
                      + ("; the crystal was refined again from its values" if better else ""))
    if not better:
        return None
    structures, values = refined_start(particle)
    return Hypothesis("crystal", f"{crystal.label} (refined again)", crystal.formula, structures, list(crystal.free),
                      values, crystal.source + "; refined again from the minimum its particle found", warm=True,
                      model=crystal.model)


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
    size). Only for a one-element fcc crystal (label "fcc X"), and only particles of MIN_ENVELOPE_ATOMS or more
    (a 55-atom icosahedron ranked first on three of ten blind Lennard-Jones glasses: the icosahedral short-range
    order of a glass, which a box describes; finite objects that small are the cluster search's); otherwise none."""
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
            if len(s) < MIN_ENVELOPE_ATOMS:  # mostly surface: a glass's short-range order, or a cluster's
                continue
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
    (s1, v1), (s2, v2) = refined_start(first), refined_start(second)
    if first.model == "powder":  # the instrument is the first phase's; the second phase's cell is its own
        values = dict(v1)
    else:
        values = {"qdamp": v1.get("qdamp", 0.04)}
        for structures, v in ((s1, v1), (s2, v2)):
            values.update({f"{next(iter(structures))}.delta2": v.get("delta2", 2.0)})
    free = sorted(set(first.free) | set(second.free), key=(first.free + second.free).index) + ["fraction"]
    return Hypothesis("mixture", f"{first.label} + {second.label}", f"{first.formula} + {second.formula}",
                      {**s1, **s2}, free, values, f"{first.source} | {second.source}",
                      warm=first.result is not None and second.result is not None, parents=[first, second],
                      model=first.model)


def mixture_with(mixture: Hypothesis, third: Hypothesis) -> Hypothesis:
    """The refined ``mixture`` with one more phase, the crystal hypothesis ``third`` (refined, or unrefined at
    its screened cell): the mixture's refined phases and values (qdamp and each phase's delta2, or a Bragg
    pattern's instrument), the third's own, equal fractions to start; one full-range stage when the third was
    refined, else the r-range ramp (a PDF) or the powder stages. Its parent is the mixture (check_gain: it must
    improve on that)."""
    params = mixture.result.parameters()
    structures = {name: state.structure.with_(operations=mixture.structures[name].operations)
                  for name, state in mixture.result.state.phase_states().items()}
    added, own = refined_start(third)
    if mixture.model == "powder":
        values = {k: float(params[k]) for k in instrument_groups(mixture) if params.get(k) is not None}
        values["background_order"] = mixture.values.get("background_order", POWDER_BACKGROUND)
    else:
        values = {k: float(params[k]) for k in ("qdamp",) if params.get(k) is not None}
        values.update({f"{name}.delta2": float(params.get(f"{name}.delta2") or 2.0) for name in structures})
        values.update({f"{name}.delta2": own.get("delta2", 2.0) for name in added})
    free = [g for g in mixture.free if g != "fraction"]
    free += [g for g in third.free if g not in free] + ["fraction"]
    return Hypothesis("mixture", f"{mixture.label} + {third.label}", f"{mixture.formula} + {third.formula}",
                      {**structures, **added}, free, values, f"{mixture.source} | {third.source}",
                      warm=third.result is not None, parents=[mixture], model=mixture.model)


MIN_WALL = 3.0  # Å: the thinnest shell a core–shell particle starts with (about one layer of a compound)


def core_shell_hypotheses(first: Hypothesis, second: Hypothesis, diameter: float,
                          particles: list = ()) -> list[Hypothesis]:
    """Two refined crystal hypotheses (of a PDF) as a core–shell particle of outer ``diameter`` Å, each once the
    core: the core in a spherical envelope, the other in a spherical shell around it (structure/phases.py; as in
    diffpy.srfit's core–shell recipe, pairs across the interface are left out). They start where the crystals
    started (a crystal refined alone on a two-phase particle's G(r) is no start: on a simulated CdS core in a ZnS
    shell the ZnS cell went 5 % short and both qdamps to their bound, standing in for the envelopes, and from
    there the sizes ran to their bounds), with equal atom fractions and a core holding the core phase's share of
    the volume, refined by the r-range ramp. Their parents are the crystals and the single-phase envelope
    ``particles`` made from them: a core–shell particle must improve on each (check_gain). Two phases cost twice
    a crystal's time per evaluation: each has twice TIME_LIMIT."""
    if first.result is None or second.result is None or "pdf" != first.model or "pdf" != second.model:
        return []
    structures = {**first.structures, **second.structures}
    if len(structures) != 2:
        return []
    values = {"qdamp": first.values.get("qdamp", 0.04)}
    for h in (first, second):
        values[f"{next(iter(h.structures))}.delta2"] = h.values.get("delta2", 2.0)
    volume = {name: 1.0 / float(s.number_density()) for name, s in structures.items()}  # equal atom fractions
    labels = {next(iter(h.structures)): h.label for h in (first, second)}
    related = [p for p in particles if p.result is not None and not p.error and
               any(q is first or q is second for q in p.parents)]
    free = sorted(set(first.free) | set(second.free), key=(first.free + second.free).index)
    outer = 0.5 * float(diameter)
    out = []
    for core, shell in ((a, b) for a in structures for b in structures if a != b):
        core_radius = outer * (volume[core] / sum(volume.values())) ** (1 / 3)
        wall = max(outer - core_radius, MIN_WALL)
        out.append(Hypothesis(
            "nanoparticle", f"{labels[core]} core, {labels[shell]} shell", f"{first.formula} + {second.formula}",
            structures, free + [f"{core}.spdiameter", f"{shell}.shell_thickness", "fraction"],
            {**values, f"{core}.spdiameter": 2 * core_radius, f"{shell}.shell_thickness": wall},
            f"{first.source} | {second.source}; core–shell particle (a spherical core, a spherical shell around it)",
            parents=[first, second, *related], shells={shell: core}, time_limit=2 * TIME_LIMIT))
    return out


AMORPHOUS_HALF = (10.0, 16.0)  # Å: the half box length, the signal's extent within these bounds
AMORPHOUS_ATOMS = (150, 1500)  # the box's atoms: fewer do not sample the pairs, more cost too much on a CPU
AMORPHOUS_STEPS = 250  # L-BFGS steps on every coordinate
AMORPHOUS_TIME = 150.0  # CPU s
ENERGY_BOX_TIME = 600.0  # CPU s: a network box melted and quenched on its classical potential (3000 MD steps of BKS on
#                          643 atoms: about 200 s on this CPU, one thread)
BOX_ENERGY_WEIGHT = 0.005  # eV⁻¹: a box's classical energy per atom against the data's Rw² (examples/silica_glass.toml:
#                            0.1 eV/atom weighs as much as Rw 0.1 → 0.1025)
NETWORK_RELAX = (300, 5.0)  # L-BFGS steps and coordination weight of the relaxation after a quench on the energy
AMORPHOUS_ANNEAL = 3000  # MD steps of a network box's melt-and-quench (solve/ionic.network_restraints)
AMORPHOUS_NETWORK_STEPS = 500  # L-BFGS steps of a network box after its quench
ANNEAL_TEMPERATURES = (6000.0, 300.0)  # K, the melt and the quench (examples/silica_glass.toml's)
ANNEAL_TIMESTEP = 1.5  # fs
ANNEAL_COORDINATION = 1.0  # the coordination restraints' weight in the quench (RESTRAINT_WEIGHTS' with the data)
DENSITY_RANGE = (0.9, 1.1)  # the box's refined length scale: its density within −25 % … +37 % of the start
HARD_CORE = 0.85  # the hard core: this × the first peak's distance, for every pair
LIKE_CORE = 1.3  # × the first peak's distance: two cations or two anions (octahedral X–X is 1.41, tetrahedral 1.63)
IONIC = 1.0  # a difference of electronegativity (O'Keeffe & Brese's c) from which elements are cations and anions


def hard_cores(elements: list, first_peak: float) -> dict:
    """{"A-B": minimum distance, Å} of every pair of ``elements``: HARD_CORE × ``first_peak`` (the shortest
    distance the data show), and LIKE_CORE × it between two cations or two anions of an ionic composition (the
    electronegativities, O'Keeffe & Brese's c, spanning at least IONIC; anions are those above their middle),
    which the first peak, a cation–anion bond, does not bound."""
    from scatterfit.constraints.restraints import bond_valence_parameters

    table = bond_valence_parameters()
    c = {e: table[e]["c"] for e in elements if e in table}
    ionic = len(c) == len(elements) and len(c) > 1 and max(c.values()) - min(c.values()) >= IONIC
    middle = (max(c.values()) + min(c.values())) / 2 if ionic else 0.0
    out = {}
    for k, a in enumerate(elements):
        for b in elements[k:]:
            like = ionic and (c[a] > middle) == (c[b] > middle)
            out[f"{a}-{b}"] = round((LIKE_CORE if like else HARD_CORE) * first_peak, 3)
    return out
MAX_PACKING = 0.3  # of the hard spheres at the start, where random placement still succeeds quickly


def amorphous_hypothesis(composition: str, density: float, first_peak: float, extent: float, density_source: str,
                         refine_density: bool = True, seed: int = 0, network: dict | None = None,
                         energy: tuple | None = None) -> Hypothesis:
    """A random periodic box of ``composition`` (a formula, or elements in equal amounts) at ``density``
    atoms/Å³ whose half length reaches the signal's ``extent`` (Å; within AMORPHOUS_HALF, its atoms within
    AMORPHOUS_ATOMS), no two atoms closer than HARD_CORE × ``first_peak`` (Å; less where MAX_PACKING requires);
    refined: every position (anywhere in the box), the ADPs and, with ``refine_density``, its length (the
    density, within DENSITY_RANGE), under the hard cores of :func:`hard_cores` as a restraint. A density measured
    on an absolute scale is kept, as reverse Monte Carlo keeps the experimental one (refined together with the
    data's scale it drifts: liquid Ar's went from 0.0210 to 0.0187 atoms/Å³ at scale 1.18). ``network``
    (solve/ionic.network_restraints: the coordination the first peak's area shows on an absolute scale, the
    cations' corner-sharing cores) adds those restraints and a melt-and-quench on them before the fit
    (AMORPHOUS_ANNEAL MD steps, :func:`network_stages`), as the hand-written silica example does with BKS (a fit
    from random positions leaves most Si two- or three-coordinated); the data's scale is then held at 1, the
    scale the coordination was read on (solved analytically and held ≥ 0, a random box's G(r) that correlates
    negatively with silica's got scale 0 and no gradient: Rw 1; liquid Ar's box, without a network, keeps the
    analytic scale: held at 1 its first peak moved from 3.71 to 3.79 Å, the experiment's being 3.68 Å).
    ``energy`` ((name, arguments) of a classical potential for exactly these elements, energy/registry.
    classical_potential) is refined with the data at BOX_ENERGY_WEIGHT, and a network box is melted and quenched on
    it instead of on the restraints (:func:`network_stages`; silica's NIMROD G(r): Rw 0.138 → 0.108 with BKS).
    ``density_source`` says where the starting density comes from (for the report)."""
    from scatterfit.structure.builders import amorphous_box
    from scatterfit.structure.library import parse_composition

    counts = parse_composition(composition)
    low, high = AMORPHOUS_ATOMS
    half = min(max(extent, AMORPHOUS_HALF[0]), AMORPHOUS_HALF[1])
    n_atoms = int(min(max(round(density * (2 * half) ** 3), low), high))
    start = min(HARD_CORE * first_peak, (MAX_PACKING / (density * math.pi / 6)) ** (1 / 3))  # random placement's
    box = amorphous_box(counts, n_atoms, density, min_dist=start, seed=seed)
    box = box.with_(biso=torch.full((len(box),), 0.5, dtype=box.dtype))
    formula = "".join(f"{e}{'' if abs(n - 1) < 1e-9 else f'{n:g}'}" for e, n in counts.items())
    length = float(box.cell[0, 0])
    restraints = {"min_distance": {"distances": {**hard_cores(list(counts), first_peak),
                                                 **(network or {}).get("cation_cores", {})}}}
    source = f"random box of {n_atoms} atoms, {length:.1f} Å, at {density:.4f} atoms/Å³ ({density_source})"
    reach = length / 2
    if network and network.get("coordination"):
        restraints["coordination"] = network["coordination"]
        from scatterfit.structure.parametrisation import EDGE

        reach = length / 2 / (1 - 2 * EDGE) + 0.1  # an anneal folds positions anywhere in the cell
        source += (f"; melt-and-quench on {'the ' + energy[0] + ' energy, then a relaxation on ' if energy else ''}"
                   f"the coordination the first peak shows ({network.get('found', '?')} → "
                   + ", ".join(f"{c['pair']} {c['target']}" for c in network["coordination"]) + ")")
    if energy:
        source += f"; {energy[0]} energy refined with the data (weight {BOX_ENERGY_WEIGHT:g} per eV/atom)"
    annealed = "coordination" in restraints
    return Hypothesis("amorphous", f"amorphous {formula} box ({n_atoms} atoms)", formula,
                      {phase_name(f"amorphous {formula}"): box},
                      (["lattice"] if refine_density else []) + ["positions", "biso"], {}, source, model="box",
                      restraints=restraints,
                      bounds={"positions": round(reach, 3), **({"lattice": DENSITY_RANGE} if refine_density else {})},
                      steps=AMORPHOUS_NETWORK_STEPS if annealed else AMORPHOUS_STEPS,
                      time_limit=ENERGY_BOX_TIME if annealed and energy else AMORPHOUS_TIME, fit_scale=not annealed,
                      anneal=AMORPHOUS_ANNEAL if annealed else 0,
                      energy={"potential": energy[0], "args": dict(energy[1])} if energy else {})


def network_stages(hypothesis: Hypothesis, data_names) -> list:
    """The stages of a hypothesis with an ``anneal``: a melt-and-quench (Langevin MD on the loss, optim/anneal.py)
    of the positions with the data off, ANNEAL_TEMPERATURES K over ANNEAL_TIMESTEP fs steps, then L-BFGS with the
    data on (``hypothesis.steps``). The quench runs on the hypothesis' ``energy`` (weight 1: the potential's energy
    in eV, physical temperatures) with the coordination restraints off, and is followed by a relaxation with them
    at NETWORK_RELAX's weight (examples/silica_glass.toml's protocol); without an energy it runs on the
    coordination restraints at ANNEAL_COORDINATION, their penalty per atom in eV (energy_scale = the atoms)."""
    from scatterfit.optim import Stage

    (structure,) = hypothesis.structures.values()
    coordination = hypothesis.restraints.get("coordination", [])
    data_off = {name: 0.0 for name in data_names}
    melt = {"steps": hypothesis.anneal, "t_start": ANNEAL_TEMPERATURES[0], "t_end": ANNEAL_TEMPERATURES[1],
            "timestep": ANNEAL_TIMESTEP, "free": ["positions"]}
    if hypothesis.energy:
        steps, weight = NETWORK_RELAX
        return [Stage("anneal", **melt, weights={**data_off, "energy": 1.0,
                                                 **{f"coordination:{c['pair']}": 0.0 for c in coordination}}),
                Stage("lbfgs", steps=steps, free=["positions"],
                      weights={**data_off, "energy": 1.0,
                               **{f"coordination:{c['pair']}": weight for c in coordination}}),
                Stage("lbfgs", steps=hypothesis.steps)]
    weights = {**data_off, **{f"coordination:{c['pair']}": ANNEAL_COORDINATION for c in coordination}}
    return [Stage("anneal", **melt, energy_scale=float(len(structure)), weights=weights),
            Stage("lbfgs", steps=hypothesis.steps)]


MIN_GAIN = {"mixture": 0.25, "nanoparticle": 0.05, "crystal": 0.10}
"""How much lower (relative) a mixture's or a particle's mean Rw must be than its best parent crystal's to count,
and a crystal's made from another (its subgroup, solve/subgroups.py) than that crystal's, per structural
parameter it frees: on measured data the misfit is mostly systematic, and any added phase, envelope or freed
coordinate absorbs some of it (fcc Ni + a spurious hcp Ni lowers Ni.gr's Rw by 12 %, which an information
criterion with the Nyquist count rewards). Subgroups measured: the cubic diamond Si of si.gr gains 7.6 % in
I4_1/amd with one more parameter (a 0.7 % tetragonal strain that silicon does not have), the tetragonal K/Mn-doped
BaZn2As2 6.5 % in the polar I4mm with four more, where SrFe2As2 below its transition gains 16 % in Fmmm with one
(the 10 % per parameter was set between these three)."""


MIN_ENVELOPE_ATOMS = 100
"""The fewest atoms a crystal's particle in a spherical envelope may hold: below (2 nm of CdSe holds 150, of a
metal 400), most atoms are on its surface and a cut crystal is no model of it; so small an envelope describes
short-range order (silica glass's measured G(r) as a 10 Å sphere of cristobalite, 39 atoms: the discarded
crystallite model of glass), and finite objects that small are clusters (solve/clusters.py)."""


def envelope_atoms(hypothesis: Hypothesis) -> float | None:
    """The atoms inside a refined envelope particle: ρ0 π D³/6 with its crystal's ρ0 and refined spdiameter D;
    None for other hypotheses."""
    if hypothesis.result is None or "spdiameter" not in hypothesis.free:
        return None
    diameter = hypothesis.result.parameters().get("spdiameter")
    structure = hypothesis.result.structure
    if diameter is None or structure.cell is None:
        return None
    density = float(structure.occupancy.detach().sum() / structure.volume)
    return density * math.pi * float(diameter) ** 3 / 6


def damped_as_particle(crystal: Hypothesis) -> bool:
    """Whether a refined PDF crystal's free qdamp ended on its upper bound (BOUNDS: a resolution no PDF instrument
    has): the Gaussian damping then stands in for a particle's envelope (measured CdSe-1, 2 nm particles: the
    wurtzite crystal at qdamp 0.1, Rw 0.569, its particle 0.561 at the example's 0.562)."""
    if crystal.result is None or "qdamp" not in crystal.free:
        return False
    qdamp = crystal.result.parameters().get("qdamp")
    return qdamp is not None and float(qdamp) >= 0.999 * BOUNDS["qdamp"][1]


def supersede_damped_crystals(hypotheses: list) -> None:
    """Mark a crystal whose qdamp stands in for a particle's envelope (:func:`damped_as_particle`) as superseded
    when its particle is supported: the same structure, with the finite size modelled as a size instead of as a
    resolution no instrument has (CdSe-1: crystal 0.569 and particle 0.561 were otherwise tied by the BIC)."""
    for particle in hypotheses:
        if particle.kind != "nanoparticle" or particle.error or particle.result is None:
            continue
        for crystal in particle.parents:
            if crystal.kind == "crystal" and not crystal.error and damped_as_particle(crystal):
                crystal.error = (f"superseded by {particle.label}: its qdamp reached the bound "
                                 f"({BOUNDS['qdamp'][1]:g} Å⁻¹, a resolution no instrument has) to damp the signal "
                                 "as the particle's envelope does")


def check_gain(hypothesis: Hypothesis, finite: bool = False) -> Hypothesis:
    """Mark a refined particle, mixture or subgroup crystal that does not improve on its parents by MIN_GAIN (a
    subgroup: per structural parameter it frees), or an envelope particle
    of fewer than MIN_ENVELOPE_ATOMS atoms, as unsupported. A particle whose crystal's qdamp stands in for its
    envelope (:func:`damped_as_particle`) needs only to fit as well as that crystal, and with ``finite`` (a sample
    in solution, where the crystal is no candidate) needs no gain at all."""
    need = MIN_GAIN.get(hypothesis.kind)
    if need is None or hypothesis.error or not hypothesis.parents:
        return hypothesis
    atoms = envelope_atoms(hypothesis)
    if atoms is not None and atoms < MIN_ENVELOPE_ATOMS:
        diameter = hypothesis.result.parameters()["spdiameter"]
        hypothesis.error = (f"not supported: its {diameter:.1f} Å envelope holds about {atoms:.0f} atoms, most of "
                            f"them on the surface: no crystal's particle (fewer than {MIN_ENVELOPE_ATOMS}; "
                            "short-range order, a glass's or a cluster's)")
        return hypothesis
    mean = sum(hypothesis.rw.values()) / len(hypothesis.rw)
    parents = [sum(p.rw.values()) / len(p.rw) for p in hypothesis.parents if p.rw]
    if not parents:  # made from unrefined crystals (a two-phase screen's pair whose phases fail alone)
        return hypothesis
    gain = 1 - mean / min(parents)
    if hypothesis.kind == "crystal":  # a subgroup: per parameter it frees
        need *= max(1, structural_count(hypothesis) - min(structural_count(p) for p in hypothesis.parents))
    if hypothesis.kind == "nanoparticle" and any(damped_as_particle(p) for p in hypothesis.parents):
        need = 0.0  # the crystal's resolution damping stands in for the envelope: the particle need only match it
    if hypothesis.kind == "nanoparticle" and finite:
        return hypothesis  # in solution the crystal is no rival: the particle is what remains of it
    if gain < need:
        compared = (f"is only {100 * gain:.0f} % below" if gain >= 0 else "is above")
        needed = (f"a subgroup needs {100 * MIN_GAIN['crystal']:.0f} % less per parameter it frees: "
                  f"{100 * need:.0f} %" if hypothesis.kind == "crystal" else
                  f"a {hypothesis.kind} needs {100 * need:.0f} % less")
        hypothesis.error = f"not supported: Rw {mean:.4f} {compared} its best parent's {min(parents):.4f} ({needed})"
    return hypothesis


HOLDOUT = (5.0, 20.0)  # Å beyond the fit range: the least data a held-out check needs, and the most it uses
HOLDOUT_SILENT = 0.98  # a crystal's held-out Rw from which it predicts no more there than zero does (the data
#                        beyond are noise: CdSe-1's 2 nm particles, where crystal and particle both gave 1.000)


def holdout_rw(hypothesis: Hypothesis, datasets: dict, qmax: float | None = None) -> float | None:
    """The mean Rw with which a refined (total-scattering) hypothesis predicts the G(r) beyond its fit range, at
    the scale it was refined with: over (end of :func:`fit_range`, + HOLDOUT[1] Å], from datasets reaching at
    least HOLDOUT[0] Å beyond it; None when none does (or the hypothesis has no result)."""

    if hypothesis.result is None or hypothesis.model != "pdf":
        return None
    state = hypothesis.result.state
    values = []
    with torch.no_grad():
        for name, data in datasets.items():
            end = fit_range(data)[1]
            x = torch.as_tensor(data.x, dtype=state.structure.dtype)
            y = torch.as_tensor(data.y, dtype=state.structure.dtype)
            keep = (x > end) & (x <= end + HOLDOUT[1])
            if data.kind != "gr" or float(x[-1]) < end + HOLDOUT[0] or int(keep.sum()) < 10:
                continue
            model = _gr_model(hypothesis, data, qmax or float(data.metadata["qmax"]))
            scale = hypothesis.result.terms[name].breakdown["scale"]
            y_calc = scale * model(state, x[keep])
            values.append(float(torch.sqrt(((y[keep] - y_calc) ** 2).sum() / (y[keep] ** 2).sum())))
    return sum(values) / len(values) if values else None


def check_holdout(particle: Hypothesis, datasets: dict, qmax: float | None = None) -> Hypothesis:
    """Mark a refined nanoparticle that predicts the G(r) beyond the fit range worse than its parent crystal
    (:func:`holdout_rw`) as unsupported: an envelope refined on r ≤ 30 Å also absorbs any slow decay of the
    peaks (a resolution or disorder the crystal's qdamp and delta2 do not describe exactly; the measured
    bulk BaZn2As2 took a 128 Å "particle" at 29 % lower Rw), but a particle that is really there must also
    explain where the signal goes beyond it. Where the crystal predicts nothing there either (its held-out Rw
    HOLDOUT_SILENT or more: the signal has ended, the data beyond are noise) the check tells nothing, nor does a
    crystal whose qdamp reached its bound (:func:`damped_as_particle`): its tail is that of a resolution no
    instrument has (measured CdSe-4, 3 nm particles: both wurtzite and 4H crystals at qdamp 0.1, their particles
    rejected for a held-out Rw of 0.887–0.902 against 0.874–0.882)."""
    if particle.kind != "nanoparticle" or particle.error or not particle.parents:
        return particle
    mine = holdout_rw(particle, datasets, qmax)
    theirs = [v for v in (holdout_rw(p, datasets, qmax) for p in particle.parents if not damped_as_particle(p))
              if v is not None]
    if mine is not None and theirs and mine > min(theirs) and min(theirs) < HOLDOUT_SILENT:
        particle.error = (f"not supported: beyond the fit range it predicts the data worse than its crystal (Rw "
                          f"{mine:.3f} against {min(theirs):.3f} over the next {HOLDOUT[1]:g} Å)")
    return particle


RESTRAINT_WEIGHTS = {"min_distance": 10.0, "bond_valence": 0.01, "coordination": 0.1}
"""The weights of a hypothesis' restraints against the data's Rw²: the hard core's penalty is in Å² per atom (a
violation of 0.1 Å costs as much as Rw 0.3); the bond-valence sums' in valence units² per ion (a deviation of 0.5
v.u. on every ion costs as much as Rw 0.05), a nudge towards chemical bonding that the data can overrule."""


def restraint_terms(restraints: dict) -> list:
    """The RestraintTerms of a hypothesis' ``restraints`` ({name: args}; see :class:`Hypothesis`) at
    RESTRAINT_WEIGHTS (a stage's ``weights`` may change them, as the cluster search's final stages do)."""
    from scatterfit.constraints import RESTRAINTS
    from scatterfit.loss import RestraintTerm

    return [RestraintTerm(RESTRAINTS[name](**one, weight=RESTRAINT_WEIGHTS[name])) for name, args in
            restraints.items() for one in (args if isinstance(args, list) else [args])]


def energy_terms(energy: dict) -> list:
    """[the EnergyTerm of a hypothesis' ``energy``] ({"potential", "args"}; see :class:`Hypothesis`) at
    BOX_ENERGY_WEIGHT, or []."""
    if not energy:
        return []
    from scatterfit.energy.registry import make_potential
    from scatterfit.loss import EnergyTerm

    return [EnergyTerm(make_potential(energy["potential"], **energy["args"]), weight=BOX_ENERGY_WEIGHT)]


def effective_parameters(hypothesis: Hypothesis, result, datasets: dict, qmax: float | None) -> int:
    """The refined parameters the ranking counts: all of them (of a symmetric cluster's orbits the free
    dimensions), except for a box (amorphous), whose thousands of
    coordinates can describe any G(r) up to half its length but no more: it counts the data's independent points
    up to there (solve/ranking.independent_points), and its other parameters."""
    n = int(result.theta.numel())
    if "orbits" in hypothesis.free:  # a displacement of 3 per orbit, of which only the orbit's dims are free
        (structure,) = hypothesis.structures.values()
        n -= 3 * structure.symmetry.n_orbits - structure.symmetry.n_free
    if hypothesis.model != "box":
        return n
    from scatterfit.solve.ranking import independent_points

    (structure,) = hypothesis.structures.values()
    half = 0.5 * float(structure.cell.detach().diagonal().min())
    coordinates = 3 * len(structure)
    points = sum(independent_points(d, max(1.5, float(d.x[0])), min(half, XMAX, float(d.x[-1])),
                                    qmax or float(d.metadata["qmax"])) for d in datasets.values())  # checked
    return n - coordinates + min(coordinates, int(math.ceil(points)))


def analytic_scales(loss) -> int:
    """The scales ``loss`` solves in closed form, one per data term that fits its scale (a box fitted to its
    G(r) and to the measured S(Q) − 1 has two; an annealed box none): refined parameters that are not in θ."""
    return sum(1 for term in loss.terms if getattr(term, "fit_scale", False))


def fit_range(data) -> tuple[float, float]:
    """(xmin, xmax), Å, of a G(r) that every hypothesis is refined and counted on: from max(1.5 Å, the data's
    start) to min(XMAX, the data's end)."""
    return max(1.5, float(data.x[0])), min(XMAX, float(data.x[-1]))


def _gr_model(hypothesis: Hypothesis, data, qmax: float):
    """The hypothesis' forward model of a G(r) ``data`` at ``qmax`` (Å⁻¹): one per phase in a PhaseMixture for a
    mixture."""
    from scatterfit.scattering.mixture import PhaseMixture
    from scatterfit.scattering.models import make_forward_model

    if len(hypothesis.structures) > 1:
        return PhaseMixture({p: make_forward_model(hypothesis.model, data, qmax=qmax) for p in hypothesis.structures},
                            data.radiation)
    return make_forward_model(hypothesis.model, data, qmax=qmax)


def hypothesis_loss(hypothesis: Hypothesis, datasets: dict, qmax: float | None = None):
    """The Loss a (total-scattering) hypothesis is refined with: one data term per dataset with the hypothesis'
    forward model (the config's models, so a replayed config computes exactly this) over r from max(1.5 Å, the
    data's start) to min(XMAX, the data's end) (:func:`fit_range`; an intensity I(Q): all of it), and its
    restraints.

    Raises:
        ScatterfitError: a dataset without Qmax (header or ``qmax``).
    """
    from scatterfit.errors import ScatterfitError
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.scattering.models import make_forward_model

    terms = []
    for name, data in datasets.items():
        if data.kind != "gr":  # an intensity (a cluster's, a particle's shape): the whole pattern on its Q grid
            terms.append(DataTerm(make_forward_model(hypothesis.model, data, **hypothesis.options), data, name=name))
            continue
        q = qmax or float(data.metadata.get("qmax", 0)) or None
        if q is None:
            raise ScatterfitError(f"{data.path or name}: no Qmax in the header; give --qmax")
        model = _gr_model(hypothesis, data, q)
        xmin, xmax = fit_range(data)
        measured = measured_curve(hypothesis, data)
        share = 1.0 if measured is None else MEASURED_SHARE
        terms.append(DataTerm(model, data, xmin=xmin, xmax=xmax, name=name, fit_scale=hypothesis.fit_scale,
                              weight=share))
        if measured is not None:
            from scatterfit.scattering.models import BoxScatteringModel

            terms.append(DataTerm(BoxScatteringModel(kind="fq", radiation=data.radiation, q_weighted=False),
                                  measured, xmin=box_qmin(hypothesis), name=measured_name(name),
                                  fit_scale=hypothesis.fit_scale, weight=1.0 - share))
    return Loss(terms + restraint_terms(hypothesis.restraints) + energy_terms(hypothesis.energy))


MEASURED_SHARE = 0.5
"""The G(r)'s share of a measurement's weight in a box's loss when the measured S(Q) − 1 is fitted beside it (the
curve gets the rest): one measurement weighs as one dataset against the restraints and the energy (at weight 1
each, silica's box kept 93 % of its Si four-fold instead of 96 %)."""


def measured_name(name: str) -> str:
    """The data term of a G(r) dataset's measured reciprocal-space curve (a box hypothesis fits both)."""
    return f"{name}_measured"


def measured_curve(hypothesis: Hypothesis, data):
    """The measured S(Q) − 1 behind a G(r) that solve derived from S(Q) or F(Q) (solve/inputs.as_pdf's metadata
    "reciprocal", on the G(r)'s scale), as a Dataset of kind "fq" (an interference function) when
    ``hypothesis`` is a box, else None. A box is fitted to the curve that was measured as well as to its G(r), as
    reverse Monte Carlo does: the G(r), transformed without a window up to the data's last Q, carries the noise
    of the highest Q to every r, and alone it left the silica glass's box 19–27 % above the hand-written
    example's Rw on the measured F(Q) (README)."""
    import numpy as np

    from scatterfit.io import Dataset

    reciprocal = data.metadata.get("reciprocal")
    if hypothesis.model != "box" or reciprocal is None:
        return None
    return Dataset(np.asarray(reciprocal["q"], float), np.asarray(reciprocal["s_minus_1"], float), None, "fq",
                   "inv_angstrom", radiation=data.radiation, metadata={"form": "interference"}, path=data.path)


def box_qmin(hypothesis: Hypothesis) -> float:
    """The lowest Q (Å⁻¹) a box's S(Q) is fitted from: 2π over half its shortest edge, the longest distance its
    pair distribution holds (examples/silica_glass.toml fits its 21.4 Å box from 0.8 Å⁻¹)."""
    (structure,) = hypothesis.structures.values()
    return 4 * math.pi / float(structure.cell.detach().norm(dim=1).min())


def data_term_names(hypothesis: Hypothesis, datasets: dict) -> list:
    """The names of the data terms :func:`hypothesis_loss` builds: one per dataset, and one per measured curve
    behind a derived G(r) for a box."""
    names = list(datasets)
    names += [measured_name(n) for n, d in datasets.items() if measured_curve(hypothesis, d) is not None]
    return names


CALIBRATED = ("qdamp", "qbroad")
"""The instrument's resolution parameters a calibration standard fixes (Å⁻¹): given with the data (solve's
``instrument``, the command line's --qdamp/--qbroad; kept in each G(r) dataset's metadata["calibration"], never
read from a file's header), they are held at those values in every hypothesis instead of refined."""


def checked_calibration(instrument: dict) -> dict:
    """``instrument`` ({"qdamp", "qbroad": Å⁻¹}) checked (known names, numbers in [0, 1)) as floats.

    Raises:
        ScatterfitError: naming the unknown parameter or the bad value."""
    from scatterfit.errors import ScatterfitError

    unknown = sorted(set(instrument) - set(CALIBRATED))
    if unknown:
        raise ScatterfitError(f"instrument: unknown parameter '{unknown[0]}' (use {', '.join(CALIBRATED)})")
    for name, value in instrument.items():
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                           and 0 <= value < 1):
            raise ScatterfitError(f"instrument: {name} must be a number in [0, 1) Å⁻¹, got {value!r}")
    return {k: float(v) for k, v in instrument.items()}


def calibrated(datasets: dict) -> dict:
    """{name: value} of the CALIBRATED parameters the datasets' metadata["calibration"] give (the first dataset
    that gives one)."""
    out = {}
    for data in datasets.values():
        given = data.metadata.get("calibration") or {}
        for name in CALIBRATED:
            if name not in out and given.get(name) is not None:
                out[name] = float(given[name])
    return out


def sample_bounds(found) -> dict:
    """Bounds over BOUNDS that the triage ``found`` (solve/triage.Triage) calls for: Biso up to DISORDERED_BISO when
    the PDF's signal ends as that of particles under SMALL_PARTICLE Å (more than a third of their atoms on the
    surface, whose relaxations a crystal model sees as large ADPs); otherwise none."""
    if found.kind == "gr" and found.classes[0] == "nanoparticle" and found.particle_diameter < SMALL_PARTICLE:
        return {"biso": (BOUNDS["biso"][0], DISORDERED_BISO)}
    return {}


ROOM_TEMPERATURE = 300.0  # K: the temperature BOUNDS' Biso range is meant for


def thermal_bounds(temperature: float | None) -> dict:
    """Bounds over BOUNDS for a sample measured at ``temperature`` K (given): above room temperature the Biso bound
    grows as T / ROOM_TEMPERATURE (in the harmonic high-temperature limit the mean-square displacement is
    proportional to T); at or below it, or without a temperature, none."""
    if temperature is None or temperature <= ROOM_TEMPERATURE:
        return {}
    return {"biso": (BOUNDS["biso"][0], BOUNDS["biso"][1] * temperature / ROOM_TEMPERATURE)}


def sample_starts(found) -> dict:
    """Starting values that the triage ``found`` calls for: delta2 at DISORDERED_DELTA2 Å² for the particles under
    SMALL_PARTICLE Å of :func:`sample_bounds`; otherwise none."""
    return {"delta2": DISORDERED_DELTA2} if sample_bounds(found) else {}


def with_sample_starts(hypothesis: Hypothesis, datasets: dict) -> dict:
    """The values of a hypothesis refined from its library start (not from a refined parent) with the datasets'
    metadata["starts"] (:func:`sample_starts`, set by the solve) over the values it has."""
    if hypothesis.warm or hypothesis.parents:
        return hypothesis.values
    out = dict(hypothesis.values)
    for data in datasets.values():
        out.update({k: v for k, v in (data.metadata.get("starts") or {}).items() if k in out})
    return out


def with_sample_bounds(bounds: dict, datasets: dict) -> dict:
    """``bounds`` over the datasets' metadata["bounds"] (:func:`sample_bounds`, set by the solve): the
    hypothesis' own bounds win."""
    out = {}
    for data in datasets.values():
        out.update(data.metadata.get("bounds") or {})
    return {**out, **bounds}


def with_calibration(free: list, values: dict, datasets: dict) -> tuple[list, dict]:
    """(free groups, values) with the datasets' calibrated instrument parameters taken out of ``free`` and set."""
    fixed = calibrated(datasets)
    return [g for g in free if g not in fixed], {**values, **fixed}


def refine_hypothesis(hypothesis: Hypothesis, datasets: dict, *, qmax: float | None = None,
                      time_limit: float = TIME_LIMIT) -> Hypothesis:
    """Refine ``hypothesis`` against ``datasets`` ({name: G(r) Dataset}) with the default r-range ramp (LM);
    fills its result, rw, n_parameters and seconds, or its error when the refinement fails, when the
    short-range screen rejects it (a ramp whose first stage ends above SHORT_RANGE_RW) or when it runs past
    ``time_limit`` CPU seconds of this process (so that other jobs on the same cores do not change what is
    refined)."""
    from scatterfit.errors import ScatterfitError
    from scatterfit.optim import pdf_range_ramp, refine
    from scatterfit.optim.stages import default_optimizer
    from scatterfit.structure.parametrisation import Parametrisation, background_bounds
    from scatterfit.structure.phases import MixtureParametrisation

    t0, cpu0 = time.perf_counter(), time.process_time()
    if hypothesis.model == "powder":
        return _refine_powder(hypothesis, datasets, time_limit, t0, cpu0)
    hypothesis.free, hypothesis.values = with_calibration(hypothesis.free, hypothesis.values, datasets)
    hypothesis.bounds = with_sample_bounds(hypothesis.bounds, datasets)
    hypothesis.values = with_sample_starts(hypothesis, datasets)
    try:
        loss = hypothesis_loss(hypothesis, datasets, qmax)
        bounds = {**BOUNDS, **hypothesis.bounds}
        if "background" in hypothesis.free:  # an intensity's background: the bounds a refine config gets
            bounds["background"] = background_bounds(d.y for d in datasets.values())
        instrument = loss.declared_parameters(hypothesis.values)  # the shape model's radius, a G(r)'s qmin, ...
        if len(hypothesis.structures) > 1:
            param = MixtureParametrisation(hypothesis.structures, free=hypothesis.free, values=hypothesis.values,
                                           bounds=bounds, instrument=instrument, shells=hypothesis.shells)
        else:
            (structure,) = hypothesis.structures.values()
            param = Parametrisation(structure, free=hypothesis.free, values=hypothesis.values, bounds=bounds,
                                    instrument=instrument)
        optimizer = default_optimizer(loss, param)
        if hypothesis.anneal:
            # what the replay config says (report/solution.py)
            stages = network_stages(hypothesis, data_term_names(hypothesis, datasets))
        elif hypothesis.steps is not None:
            from scatterfit.optim import Stage

            stages = [Stage("lbfgs", steps=hypothesis.steps)]  # what the replay config says (report/solution.py)
        elif hypothesis.model == "shape":  # a few shape parameters over the whole curve (replayed likewise)
            from scatterfit.optim import Stage

            stages = shape_stages()
        elif hypothesis.warm:
            from scatterfit.optim import Stage

            stages = [Stage(optimizer, steps=WARM_STEPS)]
        else:
            stages = pdf_range_ramp(param.free, optimizer, STEPS)
        hypothesis.stages = list(stages)
        result = refine(loss, param, stages, observers=[_screen(hypothesis.time_limit or time_limit, cpu0)])
    except (ScatterfitError, RuntimeError, ValueError, _Stop) as exc:
        hypothesis.error = str(exc).splitlines()[0]
        hypothesis.seconds = time.perf_counter() - t0
        return hypothesis
    hypothesis.result = result
    hypothesis.rw = {name: result.terms[name].breakdown["rw"] for name in datasets}
    hypothesis.n_parameters = effective_parameters(hypothesis, result, datasets, qmax) + analytic_scales(loss)
    hypothesis.seconds = time.perf_counter() - t0
    return hypothesis


def shape_stages() -> list:
    """The stages of a small-angle shape hypothesis: Levenberg–Marquardt over the whole curve in SHAPE_STAGES
    stages of SHAPE_STEPS steps, each after the first releasing what the previous pressed onto a bound (a size
    spread driven to zero while the aspect is still wrong)."""
    from scatterfit.optim import Stage

    return [Stage("lm", steps=SHAPE_STEPS, release=k > 0) for k in range(SHAPE_STAGES)]


def cpu_seconds(cpu0: float) -> float:
    """CPU seconds of this process since ``cpu0`` (time.process_time(): the work done, which other jobs sharing
    the cores do not inflate as they do the wall time) per torch thread: with N threads the refinement may use N
    cores, and a limit in these seconds stays what it is on one."""
    import torch

    return (time.process_time() - cpu0) / max(torch.get_num_threads(), 1)


def _time_limit(limit: float, cpu0: float):
    """An observer that stops a refinement past ``limit`` :func:`cpu_seconds` since ``cpu0``."""

    def observe(stage: int, step: int, value: float, terms: dict) -> None:
        if cpu_seconds(cpu0) > limit:
            raise _Stop(f"stopped: not converged within {limit:.0f} CPU seconds")

    return observe


def _refine_powder(hypothesis: Hypothesis, datasets: dict, time_limit: float, t0: float, cpu0: float
                   ) -> Hypothesis:
    """Refine a Bragg (Rietveld) hypothesis over the whole of each pattern with the powder ramp (optim/stages.py:
    positions, a common width and the background first, then everything), Levenberg–Marquardt."""
    from scatterfit.errors import ScatterfitError
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.optim import refine
    from scatterfit.optim.stages import powder_ramp
    from scatterfit.scattering.mixture import PhaseMixture
    from scatterfit.scattering.models import make_forward_model
    from scatterfit.structure.parametrisation import Parametrisation, background_bounds
    from scatterfit.structure.phases import MixtureParametrisation

    try:
        terms, instrument = [], {}
        for name, data in datasets.items():
            model = make_forward_model("powder", data)
            known = model.parameters({})
            instrument.update(model.parameters({k: v for k, v in hypothesis.values.items() if k in known}))
            if len(hypothesis.structures) > 1:
                model = PhaseMixture({p: make_forward_model("powder", data) for p in hypothesis.structures},
                                     data.radiation)
            terms.append(DataTerm(model, data, name=name))
        loss = Loss(terms)
        bounds = {**BOUNDS, "background": background_bounds(d.y for d in datasets.values()),
                  **with_sample_bounds(hypothesis.bounds, datasets)}  # a hot sample's wider Biso
        if len(hypothesis.structures) > 1:
            param = MixtureParametrisation(hypothesis.structures, free=hypothesis.free, values=hypothesis.values,
                                           bounds=bounds, instrument=instrument)
        else:
            (structure,) = hypothesis.structures.values()
            param = Parametrisation(structure, free=hypothesis.free, values=hypothesis.values, bounds=bounds,
                                    instrument=instrument)
        result = refine(loss, param, powder_ramp(param.free),
                        observers=[_time_limit(hypothesis.time_limit or time_limit, cpu0)])
    except (ScatterfitError, RuntimeError, ValueError, _Stop) as exc:
        hypothesis.error = str(exc).splitlines()[0]
        hypothesis.seconds = time.perf_counter() - t0
        return hypothesis
    hypothesis.result = result
    hypothesis.rw = {name: result.terms[name].breakdown["rw"] for name in datasets}
    hypothesis.n_parameters = int(result.theta.numel()) + analytic_scales(loss)
    hypothesis.seconds = time.perf_counter() - t0
    return hypothesis

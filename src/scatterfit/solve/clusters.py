"""Cluster hypotheses: a molecule or discrete cluster of the formula's atoms (a polyoxometalate ion in solution, a
fullerene, a ligand-free metal cluster) found without a template, by a symmetric random search as AIRSS and
PyXtal do.

1. The restraints any chemist would impose without knowing the answer (:func:`cluster_restraints`): hard cores
   from the data's first peak (hypotheses.hard_cores) and, for an ionic formula, bond-valence sums at oxidation
   states guessed from the formula (solve/ionic.oxidation_states).
2. A particle swarm over the point group (the groups the formula's counts split into, :func:`placeable_groups`)
   and the random start (structure/symmetry.py places each element on the fewest orbits); every candidate's
   orbits are refined briefly against the Debye G(r) of the data (the same loss as the hypotheses'), and ranked
   by that loss times the information criterion's penalty on its free coordinates (:class:`InformationPenalty`:
   otherwise C1, with every coordinate free, always wins); the best of the best three groups hop between basins
   with the group kept
   (optim/basin.py: a random start's basin is small, about 1 in 24 random starts of a 16-atom cluster in its own
   group reach it, and hops from a start at Rw 0.43 reached it) and are refined to convergence.
3. Two hypotheses from the best: the symmetric cluster (its orbits refined; few parameters) and the same with
   every atom free within POSITION_BOUND Å (what the data say beyond the symmetry; 3N coordinates, which the
   ranking's information criterion counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scatterfit.solve.hypotheses import (
    HARD_CORE,
    MAX_PACKING,
    Hypothesis,
    fit_range,
    hard_cores,
    hypothesis_loss,
    phase_name,
    with_calibration,
)

MAX_CLUSTER_ATOMS = 200  # larger finite objects are nanoparticles (cut from crystals), not searched atom by atom
MIN_CLUSTER_ATOMS = 4  # fewer: a formula unit (TiO2, CdSe), not a molecule worth a search
SEARCH_SIZE = 16  # particles per generation
SEARCH_BUDGET = 256  # candidate evaluations
SEARCH_STALL = 10  # generations without a better candidate
INNER_STEPS = 150  # L-BFGS steps on the orbits of every candidate
BASIN_HOPS = 60  # basin hopping on the orbits of each of the best TOP_K candidates (optim/basin.py)
BASIN_LOCAL = 40  # L-BFGS steps relaxing each hop
BASIN_STEP = 0.3  # Å, the jitter of a hop (or one to three orbits relocated)
FINAL_STEPS = 300  # L-BFGS with the group kept, after the hops
TOP_K = 3  # the best candidates of this many point groups go on to the basin hopping
POSITION_BOUND = 0.3  # Å: how far the free refinement may move an atom from the symmetric answer
FREE_STEPS = 300
START_QDAMP = 0.03  # Å⁻¹, refined
START_DENSITY = 0.1  # atoms/Å³ of the random starts (condensed matter: 0.05–0.1), less where the hard cores
# (HARD_CORE × the first peak) would fill more than MAX_PACKING of the sphere
START_UISO = 0.005  # Å², of the random starts (refined)
MUTATION = 0.5  # the swarm's chance per particle and generation to redraw the group or the start (its default
# 0.1 lets one early group take the whole budget: the Keggin search stalled in Oh at Rw 0.60 where T holds the cage)
SEARCH_WEIGHTS = {"bond_valence": 0.1}
"""The bond-valence sums weigh ten times more in the search's final stages (the basin hopping and the fit with
the group kept) than among the random starts and in the hypotheses' refinement (hypotheses.RESTRAINT_WEIGHTS):
there they decide the connectivity (a Keggin search in T at 0.1 throughout gave every W six O and the 12/24/4
terminal, bridging and central O; at 0.01 five O and 24/12/4), but among random starts they made the Keggin's
search end in Oh at Rw 0.61 where at 0.01 it reached T's cage; and O'Keeffe and Brese's R0, fitted to solids,
would pull a molecule's bonds off the data's lengths if they weighed as much in the final fit (SiCl4: four bonds
of 2.025 Å sum to 4.52 v.u.; the sum is 4 at R0 = 2.071 Å)."""
def cluster_restraints(counts: dict, first_peak: float) -> dict:
    """{restraint name: args} of a cluster hypothesis (see the module docstring)."""
    from scatterfit.solve.ionic import oxidation_states

    out = {"min_distance": {"distances": hard_cores(list(counts), first_peak)}}
    oxidation = oxidation_states(counts)
    if oxidation is not None:
        out["bond_valence"] = {"oxidation": oxidation}
    return out


def placeable_groups(counts: dict, groups=None) -> list[str]:
    """The point groups (``groups``, default symmetry.CLUSTER_GROUPS) whose orbits ``counts`` ({element: n}) split
    into, with at most one atom at the origin."""
    from scatterfit.structure.symmetry import CLUSTER_GROUPS, fewest_orbits, site_types

    out = []
    for group in groups or CLUSTER_GROUPS:
        sites, origin_free, ok = site_types(group), True, True
        for n in sorted(counts.values()):
            split = fewest_orbits(int(n), sites, origin_free)
            if split is None:
                ok = False
                break
            origin_free = origin_free and not any(sites[i].dim == 0 for i in split)
        if ok:
            out.append(group)
    return out


INTENSITY_BACKGROUND = 5  # Chebyshev order of an intensity's background (solvent, incoherent scattering)


def _instrument(datasets: dict) -> list:
    """The groups a cluster refines besides its structure and qdamp: an intensity's background."""
    return ["background"] if any(d.kind != "gr" for d in datasets.values()) else []


def _transform(datasets: dict) -> list:
    """["qmin"] when a G(r) dataset does not say where its transform started (no qmin in its header, no
    ``--qmin``): a cluster's Debye G(r) then refines it (scattering/models.DebyeModel; the measured Keggin's
    symmetric cluster fits at Rw 0.31 with the default 0.5 Å⁻¹ and at 0.155 with its 0.7–0.8), else []."""
    return ["qmin"] if any(d.kind == "gr" and d.metadata.get("qmin") is None for d in datasets.values()) else []


def _search_bounds(datasets: dict) -> dict:
    from scatterfit.structure.parametrisation import background_bounds

    out = {"orbits": 10.0, "qdamp": (0.0, 0.1)}
    if _instrument(datasets):
        out["background"] = background_bounds(d.y for d in datasets.values())
    return out


def _start_values(datasets: dict) -> dict:
    return {"qdamp": START_QDAMP, **({"background_order": INTENSITY_BACKGROUND} if _instrument(datasets) else {})}


@dataclass(frozen=True)
class InformationPenalty:
    """The factor N^(k/N) by which a candidate's loss (≈ Rw²) is multiplied, so that the search ranks candidates as
    the solve's ranking does (BIC/N = ln Rw² + k ln N / N): N the data's independent points, k the candidate's
    free coordinates (its orbits' free dimensions) plus ``extra`` (ADPs, qdamp, scale). A cluster in C1 has twelve
    times the coordinates of the same atoms in T, and fits better for it alone."""

    points: float
    extra: int

    def __call__(self, structure) -> float:
        k = (structure.symmetry.n_free if structure.symmetry is not None else 3 * len(structure)) + self.extra
        return self.points ** (k / self.points)


def data_points(datasets: dict, qmax: float | None, diameter: float) -> float:
    """The independent points of ``datasets``: of a G(r) its Nyquist count over the range hypotheses are refined
    on, of an intensity its Shannon channels (Qmax − Qmin) D / π for a cluster ``diameter`` D Å across."""
    from scatterfit.solve.ranking import independent_points

    return sum(independent_points(d, *fit_range(d), qmax or float(d.metadata["qmax"])) if d.kind == "gr" else
               max((float(d.x[-1]) - float(d.x[0])) * diameter / math.pi, 1.0) for d in datasets.values())


def cluster_diameter(n_atoms: int) -> float:
    """The diameter (Å) of a sphere holding ``n_atoms`` at START_DENSITY: the size a cluster of that many atoms has
    in condensed matter."""
    from scatterfit.structure.symmetry import cluster_radius

    return 2 * cluster_radius(n_atoms, START_DENSITY)


def cluster_counts(composition: str) -> dict | None:
    """{element: whole number of atoms} of a composition that names a finite formula (W12O40, C60) of at most
    MAX_CLUSTER_ATOMS atoms, or None (elements only, fractions, a list of compounds, or too large)."""
    from scatterfit.structure.library import compounds, parse_composition

    if compounds(composition) is not None:
        return None
    counts = parse_composition(composition)
    if any(abs(n - round(n)) > 1e-9 or round(n) < 1 for n in counts.values()):
        return None
    counts = {e: int(round(n)) for e, n in counts.items()}
    return counts if 2 <= sum(counts.values()) <= MAX_CLUSTER_ATOMS else None


def search_cluster(counts: dict, datasets: dict, qmax: float | None, first_peak: float, *, executor=None,
                   seed: int = 0, checkpoint=None, resume: bool = False, groups=None, observers=None):
    """The symmetric search for a cluster of ``counts`` against ``datasets`` (G(r)); returns (SearchResult, the
    restraints, the groups offered). ``observers`` are called after every generation with (evaluations,
    generation, best loss, its Rw) (optim/search.py).

    Raises:
        ScatterfitError: no point group places the formula, or no candidate could be built.
    """
    from scatterfit.errors import ScatterfitError
    from scatterfit.optim import Stage
    from scatterfit.optim.search import CandidateEvaluator, search
    from scatterfit.optim.space import SearchSpace
    from scatterfit.structure.candidates import SymmetricMoleculeCandidates

    formula = "".join(f"{e}{n}" for e, n in counts.items())
    offered = placeable_groups(counts, groups)
    if not offered:
        raise ScatterfitError(f"{formula}: its atom counts split into the orbits of none of the point groups tried")
    restraints = cluster_restraints(counts, first_peak)
    probe = Hypothesis("cluster", formula, formula, {}, [], model="debye", restraints=restraints)
    loss = hypothesis_loss(probe, datasets, qmax)
    core = round(HARD_CORE * first_peak, 3)
    density = min(START_DENSITY, MAX_PACKING / (math.pi / 6 * core**3))  # room for the hard cores
    builder = SymmetricMoleculeCandidates(formula, min_dist=core, density=density, uiso=START_UISO)
    extra = _instrument(datasets)
    inner = [Stage("lbfgs", free=["orbits", "biso", *extra], steps=INNER_STEPS, tol=1e-4, patience=1)]
    weights = {k: v for k, v in SEARCH_WEIGHTS.items() if k in restraints}
    final = [Stage("basin", free=["orbits", "biso", *extra], steps=BASIN_HOPS, local_steps=BASIN_LOCAL,
                   step_size=BASIN_STEP, weights=weights or None)]
    points = data_points(datasets, qmax, cluster_diameter(sum(counts.values())))
    background = (INTENSITY_BACKGROUND + 1) if extra else 0
    penalty = InformationPenalty(points, len(counts) + 1 + len(datasets) * (1 + background))
    free, values = with_calibration(["orbits", "biso", "qdamp", *extra, *_transform(datasets)], _start_values(datasets),
                                    datasets)
    final.append(Stage("lbfgs", free=free, steps=FINAL_STEPS, weights=weights or None))
    evaluator = CandidateEvaluator(builder, loss, free=free, stages=inner, values=values,
                                   bounds=_search_bounds(datasets),
                                   seed=seed, complexity=penalty)
    space = SearchSpace.from_config({"group": {"kind": "choice", "options": offered},
                                     "start": {"kind": "integer", "low": 0, "high": 9999}})
    found = search(evaluator, space, size=SEARCH_SIZE, budget=SEARCH_BUDGET, stall=SEARCH_STALL, seed=seed,
                   executor=executor, top_k=TOP_K, final_stages=final, checkpoint=checkpoint, resume=resume,
                   fingerprint=f"cluster:{formula}:{first_peak:.4f}:{seed}", observers=observers,
                   mutation=MUTATION, distinct="group")
    return found, restraints, offered


def cluster_hypotheses(found, restraints: dict, offered: list, formula: str, datasets: dict) -> list[Hypothesis]:
    """The symmetric cluster the search found (its orbits refined further) and the same with every atom free
    within POSITION_BOUND Å, as unrefined hypotheses against ``datasets``; none when the search refined
    nothing."""
    if found.refined is None:
        return []
    result = found.refined
    structure = result.structure
    params = result.parameters()
    group = found.best["group"]
    values = {**_start_values(datasets), "qdamp": float(params.get("qdamp") or START_QDAMP)}
    if params.get("qmin") is not None and _transform(datasets):
        values["qmin"] = float(params["qmin"])
    extra = [*_instrument(datasets), *_transform(datasets)]
    source = (f"symmetric random search: {found.evaluations} candidates over the point groups "
              f"{', '.join(offered)} and random starts; best in {group}")
    label = f"{formula} cluster ({group})"
    symmetric = Hypothesis("cluster", label, formula, {phase_name(label): structure},
                           ["orbits", "biso", "qdamp", *extra],
                           values, source, restraints=restraints, model="debye", bounds={"orbits": 10.0},
                           steps=FINAL_STEPS)
    label_free = f"{formula} cluster ({group}, atoms free)"
    free = Hypothesis("cluster", label_free, formula, {phase_name(label_free): structure},
                      ["positions", "biso", "qdamp", *extra], values,
                      source + f"; every atom free within {POSITION_BOUND} Å",
                      restraints=restraints, model="debye", bounds={"positions": POSITION_BOUND}, steps=FREE_STEPS)
    return [symmetric, free]

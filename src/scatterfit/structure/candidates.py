"""Candidate builders for searches: callables (candidate dict, seed) -> Structure that turn the swarm's
variables into structures. They are plain dataclasses, so executors can pickle them.

    ParticleCandidates   shape, size (shells), optional nn_distance (Å) and fraction (of the second element)
    AmorphousCandidates  n_atoms, density (atoms/Å³) of a random box at a fixed composition
    MoleculeCandidates   a formula, with an optional choice of extra atoms (e.g. the Keggin heteroatom)
    SymmetricMoleculeCandidates   the same on the orbits of a point group the candidate names
    CrystalParticleCandidates     spheres and faceted particles cut from any crystal
    StackedParticleCandidates     particles of close-packed layers (hcp, fcc, wurtzite, zinc blende) with faults
"""

from __future__ import annotations

from dataclasses import dataclass

from scatterfit.errors import ScatterfitError
from scatterfit.structure.builders import (
    SHAPES,
    amorphous_box,
    bulk_nn_distance,
    nanoparticle,
    random_alloy,
    random_molecule,
    random_symmetric_molecule,
)
from scatterfit.structure.structure import Structure


def _with_uiso(structure: Structure, uiso: float | None) -> Structure:
    return structure if uiso is None else structure.with_uiso(uiso)


def _formula_with_extra(formula: str, candidate: dict) -> str:
    """``formula`` plus the candidate's "extra" atoms (e.g. the Keggin heteroatom; "none" adds nothing)."""
    extra = candidate.get("extra", "none")
    return formula if extra in ("none", "", None) else formula + str(extra)


@dataclass
class CrystalParticleCandidates:
    """Particles cut from any crystal (a CIF or other structure file: an element, a binary such as wurtzite CdSe,
    a ternary), spheres or faceted, by structure/particles.cut_particle.

    Candidate keys: "diameter" (Å), "shape" (one of particles.SHAPES; default ``shape``), "scale" (relative
    lattice scale, default 1), "aspect" (hexagonal_prism height over diameter, default 1), "centre" ("atom",
    "cell" or an element; default ``centre``), "termination" (an element or "none"; default ``termination``).
    ``stoichiometric`` trims every particle to the crystal's composition.
    """

    file: str
    centre: str = "atom"
    shape: str = "sphere"
    stoichiometric: bool = False
    termination: str | None = None
    uiso: float | None = None

    def __post_init__(self):
        from scatterfit.structure.files import read_structure

        self.crystal = read_structure(self.file)

    def __call__(self, candidate: dict, seed: int) -> Structure:
        from scatterfit.structure.particles import cut_particle

        if "diameter" not in candidate:
            raise ScatterfitError("a crystal_particle search needs a 'diameter' variable (Å)")
        termination = candidate.get("termination", self.termination)
        s = cut_particle(self.crystal, float(candidate["diameter"]), shape=candidate.get("shape", self.shape),
                         centre=candidate.get("centre", self.centre), scale=float(candidate.get("scale", 1.0)),
                         aspect=float(candidate.get("aspect", 1.0)), stoichiometric=self.stoichiometric,
                         termination=None if termination in (None, "none") else termination)
        return _with_uiso(s, self.uiso)


ENSEMBLE_GAP = 500.0  # Å between the particles of an ensemble, beyond the range of any PDF


def side_by_side(structures: list[Structure], spacing: float) -> Structure:
    """Finite structures placed ``spacing`` Å apart along x, as one structure (an ensemble whose PDF is the
    atom-weighted average of theirs as long as the PDF's range stays below the gaps)."""
    import torch

    if len(structures) == 1:
        return structures[0]
    moved = [s.positions + torch.tensor([k * spacing, 0.0, 0.0], dtype=s.dtype, device=s.device)
             for k, s in enumerate(structures)]
    return Structure(torch.cat(moved), torch.cat([s.numbers for s in structures]),
                     occupancy=torch.cat([s.occupancy for s in structures]),
                     biso=torch.cat([s.biso for s in structures]), charges=torch.cat([s.charges for s in structures]),
                     particles=sum(s.particles for s in structures))


@dataclass
class StackedParticleCandidates:
    """Particles of a close-packed-derived crystal (hcp, fcc, wurtzite, zinc blende: a CIF or other structure file)
    with stacking faults, by structure/stacking.py.

    Candidate keys: "diameter" (Å), "fault_probability" (0–1, per layer; default 0), "aspect" (height along the
    stacking direction over the diameter; default 1), "scale" (relative lattice scale; default 1), "sequence" (an
    explicit stacking such as "ABCABAB" instead of drawn faults). The faults are drawn from common random numbers
    of ``seed`` (the search's seed), the same for every candidate.

    A measured powder holds many particles, each with its own faults: ``ensemble`` > 1 makes each candidate that
    many particles with independent draws, side by side ENSEMBLE_GAP Å apart, so a PDF sees their average (their
    pairs across the gap lie beyond any PDF's range; for a Debye I(Q) use one particle).
    """

    file: str
    seed: int = 0
    ensemble: int = 1
    uiso: float | None = None

    def __post_init__(self):
        from scatterfit.structure.files import read_structure
        from scatterfit.structure.stacking import layers_of

        self.layers = layers_of(read_structure(self.file))

    def __call__(self, candidate: dict, seed: int) -> Structure:
        import math

        from scatterfit.structure.stacking import stacked_particle, stacking_sequence

        if "diameter" not in candidate:
            raise ScatterfitError("a stacked_particle search needs a 'diameter' variable (Å)")
        diameter, aspect = float(candidate["diameter"]), float(candidate.get("aspect", 1.0))
        scale = float(candidate.get("scale", 1.0))
        if "sequence" in candidate:
            sequences = [str(candidate["sequence"])]
        else:
            n_layers = int(math.ceil(diameter * aspect / (self.layers.spacing * scale))) + 2
            p = float(candidate.get("fault_probability", 0.0))
            sequences = [stacking_sequence(n_layers, self.layers.parent, p, seed=self.seed + k)
                         for k in range(max(1, int(self.ensemble)))]
        particles = [stacked_particle(self.layers, q, diameter, aspect=aspect, scale=scale) for q in sequences]
        return _with_uiso(side_by_side(particles, ENSEMBLE_GAP + diameter * max(1.0, aspect)), self.uiso)


@dataclass
class ParticleCandidates:
    """Nanoparticles of ``element`` (and ``second_element`` at ``fraction`` when the candidate has one).

    Candidate keys: "shape" (one of SHAPES; default ``shape``), "size" (shells), "nn_distance" (Å; default
    ``nn_distance`` or the element's bulk value), "fraction" (0–1, share of the second element).

    For an alloy (a "fraction" key) without an explicit nn_distance the spacing follows Vegard's law between
    the two elements' bulk values: in a random alloy all partial PDFs share their peak positions, so the PDF
    shape carries the composition mainly through this lattice spacing.
    """

    element: str
    second_element: str | None = None
    shape: str = "cuboctahedron"
    nn_distance: float | None = None
    lattice: str = "fcc"
    uiso: float | None = 0.005

    def __call__(self, candidate: dict, seed: int) -> Structure:
        shape = candidate.get("shape", self.shape)
        if shape not in SHAPES:
            raise ScatterfitError(f"unknown shape '{shape}'")
        nn = candidate.get("nn_distance", self.nn_distance)
        if nn is None and "fraction" in candidate and self.second_element is not None:
            f = float(candidate["fraction"])
            nn = (1 - f) * bulk_nn_distance(self.element) + f * bulk_nn_distance(self.second_element)
        s = nanoparticle(self.element, shape, int(candidate["size"]), nn_distance=nn, lattice=self.lattice)
        if "fraction" in candidate:
            if self.second_element is None:
                raise ScatterfitError("a 'fraction' variable needs second_element")
            f = float(candidate["fraction"])
            s = random_alloy(s, {self.element: 1 - f, self.second_element: f}, seed=seed)
        return _with_uiso(s, self.uiso)


@dataclass
class AmorphousCandidates:
    """Random periodic boxes of ``composition``; candidate keys "n_atoms" and "density" override the defaults."""

    composition: str
    n_atoms: int = 216
    density: float = 0.05
    min_dist: float = 1.8
    uiso: float | None = 0.01

    def __call__(self, candidate: dict, seed: int) -> Structure:
        s = amorphous_box(self.composition, int(candidate.get("n_atoms", self.n_atoms)),
                          float(candidate.get("density", self.density)), min_dist=self.min_dist, seed=seed)
        return _with_uiso(s, self.uiso)


@dataclass
class MoleculeCandidates:
    """Random molecular starts of ``formula``; a candidate key "extra" (e.g. "P", "Si" or "none") adds atoms."""

    formula: str
    min_dist: float = 1.0
    density: float = 0.1
    uiso: float | None = 0.005

    def __call__(self, candidate: dict, seed: int) -> Structure:
        formula = _formula_with_extra(self.formula, candidate)
        return _with_uiso(random_molecule(formula, self.min_dist, self.density, seed=seed), self.uiso)


@dataclass
class SymmetricMoleculeCandidates:
    """Random symmetric starts of ``formula``: candidate keys "group" (a point group, default ``group``), "extra"
    (atoms added to the formula, or "none") and any others (e.g. an integer "start") only vary the random seed,
    so a swarm can ask for many starts of one group."""

    formula: str
    group: str = "T"
    min_dist: float = 1.0
    density: float = 0.1
    uiso: float | None = 0.005

    def __call__(self, candidate: dict, seed: int) -> Structure:
        formula = _formula_with_extra(self.formula, candidate)
        s = random_symmetric_molecule(formula, str(candidate.get("group", self.group)), self.min_dist, self.density,
                                      seed=seed)
        return _with_uiso(s, self.uiso)

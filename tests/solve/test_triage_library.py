"""Triage features on simulated PDFs of known classes, and the structure library's prototypes (their space groups
and the bond length their cells are built from)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.triage import triage
from scatterfit.structure.library import PROTOTYPES, Candidate, candidates
from scatterfit.structure.spacegroup import detect_space_group


def _gr(structure, rmax=50.0, **kwargs):
    r = torch.arange(0.01, rmax, 0.01, dtype=torch.float64)
    g = pdf(structure, r, qmax=25.0, **kwargs).numpy()
    return Dataset(r.numpy(), g, None, "gr", "angstrom")


def test_triage_tells_crystal_particle_and_cluster_apart():
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    crystal = triage(_gr(ni, qdamp=0.02))
    assert crystal.classes[0] == "crystal" and crystal.first_peak == pytest.approx(2.49, abs=0.02)
    assert crystal.extent > 45.0
    particle = triage(_gr(ni, qdamp=0.02, spdiameter=22.0))
    assert particle.classes[0] == "nanoparticle" and particle.particle_diameter == pytest.approx(22.0, abs=3.0)
    from ase.cluster import Icosahedron

    cluster = triage(_gr(Structure.from_ase(Icosahedron("Ni", 2, latticeconstant=3.524))))
    assert cluster.classes[0] == "cluster" and cluster.extent < 12.0
    # on an absolute scale the low-r slope is −4πρ0
    assert -crystal.slope / (4 * np.pi) == pytest.approx(4 / 3.524**3, rel=0.05)
    assert all(isinstance(reason, str) for reason in crystal.reasons) and len(crystal.reasons) == 4


def test_small_particles_may_refine_the_large_adps_of_their_disorder():
    """A particle under SMALL_PARTICLE Å lets every hypothesis refine Biso to DISORDERED_BISO (set on the data by
    the solve, read by each refinement, a hypothesis' own bounds first); a crystal or a larger particle keeps
    BOUNDS."""
    from scatterfit.solve.hypotheses import BOUNDS, DISORDERED_BISO, SMALL_PARTICLE, sample_bounds, with_sample_bounds

    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    small = triage(_gr(ni, qdamp=0.02, spdiameter=20.0))
    assert small.particle_diameter < SMALL_PARTICLE
    assert sample_bounds(small) == {"biso": (BOUNDS["biso"][0], DISORDERED_BISO)}
    assert sample_bounds(triage(_gr(ni, qdamp=0.02, spdiameter=45.0))) == {}
    assert sample_bounds(triage(_gr(ni, qdamp=0.02))) == {}
    data = {"d": Dataset(np.arange(3.0), np.zeros(3), None, "gr", "angstrom",
                         metadata={"bounds": sample_bounds(small)})}
    assert with_sample_bounds({}, data)["biso"][1] == DISORDERED_BISO
    assert with_sample_bounds({"biso": (0.1, 1.0), "positions": 0.3}, data) == {"biso": (0.1, 1.0), "positions": 0.3}


def _amorphous_si_gr(repeats: int = 2) -> Dataset:
    """The G(r) of the bundled amorphous Si model (216 atoms, a continuous random network) repeated ``repeats``³
    times, as a box describes it: pairs to half its length, through Q 0.5–25 Å⁻¹."""
    from scatterfit.scattering.models import BoxScatteringModel
    from scatterfit.structure import read_structure
    from scatterfit.structure.builders import supercell
    from scatterfit.structure.parametrisation import State

    box = supercell(read_structure(Path(__file__).parents[1] / "data" / "a-Si_216.extxyz"), (repeats,) * 3)
    box = box.with_uiso(0.005)
    r = torch.arange(0.5, 30.0, 0.01, dtype=torch.float64)
    g = BoxScatteringModel("gr", qmin=0.5, qmax=25.0)(State(box, {}), r).detach().numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    return Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0, "qmin": 0.5})


def test_triage_tells_a_glass_by_its_smooth_waves():
    """Amorphous Si: a first peak at the Si–Si bond, then smooth damped waves (sharpness well below SHARP), so
    a glass or liquid first; the crystal and the cluster of the test above keep sharp peaks."""
    from scatterfit.solve.triage import SHARP

    glass = triage(_amorphous_si_gr())
    assert glass.classes[0] == "amorphous"
    assert glass.first_peak == pytest.approx(2.36, abs=0.05)
    assert glass.sharpness < 0.5 * SHARP
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    assert triage(_gr(ni, qdamp=0.02)).sharpness > 3 * SHARP
    from ase.cluster import Icosahedron

    assert triage(_gr(Structure.from_ase(Icosahedron("Ni", 3, latticeconstant=3.524)))).sharpness > SHARP


def test_triage_refuses_kinds_it_does_not_read():
    data = Dataset(np.linspace(1, 20, 200), np.ones(200), None, "iq", "inv_angstrom", path="x.iq")
    with pytest.raises(ScatterfitError, match="x.iq: solve reads G\\(r\\) data"):
        triage(data)


@pytest.mark.parametrize("prototype", PROTOTYPES, ids=lambda p: p.name)
def test_prototypes_have_their_space_group_and_bond_length(prototype):
    roles = dict(zip(prototype.formula[0::2], ("Mg", "Al", "O")))
    structure = Candidate(prototype, roles).structure()
    assert detect_space_group(structure)["number"] == prototype.spacegroup
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", structure.to_ase(), 6.0)
    assert d.min() > 0.75 * 1.5  # no atoms on top of each other
    # the cell is in units of the defining pair's distance: its shortest A–X (B–X, A–A) distance is the bond length
    from scatterfit.structure.library import _bond

    names = list(dict.fromkeys(r for r, _ in prototype.sites))
    pair = ("A", "A") if len(names) == 1 else (("B", "X") if "B" in names else ("A", "X"))
    z = structure.numbers.numpy()
    from ase.data import atomic_numbers

    want = {atomic_numbers[roles[pair[0]]], atomic_numbers[roles[pair[1]]]}
    between = (z[i] != z[j]) if len(want) == 2 else (z[i] == z[j])
    between &= np.isin(z[i], list(want)) & np.isin(z[j], list(want))
    assert d[between].min() == pytest.approx(_bond(roles[pair[0]], roles[pair[1]]), rel=0.02)


def test_candidates_follow_the_composition():
    options = candidates("TiO2")
    labels = {c.label for c in options}
    assert {"fluorite TiO2", "rutile TiO2", "anatase TiO2", "cadmium iodide TiO2", "pyrite TiO2",
            "molybdenite TiO2", "aluminium diboride TiO2"} <= labels
    assert len(options) > 40  # and the AFLOW library's AB2 types, each with its source
    for c in options:
        s = c.structure()
        z = s.numbers.numpy()
        assert np.sum(z == 8) == 2 * np.sum(z == 22), c.label
        assert c.prototype.bonds == ("Mehl et al." in c.prototype.source), c.label
    assert len({c.key() for c in options}) == len(options)
    assert not [label for label in labels if "_tP6_136_" in label]  # AFLOW's rutile is the hand-written one
    assert "fluorite OLi2" in {c.label for c in candidates("Li2O")}  # antifluorite: fluorite's roles exchanged
    assert {c.label for c in candidates("NaCl")} >= {"rock salt NaCl", "cesium chloride NaCl", "zinc blende NaCl"}
    mixed = {c.label for c in candidates("Si Ni")}  # elements only: binaries both ways, and the elements' own
    assert {"diamond Si", "fcc Ni", "rock salt SiNi"} <= mixed
    ternary = {c.label for c in candidates("SrTiO3")}
    assert {"perovskite SrTiO3", "perovskite TiSrO3", "calcite SrTiO3", "calcite TiSrO3"} <= ternary
    assert not [label for label in ternary if "_cP5_221_" in label]  # AFLOW's cubic perovskite: the same type
    rock_salt = next(c for c in candidates("NaCl") if c.prototype.name == "rock salt").structure()
    a = float(rock_salt.cell[0, 0])
    from ase.data import covalent_radii

    assert a == pytest.approx(2 * (covalent_radii[11] + covalent_radii[17]), rel=1e-9)
    with pytest.raises(ScatterfitError, match="unknown element 'Xx'"):
        candidates("Xx2O")


def test_the_aflow_library_is_rebuilt_with_its_sources_and_bond_lengths():
    """All 288 types of the AFLOW library (part 1) are rebuilt by ASE in its default setting, with the example
    compound's reference; a substituted type gets the expected bond length where it has one kind of bond."""
    from scatterfit.structure.aflow import aflow_types
    from scatterfit.structure.library import _bond

    types = aflow_types()
    assert len(types) == 288
    cinnabar = next(t for t in types if t["name"].startswith("Cinnabar"))
    assert cinnabar["spacegroup"] == 154 and "Auvray" in cinnabar["source"] and "B9" in cinnabar["source"]
    (hgs,) = [c for c in candidates("CdSe") if c.label.startswith("Cinnabar") and c.roles == {"A": "Cd", "B": "Se"}]
    s = hgs.structure()
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", s.to_ase(), 4.0)
    z = s.numbers.numpy()
    assert d[z[i] != z[j]].min() == pytest.approx(_bond("Cd", "Se"), rel=1e-6)


def test_the_screen_puts_the_right_type_first_and_finds_its_cell():
    """A rutile TiO2 PDF whose cell is 7 % larger than the bond-length estimate, with c/a off by 3 %: among the
    library's 59 AB2 types the short-range screen ranks rutile first, at a cell factor near 1.07, and keeps it."""
    import torch

    from scatterfit.io import Dataset
    from scatterfit.scattering.pdf import pdf
    from scatterfit.solve.screen import screen

    options = candidates("TiO2")
    (rutile,) = [c for c in options if c.label == "rutile TiO2"]
    s = rutile.structure().with_uiso(0.006)
    stretch = torch.diag(torch.tensor([1.07, 1.07, 1.07 * 1.03], dtype=torch.float64))
    s = s.with_(positions=s.positions @ stretch, cell=s.cell @ stretch)
    r = torch.arange(1.0, 20.0, 0.01, dtype=torch.float64)
    g = pdf(s, r, qmax=24.0, qdamp=0.03).numpy()
    rows = screen(options, {"d": Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 24.0})}, None)
    assert rows[0].label == "rutile TiO2" and rows[0].kept
    assert rows[0].factor == pytest.approx(1.08, abs=0.015)
    fluorite = next(row for row in rows if row.label == "fluorite TiO2")
    assert rows[0].rw < 0.5 * fluorite.rw  # a different type; the runner-up is CaCl2's, a distorted rutile
    assert sum(row.kept for row in rows) <= 8


def test_aflow_names_have_their_latex_written_out():
    from scatterfit.structure.aflow import plain_text
    from scatterfit.structure.library import prototypes

    assert plain_text("Lavarevi\\'{c}ite") == "Lavarevićite"
    assert plain_text("Frank-Kasper $\\mu$ Phase") == "Frank-Kasper μ Phase"
    assert plain_text('Sch\\"{o}nfliesite') == "Schönfliesite"
    assert not [p.name for p in prototypes() if any(c in p.name for c in "\\{}$")]

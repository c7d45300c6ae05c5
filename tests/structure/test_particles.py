"""Faceted particles of any crystal (structure/particles.py): the shapes against ASE's cluster builders, and the
termination and stoichiometry choices on binaries."""

import numpy as np
import pytest
from ase.build import bulk
from ase.cluster import Octahedron

from scatterfit.errors import ScatterfitError
from scatterfit.structure import Structure
from scatterfit.structure.particles import cut_particle


def _distances(structure_or_positions) -> np.ndarray:
    p = np.asarray(getattr(structure_or_positions, "positions", structure_or_positions))
    p = p.numpy() if hasattr(p, "numpy") else p
    return np.sort(np.linalg.norm(p, axis=1))


@pytest.mark.parametrize("shape, length, cutoff", [("octahedron", 5, 0), ("octahedron", 8, 0),
                                                   ("cuboctahedron", 7, 3), ("truncated_octahedron", 7, 2)])
def test_fcc_shapes_match_ase_clusters(shape, length, cutoff):
    """The Wulff-type cut of fcc Au by {111} (and {100}) planes gives ASE's Octahedron(length, cutoff) atom for
    atom (the same distances from the centre), atom-centred (odd lengths) or centred on an octahedral hole
    (even lengths)."""
    a = 4.08
    reference = Octahedron("Au", length, cutoff, latticeconstant=a)
    positions = reference.positions - reference.positions.mean(0)
    crystal = Structure.from_ase(bulk("Au", "fcc", a=a, cubic=True))
    if shape == "cuboctahedron":
        diameter = 2 * np.abs(positions).max()  # its {100} distance
    else:
        diameter = 2 * np.abs(positions).sum(1).max() / np.sqrt(3)  # its {111} distance
    centre = "atom" if np.linalg.norm(positions, axis=1).min() < 1e-6 else "cell"
    particle = cut_particle(crystal, diameter, shape=shape, centre=centre)
    assert len(particle) == len(reference)
    np.testing.assert_allclose(_distances(particle), _distances(positions), atol=1e-9)


def test_cube_of_rock_salt_and_its_terminations():
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    on_na = cut_particle(nacl, 11.28, shape="cube", centre="Na")  # 5 × 5 × 5 atoms, corners Na
    on_cl = cut_particle(nacl, 11.28, shape="cube", centre="Cl")
    assert len(on_na) == len(on_cl) == 125
    assert on_na.symbols.count("Na") == 63 and on_cl.symbols.count("Cl") == 63
    assert float(on_na.positions.abs().max()) == pytest.approx(5.64, abs=1e-9)
    trimmed = cut_particle(nacl, 11.28, shape="cube", centre="Na", stoichiometric=True)
    assert trimmed.symbols.count("Na") == trimmed.symbols.count("Cl") == 62
    removed = set(map(tuple, np.round(on_na.positions.numpy(), 6))) - set(map(tuple, np.round(
        trimmed.positions.numpy(), 6)))
    assert len(removed) == 1 and np.allclose(np.abs(list(removed)[0]), 5.64)  # a corner: the least coordinated


def test_wurtzite_prism_stoichiometry_and_termination():
    cdse = Structure.from_ase(bulk("CdSe", "wurtzite", a=4.30, c=7.01, u=0.375))
    tall = cut_particle(cdse, 30.0, shape="hexagonal_prism", aspect=1.5)
    extent = np.ptp(tall.positions.numpy(), axis=0)
    assert extent[2] == pytest.approx(45.0, abs=7.01)  # the height along c, to within a cell
    assert extent[0] == pytest.approx(30.0 * 2 / np.sqrt(3), abs=4.3)  # corner to corner across the hexagon
    prism = cut_particle(cdse, 30.0, shape="hexagonal_prism")
    even = cut_particle(cdse, 30.0, shape="hexagonal_prism", stoichiometric=True)
    assert even.symbols.count("Cd") == even.symbols.count("Se")
    se_ended = cut_particle(cdse, 30.0, shape="hexagonal_prism", termination="Se")
    from scipy.spatial import cKDTree

    xyz = se_ended.positions.numpy()
    pairs = cKDTree(xyz).query_pairs(1.2 * 2.63, output_type="ndarray")
    coordination = np.bincount(pairs.reshape(-1), minlength=len(xyz))
    cd = np.array(se_ended.symbols) == "Cd"
    assert coordination[cd].min() >= 2  # no dangling Cd left on the surface
    assert se_ended.symbols.count("Se") == prism.symbols.count("Se")  # only Cd atoms were taken away
    assert se_ended.symbols.count("Cd") < prism.symbols.count("Cd")


def test_particle_errors_are_one_line():
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    with pytest.raises(ScatterfitError, match="unknown particle shape 'star'"):
        cut_particle(nacl, 10.0, shape="star")
    with pytest.raises(ScatterfitError, match="unknown particle centre 'Au'"):
        cut_particle(nacl, 10.0, centre="Au")
    with pytest.raises(ScatterfitError, match="termination 'O' is not an element"):
        cut_particle(nacl, 10.0, termination="O")
    with pytest.raises(ScatterfitError, match="aspect must be positive"):
        cut_particle(nacl, 10.0, shape="hexagonal_prism", aspect=0.0)

"""Structure builders and atom-set moves."""

import math

import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.builders import SHAPES, amorphous_box, magic_size, nanoparticle, random_molecule, supercell
from scatterfit.structure.moves import (
    add_atom,
    change_composition,
    emptiest_site,
    removal_scores,
    remove_atoms,
    swap_species,
)
from scatterfit.structure.parametrisation import State


def _min_distance(s: Structure) -> float:
    from scatterfit.structure.neighbours import neighbours, pair_distances

    nb = neighbours(s, 6.0)
    return float(pair_distances(s, nb).min())


def test_nanoparticle_families_have_their_magic_numbers_and_bulk_spacing():
    expected = {"cuboctahedron": [13, 55, 147, 309], "icosahedron": [13, 55, 147, 309],
                "decahedron": [13, 55, 147, 309], "octahedron": [6, 19, 44, 85],
                "truncated_octahedron": [38, 201, 586, 1289], "sphere": [19, 87, 249, 555]}
    for shape in SHAPES:
        sizes = [len(nanoparticle("Au", shape, n)) for n in (1, 2, 3, 4)]
        assert sizes == expected[shape], shape
        assert [magic_size(shape, n) for n in (1, 2, 3, 4)] == sizes
    cubo = nanoparticle("Pt", "cuboctahedron", 3, nn_distance=2.775)
    assert _min_distance(cubo) == pytest.approx(2.775, abs=1e-6)
    assert cubo.cell is None and float(cubo.positions.mean(0).abs().max()) < 1e-9
    with pytest.raises(ScatterfitError, match="unknown shape"):
        nanoparticle("Au", "torus", 2)


def test_amorphous_box_composition_density_and_minimum_distance():
    s = amorphous_box("SiO2", 648, 0.0664, min_dist=1.5, seed=2)
    assert len(s) == 648 and int((s.numbers == 14).sum()) == 216
    assert float(len(s) / s.volume) == pytest.approx(0.0664, rel=1e-9)
    assert _min_distance(s) >= 1.5
    with pytest.raises(ScatterfitError, match="packs spheres"):
        amorphous_box("Si", 100, 0.1, min_dist=2.5)


def test_random_molecule_and_supercell():
    m = random_molecule("W12O40P", min_dist=1.5, density=0.05, seed=1)
    assert len(m) == 53 and m.cell is None and _min_distance(m) >= 1.5
    assert sorted(set(m.symbols)) == ["O", "P", "W"]
    big = supercell(Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64)), (2, 3, 1))
    assert len(big) == 12
    with pytest.raises(ScatterfitError, match="unknown element 'Xy'"):
        random_molecule("Xy3")
    with pytest.raises(ScatterfitError, match="formula"):
        random_molecule("C6(")


def test_add_atom_fills_a_vacancy_and_respects_the_minimum_distance():
    full = Structure.from_ase(bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3))
    keep = torch.ones(len(full), dtype=torch.bool)
    keep[40] = False
    vacant = full.with_(positions=full.positions[keep], numbers=full.numbers[keep], occupancy=full.occupancy[keep],
                        biso=full.biso[keep], charges=full.charges[keep])
    site, gap = emptiest_site(vacant, seed=0, trials=20000)
    assert gap > 2.3  # the vacancy (nearest-neighbour distance 2.55 Å)
    filled = add_atom(vacant, "Cu", min_dist=2.0, seed=0)
    assert len(filled) == len(full) and _min_distance(filled) > 2.0
    with pytest.raises(ScatterfitError, match="no empty site"):
        add_atom(full, "Cu", min_dist=2.0)


def test_removal_scores_find_the_spurious_atom():
    truth = nanoparticle("Au", "cuboctahedron", 2)
    r = torch.arange(1.5, 12.0, 0.02, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qmax=25.0).numpy(), None, "gr", "angstrom")
    extra = torch.tensor([[0.0, 0.0, 1.6]], dtype=torch.float64)  # 1.6 Å from the central atom
    wrong = truth.with_(positions=torch.cat([truth.positions, extra]), numbers=torch.cat([truth.numbers,
                        torch.tensor([79])]), occupancy=torch.ones(56, dtype=torch.float64),
                        biso=torch.cat([truth.biso, truth.biso[:1]]), charges=torch.zeros(56))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    scores = removal_scores(lambda s: loss(State(s, {"background": None})), wrong)
    assert int(torch.argmax(scores)) == 55
    cleaned = remove_atoms(wrong, scores, 1)
    assert len(cleaned) == 55 and float(loss(State(cleaned, {"background": None}))) < 1e-6


def test_swap_and_composition_moves_keep_the_structure_valid():
    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    swapped = swap_species(s, seed=0)
    assert sorted(swapped.numbers.tolist()) == sorted(s.numbers.tolist())
    assert (swapped.numbers != s.numbers).sum() == 2
    changed = change_composition(s, "Na", "K", count=2, seed=0, bounds=(0.0, 0.3))
    assert int((changed.numbers == 19).sum()) == 2
    with pytest.raises(ScatterfitError, match="outside"):
        change_composition(s, "Na", "K", count=3, bounds=(0.0, 0.3))


def test_spheres_cut_from_any_crystal():
    """Wurtzite CdSe and rock salt: the atom count follows the bulk density, both species are kept near their
    ratio, and "centre" chooses the termination."""
    from ase.build import bulk as ase_bulk

    from scatterfit.structure.particles import cut_particle

    cdse = Structure.from_ase(ase_bulk("CdSe", "wurtzite", a=4.30, c=7.01, u=0.375))
    particle = cut_particle(cdse, 40.0)
    density = len(cdse) / float(cdse.volume)
    assert len(particle) == pytest.approx(density * math.pi / 6 * 40.0**3, rel=0.03)
    assert particle.symbols.count("Cd") / particle.symbols.count("Se") == pytest.approx(1.0, abs=0.06)
    assert float(particle.positions.norm(dim=1).max()) <= 20.0 + 1e-9
    nacl = Structure.from_ase(ase_bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    on_atom, on_cell = cut_particle(nacl, 12.0), cut_particle(nacl, 12.0, centre="cell")
    assert on_atom.symbols != on_cell.symbols or len(on_atom) != len(on_cell)
    with pytest.raises(ScatterfitError, match="periodic crystal"):
        cut_particle(particle, 10.0)
    with pytest.raises(ScatterfitError, match="diameter must be positive"):
        cut_particle(cdse, -1.0)

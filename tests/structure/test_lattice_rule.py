""""lattice" refines the cell parameters the crystal system leaves free: c/a of a tetragonal or hexagonal cell,
the monoclinic angle, and one isotropic scale where there is no symmetry (an amorphous box)."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.geometry import cellpar_to_cell

from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import Stage, refine
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import Structure
from scatterfit.structure.parametrisation import Parametrisation
from scatterfit.structure.spacegroup import lattice_rule
from scatterfit.testing import random_box


def _with_cell(atoms, cellpar):
    atoms = atoms.copy()
    atoms.set_cell(cellpar_to_cell(cellpar), scale_atoms=True)
    return Structure.from_ase(atoms)


def _refine_lattice(truth, start, rmax=10.0):
    r = torch.arange(1.5, rmax, 0.02, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    param = Parametrisation(start, free=["lattice"], values={"qdamp": 0.02})
    result = refine(Loss([DataTerm(PDFModel(), data)]), param,
                    [Stage("lbfgs", steps=150, xmax=6.0), Stage("lbfgs", steps=150, tol=1e-14)])
    return param, result.parameters()


def test_rules_by_crystal_system():
    assert lattice_rule(Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True))).size == 1
    assert lattice_rule(Structure.from_ase(bulk("Ni", "fcc", a=3.52))).system == "isotropic"  # primitive cell
    hcp = lattice_rule(Structure.from_ase(bulk("Mg", "hcp", a=3.21, c=5.21)))
    assert (hcp.system, hcp.size) == ("hexagonal", 2)
    tetragonal = _with_cell(bulk("NaCl", "rocksalt", a=5.64, cubic=True), [5.6, 5.6, 5.9, 90, 90, 90])
    assert (lattice_rule(tetragonal).system, lattice_rule(tetragonal).size) == ("tetragonal", 2)
    assert lattice_rule(random_box(20, 0.05, seed=1)).system == "isotropic"


def test_a_tetragonal_cell_refines_a_and_c():
    """Before, "lattice" scaled the cell isotropically and kept c/a: a tetragonal c/a could not be refined."""
    rocksalt = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    truth = _with_cell(rocksalt, [5.60, 5.60, 5.85, 90, 90, 90])
    param, p = _refine_lattice(truth, _with_cell(rocksalt, [5.65, 5.65, 5.70, 90, 90, 90]))
    assert p["crystal_system"] == "tetragonal" and param.shapes["lattice"] == (2,)
    assert [p["a"], p["b"], p["c"]] == pytest.approx([5.60, 5.60, 5.85], abs=1e-4)
    assert [p["alpha"], p["beta"], p["gamma"]] == pytest.approx([90, 90, 90], abs=1e-9)


def test_a_hexagonal_cell_keeps_its_angles():
    truth = Structure.from_ase(bulk("Mg", "hcp", a=3.21, c=5.21))
    start = Structure.from_ase(bulk("Mg", "hcp", a=3.25, c=5.10))
    _, p = _refine_lattice(truth, start)
    assert [p["a"], p["c"]] == pytest.approx([3.21, 5.21], abs=1e-4)
    assert p["gamma"] == pytest.approx(120.0, abs=1e-9) and p["b"] == pytest.approx(p["a"], abs=1e-12)


def test_a_declared_monoclinic_cell_refines_its_angle(tmp_path):
    from scatterfit.structure import read_structure

    cif = """data_m
_cell_length_a 5.0
_cell_length_b 6.0
_cell_length_c 7.0
_cell_angle_alpha 90
_cell_angle_beta {beta}
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 21/c'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Zn1 Zn 0.1 0.2 0.3 0.005
O1 O 0.35 0.1 0.15 0.008
"""
    (tmp_path / "truth.cif").write_text(cif.format(beta=104.0))
    (tmp_path / "start.cif").write_text(cif.format(beta=103.0))
    truth, start = read_structure(tmp_path / "truth.cif"), read_structure(tmp_path / "start.cif")
    assert start.space_group == 14 and lattice_rule(start).size == 4
    _, p = _refine_lattice(truth, start, rmax=8.0)
    assert p["beta"] == pytest.approx(104.0, abs=1e-3)
    assert [p["alpha"], p["gamma"]] == pytest.approx([90.0, 90.0], abs=1e-9)
    assert [p["a"], p["b"], p["c"]] == pytest.approx([5.0, 6.0, 7.0], abs=1e-3)


def test_an_amorphous_box_keeps_one_isotropic_scale():
    box = random_box(24, 0.05, seed=2)
    param = Parametrisation(box, free=["lattice"])
    theta = param.initial_vector() + 0.3
    cell = param.state(theta).structure.cell
    ratio = (cell / box.cell)[torch.eye(3, dtype=torch.bool)]
    assert param.shapes["lattice"] == (1,) and float(ratio.std()) < 1e-12 and not math.isclose(float(ratio[0]), 1.0)


def _rutile(x):
    from ase.spacegroup import crystal

    atoms = crystal(["Ti", "O"], basis=[(0, 0, 0), (x, x, 0)], spacegroup=136,
                    cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    return Structure.from_ase(atoms)


def test_fractional_refines_only_the_free_wyckoff_coordinates():
    """Rutile: Ti on 2a has no free coordinate, O on 4f (x, x, 0) one. From x = 0.300 the refinement finds the
    truth's 0.305 and the structure stays P4_2/mnm; before, "fractional" moved every atom freely."""
    from scatterfit.structure.spacegroup import detect_space_group, wyckoff_basis

    truth, start = _rutile(0.305), _rutile(0.300)
    assert wyckoff_basis(start).shape == (3 * len(start), 1)
    r = torch.arange(1.5, 10.0, 0.02, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    param = Parametrisation(start, free=["fractional"], values={"qdamp": 0.02})
    result = refine(Loss([DataTerm(PDFModel(), data)]), param, Stage("lbfgs", steps=200, tol=1e-14))
    final = result.structure
    frac = final.positions.detach().numpy() @ np.linalg.inv(final.cell.detach().numpy())
    oxygen = np.sort(frac[final.numbers.numpy() == 8][:, 0] % 1.0)
    expected = np.sort(np.array([0.305, 1 - 0.305, 0.5 + 0.305, 0.5 - 0.305]))  # x of (x,x,0) and its images
    np.testing.assert_allclose(oxygen, expected, atol=1e-4)
    assert detect_space_group(final)["number"] == 136
    assert result.terms["data:gr"].breakdown["rw"] < 1e-3


def test_fractional_without_symmetry_moves_every_atom():
    box = random_box(10, 0.05, seed=3)
    param = Parametrisation(box, free=["fractional"])
    assert param.shapes["fractional"] == (10, 3)


def test_a_shared_site_moves_as_one():
    """O 0.5 / F 0.5 on rutile's 4f site: one free coordinate, and the two species of a site move together."""
    from scatterfit.structure.spacegroup import wyckoff_basis

    rutile = _rutile(0.300)
    o = rutile.numbers == 8
    mixed = rutile.with_(positions=torch.cat([rutile.positions, rutile.positions[o]]),
                         numbers=torch.cat([rutile.numbers, torch.full((int(o.sum()),), 9)]),
                         occupancy=torch.cat([torch.where(o, 0.5, 1.0).double(), torch.full((int(o.sum()),), 0.5,
                                                                                             dtype=torch.float64)]),
                         biso=torch.cat([rutile.biso, rutile.biso[o]]), charges=torch.cat([rutile.charges,
                                                                                         rutile.charges[o]]))
    basis = wyckoff_basis(mixed).reshape(len(mixed), 3, -1)
    assert basis.shape[-1] == 1
    n = len(rutile)
    np.testing.assert_allclose(basis[n:], basis[:n][o.numpy()], atol=1e-12)


def _perovskite(la_fraction, o_occupancy=1.0):
    """A-site La/Ba (shared) perovskite ABO3 in P m -3 m, Co on B, O on 3d."""
    from ase.spacegroup import crystal

    atoms = crystal(["La", "Co", "O"], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)], spacegroup=221,
                    cellpar=[3.89, 3.89, 3.89, 90, 90, 90])
    s = Structure.from_ase(atoms).with_uiso(0.006)
    la = s.numbers == 57
    occupancy = torch.where(la, la_fraction, 1.0).double()
    occupancy = torch.where(s.numbers == 8, o_occupancy, occupancy).double()
    return s.with_(positions=torch.cat([s.positions, s.positions[la]]),
                   numbers=torch.cat([s.numbers, torch.full((int(la.sum()),), 56)]),
                   occupancy=torch.cat([occupancy, torch.full((int(la.sum()),), 1 - la_fraction,
                                                              dtype=torch.float64)]),
                   biso=torch.cat([s.biso, s.biso[la]]), charges=torch.cat([s.charges, s.charges[la]]))


def test_occupancies_of_a_shared_site_sum_to_one_and_vacancies_refine():
    """Neutron PDF of La0.7Ba0.3CoO2.85 refined from La0.5Ba0.5CoO3 on the absolute scale (with a free scale the
    site strengths are known only relative to each other, and a family of occupancies fits exactly): the A-site
    fraction and the O occupancy come back; the A site stays full (La + Ba = 1), and the three O of the cell share
    one parameter."""
    truth, start = _perovskite(0.7, 0.95), _perovskite(0.5, 1.0)
    r = torch.arange(1.5, 12.0, 0.01, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02, radiation="neutron").numpy(), None, "gr", "angstrom")
    param = Parametrisation(start, free=["occupancy"], values={"qdamp": 0.02})
    assert param.shapes["occupancy"] == (3,)  # A-site fraction, Co, O
    result = refine(Loss([DataTerm(PDFModel(radiation="neutron"), data, fit_scale=False)]), param,
                    Stage("lbfgs", steps=300, tol=1e-15))
    p = result.parameters()
    assert p["occupancy[Ba/La#0]"] == pytest.approx(0.3, abs=2e-3)  # Ba's fraction (species in Z order)
    occ, z = result.structure.occupancy.detach(), result.structure.numbers
    assert float(occ[z == 57][0] + occ[z == 56][0]) == pytest.approx(1.0, abs=1e-12)
    assert len(set(occ[z == 8].tolist())) == 1  # exactly one value for the three O (std() rounds)
    assert float(occ[z == 8][0]) == pytest.approx(0.95, abs=2e-3) and float(occ[z == 27][0]) == pytest.approx(
        1.0, abs=2e-3)

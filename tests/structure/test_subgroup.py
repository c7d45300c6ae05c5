"""Lowering a crystal to a chosen subgroup (structure/subgroup.py) and the declared operations that carry it
(Structure.operations): the same crystal in the subgroup's cell, its free parameters, and a CIF round trip."""

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import read_structure
from scatterfit.structure.cif import write_cif
from scatterfit.structure.spacegroup import _site_symmetry, detect_space_group, lattice_rule, site_orbits, wyckoff_basis
from scatterfit.structure.subgroup import lower_symmetry, space_group_number

CUBIC_PEROVSKITE = """data_SrTiO3
_symmetry_space_group_name_H-M 'P m -3 m'
_cell_length_a 3.905
_cell_length_b 3.905
_cell_length_c 3.905
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Sr Sr 0 0 0 0.008
Ti Ti 0.5 0.5 0.5 0.005
O O 0.5 0.5 0 0.010
"""


@pytest.fixture
def perovskite(tmp_path):
    path = tmp_path / "srtio3.cif"
    path.write_text(CUBIC_PEROVSKITE)
    return read_structure(path)


@pytest.fixture
def srfe2as2():
    from conftest import cmi_file

    return read_structure(cmi_file("pdf/ch07StructuralPhaseTransitions/data/SrFe2As2_tetragonal.cif"))


def _gr(structure):
    r = torch.linspace(1.5, 12.0, 526, dtype=torch.float64)
    return pdf(structure, r, qdamp=0.03)


def test_tetragonal_to_fmmm_is_the_same_crystal_with_orthorhombic_freedom(srfe2as2):
    lowered = lower_symmetry(srfe2as2, "Fmmm", nudge=0.0)
    assert len(lowered) == 2 * len(srfe2as2)  # the F cell √2a × √2a × c holds twice the I cell
    lengths = np.linalg.norm(lowered.cell.numpy(), axis=1)
    a = float(np.linalg.norm(srfe2as2.cell.numpy()[0]))
    np.testing.assert_allclose(lengths, [a * 2**0.5, a * 2**0.5, 12.37], rtol=1e-12)
    assert float((lowered.number_density() - srfe2as2.number_density()).abs()) < 1e-12
    g0, g1 = _gr(srfe2as2), _gr(lowered)
    assert float((g1 - g0).abs().max()) < 1e-9 * float(g0.abs().max())  # an exact re-description
    assert detect_space_group(lowered) == {"number": 69, "symbol": "Fmmm", "operations": 32}
    assert detect_space_group(srfe2as2)["number"] == 139
    rule = lattice_rule(lowered)
    assert rule.system == "orthorhombic" and rule.size == 3  # a and b apart (the I4/mmm cell ties them)
    assert lattice_rule(srfe2as2).size == 2
    assert wyckoff_basis(lowered).shape[1] == 1  # the z of As, as in I4/mmm
    assert site_orbits(lowered)[1] == ("Sr#0", "Fe#1", "As#2")
    # without the declared group the atoms still have the parent's symmetry: spglib finds I4/mmm in the F cell
    assert int(_site_symmetry(lowered, 1e-3, declared=False)[0].number) == 139


@pytest.mark.parametrize("target, number", [("I4_1/amd", 141), ("R-3m", 166), ("F-43m", 216), ("F4_132", 210)])
def test_diamond_with_its_atoms_at_the_origin_lowers_to_its_subgroups(target, number):
    """Diamond Si as the library writes it (atoms at 0,0,0: Fd-3m's origin choice 1, spglib's default) lowers to
    its maximal subgroups, whose Bilbao transformations are for origin choice 2 (before, every one but Fd-3 was
    refused: no subgroup setting held), as the same crystal."""
    from scatterfit.structure.library import candidates

    (c,) = [c for c in candidates("Si") if c.label == "diamond Si"]
    si = c.structure()
    lowered = lower_symmetry(si, target, nudge=0.0)
    assert lowered.space_group == number
    assert float((lowered.number_density() - si.number_density()).abs()) < 1e-12
    g0, g1 = _gr(si), _gr(lowered)
    assert float((g1 - g0).abs().max()) < 1e-9 * float(g0.abs().max())


def test_cubic_perovskite_to_pnma_frees_the_tilt_coordinates(perovskite):
    lowered = lower_symmetry(perovskite, "Pnma", nudge=0.0)
    assert len(lowered) == 4 * len(perovskite)  # √2a × 2a × √2a
    np.testing.assert_allclose(sorted(np.linalg.norm(lowered.cell.numpy(), axis=1)),
                               sorted([3.905 * 2**0.5, 2 * 3.905, 3.905 * 2**0.5]), rtol=1e-12)
    g0, g1 = _gr(perovskite), _gr(lowered)
    assert float((g1 - g0).abs().max()) < 1e-9 * float(g0.abs().max())
    # Pnma perovskite: A on 4c (x, z), B on 4b (none), O1 on 4c (x, z), O2 on 8d (x, y, z)
    assert wyckoff_basis(lowered).shape[1] == 7
    assert wyckoff_basis(perovskite) is None or wyckoff_basis(perovskite).shape[1] == 0
    assert lattice_rule(lowered).size == 3
    labels = site_orbits(lowered)[1]
    assert len(labels) == 4 and sum(label.startswith("O#") for label in labels) == 2  # apical and equatorial O


@pytest.mark.parametrize("target, free", [(140, 1), ("R-3c", 1), ("P4mm", 4)])
def test_other_perovskite_subgroups(perovskite, target, free):
    lowered = lower_symmetry(perovskite, target, nudge=0.0)
    assert detect_space_group(lowered)["number"] == space_group_number(target)
    assert wyckoff_basis(lowered).shape[1] == free


def test_nudge_moves_the_start_inside_the_subgroup_only(srfe2as2):
    lowered = lower_symmetry(srfe2as2, 69, nudge=1e-3)
    lengths = np.linalg.norm(lowered.cell.numpy(), axis=1)
    assert abs(lengths[0] / lengths[1] - 1.0) > 1e-3  # a ≠ b: off the tetragonal stationary point
    # the atoms alone now have exactly Fmmm, not more
    assert int(_site_symmetry(lowered, 1e-4, declared=False)[0].number) == 69


def test_declared_group_survives_a_cif_round_trip(perovskite, tmp_path):
    """A Pnma cell whose atoms still sit on their cubic places keeps Pnma through write → read: the CIF's own
    operations are declared, so the 7 free coordinates survive (spglib alone would find the higher symmetry)."""
    gemmi = pytest.importorskip("gemmi")
    lowered = lower_symmetry(perovskite, "Pnma", nudge=0.0)
    write_cif(lowered, tmp_path / "pnma.cif")
    back = read_structure(tmp_path / "pnma.cif")
    assert back.space_group == 62 and len(back) == len(lowered)
    assert wyckoff_basis(back).shape[1] == 7
    small = gemmi.read_small_structure(str(tmp_path / "pnma.cif"))
    assert small.spacegroup.number == 62 and len(small.symops) == 8
    assert len(small.get_all_unit_cell_sites()) == len(lowered)


def test_operations_that_no_longer_hold_give_way_to_spglib(srfe2as2):
    lowered = lower_symmetry(srfe2as2, "Fmmm", nudge=0.0)
    moved = lowered.positions.clone()
    moved[0] += torch.tensor([0.05, 0.0, 0.0], dtype=moved.dtype)  # breaks Fmmm: a P1-like refinement result
    broken = lowered.with_(positions=moved)
    assert detect_space_group(broken)["number"] < 69


def test_bad_targets_are_one_line_errors(srfe2as2, perovskite):
    with pytest.raises(ScatterfitError, match="not a subgroup"):
        lower_symmetry(srfe2as2, "Pm-3m")
    with pytest.raises(ScatterfitError, match="unknown space group symbol 'Pxyz'"):
        lower_symmetry(srfe2as2, "Pxyz")
    with pytest.raises(ScatterfitError, match="no space group number 300"):
        lower_symmetry(srfe2as2, 300)
    with pytest.raises(ScatterfitError, match="periodic"):
        lower_symmetry(perovskite.with_(cell=None, pbc=(False, False, False)), "Pnma")


def test_config_subgroup_key(tmp_path):
    from conftest import cmi_file
    from scatterfit.config import load_config
    from scatterfit.config.builders import build_structure

    cif = cmi_file("pdf/ch07StructuralPhaseTransitions/data/SrFe2As2_tetragonal.cif")
    path = tmp_path / "c.toml"
    body = '[[datasets]]\nname = "d"\nfile = "{gr}"\n[[terms]]\ndataset = "d"\n[parameters]\nfree = ["lattice"]\n'
    gr = cmi_file("pdf/ch07StructuralPhaseTransitions/data/SrFe2As2_150K.gr")
    path.write_text(f'[structure]\nfile = "{cif}"\nsubgroup = "Fmmm"\n' + body.format(gr=gr))
    structure = build_structure(load_config(path))
    assert structure.space_group == 69 and len(structure) == 20
    path.write_text(f'[structure]\nfile = "{cif}"\nsubgroup = "P6/mmm"\n' + body.format(gr=gr))
    with pytest.raises(ScatterfitError, match=r"c.toml: \[structure\].subgroup: space group 191 is not a subgroup"):
        build_structure(load_config(path))
    path.write_text(f'[structure]\nfile = "{cif}"\nsubgroup = 1.5\n' + body.format(gr=gr))
    with pytest.raises(ScatterfitError, match="subgroup: must be a space-group number or symbol"):
        load_config(path)

"""CIF in and out: displacement parameters in every spelling, sites shared by several species, charges, the
space group's expansion, and a round trip that an independent reader (gemmi) agrees with. CIFs are generated
here."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from scatterfit import ScatterfitError
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import read_structure
from scatterfit.structure.cif import write_cif

HEADER = """data_test
_cell_length_a {a}
_cell_length_b {b}
_cell_length_c {c}
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma {gamma}
_symmetry_space_group_name_H-M '{group}'
"""


def _cif(tmp_path, name, sites: str, columns: str, *, a=3.6, b=None, c=None, gamma=90, group="F m -3 m",
         extra=""):
    text = HEADER.format(a=a, b=b or a, c=c or a, gamma=gamma, group=group) + "loop_\n" + columns + sites + extra
    path = tmp_path / name
    path.write_text(text)
    return path


NI_COLUMNS = "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"


@pytest.mark.parametrize("column, value, uiso", [("_atom_site_B_iso_or_equiv", "0.1", 0.1 / (8 * math.pi**2)),
                                                 ("_atom_site_B_iso_or_equiv", "2.0", 2.0 / (8 * math.pi**2)),
                                                 ("_atom_site_U_iso_or_equiv", "0.02(1)", 0.02)])
def test_displacement_parameters_are_read(tmp_path, column, value, uiso):
    path = _cif(tmp_path, "ni.cif", f"Ni1 Ni 0 0 0 {value}\n", NI_COLUMNS + column + "\n")
    s = read_structure(path)
    assert len(s) == 4  # F m -3 m expands the one site to the four of the cell
    np.testing.assert_allclose(s.uiso.numpy(), uiso, rtol=1e-12)


def test_different_displacements_give_different_pdfs(tmp_path):
    """The defect this replaces: B 0.1, B 2.0 and U 0.02 gave byte-identical G(r)."""
    r = torch.arange(1.5, 10.0, 0.01, dtype=torch.float64)
    curves = [pdf(read_structure(_cif(tmp_path, f"{k}.cif", f"Ni1 Ni 0 0 0 {v}\n", NI_COLUMNS + col + "\n")), r)
              for k, (col, v) in enumerate([("_atom_site_B_iso_or_equiv", "0.1"), ("_atom_site_B_iso_or_equiv", "2.0"),
                                            ("_atom_site_U_iso_or_equiv", "0.02")])]
    assert float((curves[0] - curves[1]).abs().max()) > 1.0 and float((curves[1] - curves[2]).abs().max()) > 0.1


def test_a_site_shared_by_two_species_keeps_both(tmp_path):
    columns = NI_COLUMNS + "_atom_site_occupancy\n_atom_site_U_iso_or_equiv\n"
    s = read_structure(_cif(tmp_path, "cuau.cif", "Cu1 Cu 0 0 0 0.5 0.01\nAu1 Au 0 0 0 0.5 0.012\n", columns,
                            a=3.87))
    assert sorted(s.symbols) == ["Au"] * 4 + ["Cu"] * 4
    np.testing.assert_allclose(s.occupancy.numpy(), 0.5)
    assert sorted(set(np.round(s.uiso.numpy(), 6))) == [0.01, 0.012]
    assert float(s.occupancy.sum()) == pytest.approx(4.0)  # four sites, each full


def test_anisotropic_table_gives_u_equivalent_and_charges_are_read(tmp_path):
    columns = NI_COLUMNS + "_atom_site_occupancy\n"
    aniso = ("loop_\n_atom_site_aniso_label\n_atom_site_aniso_U_11\n_atom_site_aniso_U_22\n_atom_site_aniso_U_33\n"
             "_atom_site_aniso_U_12\n_atom_site_aniso_U_13\n_atom_site_aniso_U_23\n"
             "Ti1 0.006 0.008 0.010 0.001 0 0\nO1 0.012 0.009 0.006 0 0 0\n")
    path = _cif(tmp_path, "tio2.cif", "Ti1 Ti4+ 0 0 0 1\nO1 O2- 0.3 0.3 0 1\n", columns, a=4.59, c=2.96,
                group="P 42/m n m", extra=aniso)
    s = read_structure(path)
    assert sorted(s.symbols) == ["O"] * 4 + ["Ti"] * 2
    ti = s.numbers == 22
    np.testing.assert_allclose(s.uiso[ti].numpy(), 0.008, rtol=1e-12)  # (U11 + U22 + U33)/3, orthogonal cell
    np.testing.assert_allclose(s.uiso[~ti].numpy(), 0.009, rtol=1e-12)
    assert set(s.charges[ti].tolist()) == {4.0} and set(s.charges[~ti].tolist()) == {-2.0}


def test_u_equivalent_in_an_oblique_cell(tmp_path):
    """U_eq = (1/3) Σ U^ij a*_i a*_j a_i·a_j: an isotropic U written as U_ij of a hexagonal cell
    (U11 = U22 = 2 U12 = U, U33 = U) gives back U."""
    columns = NI_COLUMNS
    aniso = ("loop_\n_atom_site_aniso_label\n_atom_site_aniso_U_11\n_atom_site_aniso_U_22\n_atom_site_aniso_U_33\n"
             "_atom_site_aniso_U_12\n_atom_site_aniso_U_13\n_atom_site_aniso_U_23\nZn1 0.02 0.02 0.02 0.01 0 0\n")
    s = read_structure(_cif(tmp_path, "zn.cif", "Zn1 Zn 0.3333333 0.6666667 0.25\n", columns, a=2.66, c=4.95,
                            gamma=120, group="P 63/m m c", extra=aniso))
    np.testing.assert_allclose(s.uiso.numpy(), 0.02, rtol=1e-9)


def test_round_trip_and_an_independent_reader(tmp_path):
    gemmi = pytest.importorskip("gemmi")
    columns = NI_COLUMNS + "_atom_site_occupancy\n_atom_site_U_iso_or_equiv\n"
    start = read_structure(_cif(tmp_path, "lbco.cif", "La1 La3+ 0 0 0 0.5 0.008\nBa1 Ba2+ 0 0 0 0.5 0.008\n"
                                "Co1 Co 0.5 0.5 0.5 1 0.004\nO1 O2- 0.5 0.5 0 0.95 0.011\n", columns,
                                a=3.89, group="P m -3 m"))
    rng = np.random.default_rng(0)
    refined = start.with_(positions=start.positions + torch.as_tensor(rng.normal(0, 0.02, (len(start), 3))),
                          biso=start.biso * torch.as_tensor(rng.uniform(0.8, 1.2, len(start))))
    write_cif(refined, tmp_path / "out.cif")
    back = read_structure(tmp_path / "out.cif")
    assert back.symbols == refined.symbols
    torch.testing.assert_close(back.cell, refined.cell, atol=1e-5, rtol=0)
    shift = (back.positions - refined.positions) @ torch.linalg.inv(refined.cell)
    assert float((shift - shift.round()).abs().max()) < 1e-6  # the same atoms (wrapped into the cell)
    torch.testing.assert_close(back.occupancy, refined.occupancy, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.uiso, refined.uiso, atol=1e-8, rtol=0)
    torch.testing.assert_close(back.charges, refined.charges)
    small = gemmi.make_small_structure_from_block(gemmi.cif.read(str(tmp_path / "out.cif")).sole_block())
    assert len(small.sites) == len(refined)
    assert small.cell.a == pytest.approx(3.89, abs=1e-5)
    np.testing.assert_allclose([site.occ for site in small.sites], refined.occupancy.numpy(), atol=1e-6)
    np.testing.assert_allclose([site.u_iso for site in small.sites], refined.uiso.numpy(), atol=1e-8)
    frac = np.array([[site.fract.x, site.fract.y, site.fract.z] for site in small.sites])
    delta = frac - refined.positions.numpy() @ np.linalg.inv(refined.cell.numpy())
    assert np.abs(delta - np.round(delta)).max() < 1e-6


def test_bad_cifs_are_one_line(tmp_path):
    empty = tmp_path / "empty.cif"
    empty.write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(ScatterfitError, match="empty.cif: no crystal structure"):
        read_structure(empty)
    columns = NI_COLUMNS + "_atom_site_U_iso_or_equiv\n"
    with pytest.raises(ScatterfitError, match="negative or invalid displacement"):
        read_structure(_cif(tmp_path, "neg.cif", "Ni1 Ni 0 0 0 -0.01\n", columns))
    with pytest.raises(ScatterfitError, match="cannot tell the element"):
        read_structure(_cif(tmp_path, "xx.cif", "Q1 Qq 0 0 0 0.01\n", columns))


@pytest.mark.parametrize("value, esd, text", [(3.52495, 0.00026, "3.5250(3)"), (0.00624372, 0.00012, "0.00624(12)"),
                                              (2.11874, 0.28, "2.1(3)"), (90.0, None, "90.000000"),
                                              (1.23456, 0.0000951, "1.2346(1)"), (12.5, 1.6, "12.5(16)")])
def test_values_with_standard_uncertainties(value, esd, text):
    from scatterfit.structure.cif import with_esd

    assert with_esd(value, esd) == text


def _same_atoms(a, b) -> None:
    """The same atoms (species, occupancy, Uiso) at the same fractional positions, in any order."""
    fa = (a.positions @ torch.linalg.inv(a.cell)).numpy() % 1.0
    fb = (b.positions @ torch.linalg.inv(b.cell)).numpy() % 1.0
    delta = fa[:, None, :] - fb[None, :, :]
    distance = np.abs(delta - np.round(delta)).max(-1)
    distance[a.numbers.numpy()[:, None] != b.numbers.numpy()[None, :]] = np.inf  # a shared site: by species
    match = distance.argmin(1)
    assert distance.min(1).max() < 1e-6 and len(set(match.tolist())) == len(a) == len(b)
    for attribute in ("numbers", "occupancy", "uiso", "charges"):
        np.testing.assert_allclose(getattr(a, attribute).numpy(), getattr(b, attribute).numpy()[match], atol=1e-8)


def test_symmetric_structure_is_written_as_its_asymmetric_unit_and_reads_back(tmp_path):
    """An orthorhombic Pnma perovskite with a shared A site (La/Ca) and a different Uiso per site: the CIF holds
    the space group's operations and one row per site and species; reading it back (scatterfit and gemmi) gives
    every atom again."""
    gemmi = pytest.importorskip("gemmi")
    columns = NI_COLUMNS + "_atom_site_occupancy\n_atom_site_U_iso_or_equiv\n"
    sites = ("La1 La 0.0300 0.25 0.9950 0.7 0.0071\nCa1 Ca 0.0300 0.25 0.9950 0.3 0.0071\n"
             "Mn1 Mn 0 0 0.5 1 0.0042\nO1 O 0.4900 0.25 0.0650 1 0.0093\nO2 O 0.2750 0.0350 0.7250 1 0.0110\n")
    start = read_structure(_cif(tmp_path, "pnma.cif", sites, columns, a=5.47, b=7.73, c=5.52, group="P n m a"))
    assert len(start) == 24 and start.space_group == 62
    write_cif(start, tmp_path / "out.cif", esd={"a": 0.0002})
    text = (tmp_path / "out.cif").read_text()
    assert "_space_group_IT_number           62" in text and "_cell_length_a     5.4700(2)" in text
    rows = text.split("_atom_site_U_iso_or_equiv\n")[1].strip().splitlines()
    assert len(rows) == 5  # La, Ca on one site; Mn; two O sites
    back = read_structure(tmp_path / "out.cif")
    assert back.space_group == 62
    _same_atoms(start, back)
    small = gemmi.read_small_structure(str(tmp_path / "out.cif"))
    assert len(small.get_all_unit_cell_sites()) == 24
    assert small.spacegroup.number == 62 and len(small.symops) == 8


def test_a_structure_that_lost_its_symmetry_is_written_in_p1(tmp_path):
    columns = NI_COLUMNS + "_atom_site_U_iso_or_equiv\n"
    start = read_structure(_cif(tmp_path, "ni.cif", "Ni1 Ni 0 0 0 0.005\n", columns))
    shifts = torch.as_tensor(np.random.default_rng(3).normal(0, 0.05, (len(start), 3)))
    moved = start.with_(positions=start.positions + shifts)
    write_cif(moved, tmp_path / "out.cif")
    assert "'P 1'" in (tmp_path / "out.cif").read_text()
    _same_atoms(moved, read_structure(tmp_path / "out.cif"))


PUBLISHED = ["pdf/nanoparticle-fit/ZnS.cif", "pdf/nanoparticle-fit/CdS.cif", "pdf/ch05Fit2Phase/data/Si_Fd-3m.cif",
             "pdf/ch03NiModelling/data/Pt.cif", "pdf/ch06RefineCrystalStructureGen/data/BaZn2As2.cif",
             "pdf/ch08NPRefinement/data/CdSe-Wurtzite.cif", "pdf/ch08NPRefinement/data/CdSe-Zincblende.cif",
             "pdf/ch07StructuralPhaseTransitions/data/SrFe2As2_tetragonal.cif",
             "pdf/ch07StructuralPhaseTransitions/data/SrFe2As2_orthorhombic.cif", "pnma_perovskite_aniso.cif"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_cifs_read_as_ase_reads_them(name):
    """read_structure (gemmi's parser and operations, our expansion) against ASE's CIF reader, an independent
    implementation of both: the same cell, and the same atoms at the same fractional positions."""
    import ase.io

    from conftest import cmi_file

    path = Path(__file__).parents[1] / "data" / name if "/" not in name else cmi_file(name)
    ours = read_structure(path)
    theirs = ase.io.read(str(path))
    np.testing.assert_allclose(ours.cell.numpy(), theirs.cell[:], atol=1e-9)
    assert len(ours) == len(theirs)

    def rows(numbers, frac):
        frac = np.round(np.mod(frac + 1e-6, 1.0), 4) % 1.0
        return sorted(zip(numbers.tolist(), map(tuple, frac.tolist())))

    frac = np.linalg.solve(ours.cell.numpy().T, ours.positions.numpy().T).T
    for (za, fa), (zb, fb) in zip(rows(ours.numbers, frac), rows(theirs.numbers, theirs.get_scaled_positions())):
        assert za == zb and np.allclose(fa, fb, atol=2e-4), (za, fa, zb, fb)

"""Chemical restraints: values on known structures, finite-difference gradients (periodic and finite), and
the chemistry report."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.analysis.chemistry import chemistry_report
from scatterfit.constraints import (
    BondAngle,
    BondValence,
    ChargeNeutrality,
    Composition,
    Coordination,
    Density,
    MinDistance,
    flat_bottom,
)
from scatterfit.testing import check_structure_gradients, random_box, random_cluster


def _rattled(atoms, amount=0.1, seed=0):
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return Structure.from_ase(atoms)


def test_flat_bottom_is_zero_inside_and_quadratic_outside():
    x = torch.tensor([0.0, 1.0, 1.5, 2.0, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(flat_bottom(x, 1.0, 2.0).numpy(), [1.0, 0.0, 0.0, 0.0, 1.0])


def test_diamond_silicon_is_four_coordinated_with_tetrahedral_angles():
    si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2))
    cn, _ = Coordination("Si-Si", r0=2.8, target=4).numbers_per_atom(si)
    np.testing.assert_allclose(cn.numpy(), 4.0, atol=1e-3)
    value, info = Coordination("Si-Si", r0=2.8, target=[3.9, 4.1]).penalty(si)
    assert float(value) == 0.0 and info["fraction_in_range"] == 1.0
    assert float(Coordination("Si-Si", r0=2.8, target=6).penalty(si)[0]) == pytest.approx(4.0, abs=0.01)
    theta = BondAngle("Si-Si-Si", 2.6, [100, 120]).angles(si)
    np.testing.assert_allclose(theta.numpy(), 109.4712, atol=1e-3)
    assert float(BondAngle("Si-Si-Si", 2.6, [100, 120]).penalty(si)[0]) == 0.0


def test_rock_salt_bond_valence_sums():
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    # Brown & Altermatt's R0(Na-Cl) = 2.15 Å: 6 exp((2.15 - 2.82)/0.37) = 0.981 valence units per ion
    bvs, _ = BondValence({"Na": 1, "Cl": -1}, r0={"Na-Cl": 2.15}).sums(nacl)
    np.testing.assert_allclose(bvs.numpy(), 6 * np.exp((2.15 - 2.82) / 0.37), rtol=1e-3)
    assert float(bvs.mean()) == pytest.approx(1.0, abs=0.03)
    # the default O'Keeffe-Brese element parameters give R0 = 2.2107 Å, hence 1.156 per ion
    bvs, _ = BondValence({"Na": 1, "Cl": -1}).sums(nacl)
    np.testing.assert_allclose(bvs.numpy(), 6 * np.exp((2.21066 - 2.82) / 0.37), rtol=1e-3)


def test_min_distance_zero_on_a_crystal_positive_on_an_overlap():
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True) * (2, 2, 2))
    assert float(MinDistance(2.2).penalty(ni)[0]) == 0.0
    pos = ni.positions.clone()
    pos[1] = pos[0] + torch.tensor([1.5, 0, 0], dtype=torch.float64)
    value, info = MinDistance(2.2).penalty(ni.with_(positions=pos))
    assert float(value) > 0 and info["violations"] >= 1 and info["closest"] == pytest.approx(1.5, abs=1e-9)
    two = Structure([[0, 0, 0], [1.8, 0, 0]], [14, 8])
    assert float(MinDistance({"Si-O": 1.5, "*": 2.0}).penalty(two)[0]) == 0.0
    assert float(MinDistance({"Si-O": 2.0}).penalty(two)[0]) == pytest.approx(0.2**2 / 2)


def test_density_composition_and_charge():
    box = random_box(30, 0.066, numbers=(14, 8, 8), min_dist=1.5, seed=0)
    assert float(Density([0.06, 0.07]).penalty(box)[0]) == 0.0
    assert float(Density(0.05).penalty(box)[0]) > 0
    assert float(Composition({"Si": 1, "O": 2}).penalty(box)[0]) == pytest.approx(0.0, abs=1e-15)
    assert float(Composition({"Si": 0.5, "O": 0.5}, tolerance=0.05).penalty(box)[0]) > 0
    assert float(ChargeNeutrality({"Si": 4, "O": -2}).penalty(box)[0]) == pytest.approx(0.0, abs=1e-15)
    assert float(ChargeNeutrality({"Si": 4, "O": -1}).penalty(box)[0]) > 0
    with pytest.raises(ScatterfitError, match="periodic"):
        Density(0.05).penalty(random_cluster(5))


def test_restraint_gradients_finite_and_periodic():
    si = _rattled(bulk("Si", "diamond", a=5.431, cubic=True), 0.15)
    cluster = Structure(si.positions, si.numbers)
    silica = random_box(24, 0.066, numbers=(14, 8, 8), min_dist=1.4, seed=3)
    cases = [
        (MinDistance(2.6), si), (MinDistance(2.6), cluster),
        (Coordination("Si-Si", r0=2.5, target=4, width=0.1), si),
        (Coordination("Si-Si", r0=2.5, target=4, width=0.1), cluster),
        (BondAngle("Si-Si-Si", 2.6, [105, 112]), si), (BondAngle("Si-Si-Si", 2.6, [105, 112]), cluster),
        (BondValence({"Si": 4, "O": -2}), silica),
        (Density(0.08), silica),
    ]
    for restraint, s in cases:
        assert check_structure_gradients(lambda x: restraint.penalty(x)[0], s), restraint.name
    for restraint in (Composition({"Si": 0.5, "O": 0.5}), ChargeNeutrality({"Si": 4, "O": -1})):
        assert check_structure_gradients(lambda x: restraint.penalty(x)[0], silica, occupancy=True), restraint.name


def test_bad_restraint_arguments_are_one_line_errors():
    with pytest.raises(ScatterfitError, match="Si-O"):
        Coordination("SiO", r0=2.0, target=4)
    with pytest.raises(ScatterfitError, match="unknown element"):
        MinDistance({"Qq-O": 1.0})
    with pytest.raises(ScatterfitError, match="empty range"):
        Coordination("Si-O", r0=2.0, target=[5, 3])
    with pytest.raises(ScatterfitError, match="oxidation state"):
        BondValence({"Na": 1}).sums(Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64)))


def test_chemistry_report_of_quartz_like_silica_box():
    si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True))
    rep = chemistry_report(si)
    assert rep["coordination"]["Si"]["total"] == {4: 8}
    assert rep["bonds"]["Si-Si"]["count"] == 16
    assert rep["bonds"]["Si-Si"]["mean"] == pytest.approx(5.431 * np.sqrt(3) / 4)
    assert rep["angles"]["Si-Si-Si"]["count"] == 48
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    rep = chemistry_report(nacl, oxidation={"Na": 1, "Cl": -1})
    assert rep["coordination"]["Na"]["Cl"] == {6: 4}
    assert rep["bond_valence"]["Na"]["mean"] == pytest.approx(1.156, abs=1e-3)

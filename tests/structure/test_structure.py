import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from scatterfit import ScatterfitError, Structure
from scatterfit.structure import read_structure


@pytest.mark.parametrize("fmt", ["cif", "xyz", "extxyz", "vasp", "pdb"])
def test_file_round_trip(tmp_path, fmt):
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True) if fmt != "xyz" else molecule("H2O")
    path = tmp_path / f"s.{fmt}"
    atoms.write(str(path), format={"vasp": "vasp", "pdb": "proteindatabank"}.get(fmt, fmt))
    s = read_structure(path)
    assert len(s) == len(atoms)
    assert s.numbers.tolist() == atoms.numbers.tolist()
    np.testing.assert_allclose(s.positions.numpy(), atoms.positions, atol=2e-3)
    back = s.to_ase()
    assert back.get_chemical_formula() == atoms.get_chemical_formula()
    if fmt != "xyz":
        assert s.periodic and s.cell is not None


def test_occupancy_and_biso_defaults():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52))
    assert torch.allclose(s.occupancy, torch.ones(1, dtype=torch.float64))
    assert abs(float(s.uiso[0]) - 0.005) < 1e-12


@pytest.mark.parametrize("kwargs, message", [
    (dict(positions=np.zeros((0, 3)), numbers=[]), "empty"),
    (dict(positions=[[0, 0, np.nan]], numbers=[6]), "NaN"),
    (dict(positions=[[0, 0, 0]], numbers=[150]), "unknown element"),
    (dict(positions=[[0, 0, 0]], numbers=[6], pbc=True), "no cell"),
    (dict(positions=[[0, 0, 0]], numbers=[6], cell=np.zeros((3, 3)), pbc=True), "zero volume"),
])
def test_bad_structures_raise_one_line(kwargs, message):
    with pytest.raises(ScatterfitError, match=message):
        Structure(**kwargs)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ScatterfitError, match="cannot read"):
        read_structure(bad)
    with pytest.raises(ScatterfitError, match="not found"):
        read_structure(tmp_path / "missing.xyz")

"""A measured density given to solve (--density, g/cm³ or atoms/Å³): converted with the composition's masses,
checked against the first peak of G(r) (a unit mistaken is refused in one line), and a glass's or liquid's box is
built at it and keeps it."""

import subprocess
import sys

import numpy as np
import periodictable
import pytest

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.solve.inputs import as_pdf, number_density
from scatterfit.solve.solve import box_hypotheses, solve
from scatterfit.solve.triage import triage

AVOGADRO = 6.02214076e23


def _reference(grams_per_cm3: float, formula: str) -> float:
    """atoms/Å³ from periodictable's formula mass (an independent table)."""
    f = periodictable.formula(formula)
    atoms = sum(f.atoms.values())
    return grams_per_cm3 / f.mass * AVOGADRO * atoms * 1e-24


@pytest.mark.parametrize("text, formula", [("2.20", "SiO2"), ("2.20 g/cm3", "SiO2"), ("1.40 g/cc", "Ar"),
                                           ("5.6 G/CM³", "ZnO"), (8.9, "Ni")])
def test_a_mass_density_becomes_a_number_density(text, formula):
    assert number_density(text, formula) == pytest.approx(_reference(float(str(text).split()[0]), formula),
                                                          rel=1e-4)


def test_a_number_density_is_taken_as_it_is_and_bad_values_are_one_line_errors():
    assert number_density("0.0664 atoms/A3", "SiO2") == 0.0664
    assert number_density("0.0664 atoms/Å³", "SiO2") == 0.0664
    for text, message in (("-2.2", "not a positive number"), ("nan", "not a positive number"),
                          ("2.2 kg/m3", "unknown unit 'kg/m3'"), ("dense", "not a positive number")):
        with pytest.raises(ScatterfitError, match=message):
            number_density(text, "SiO2")


def _liquid(radiation: str = "neutron"):
    """A liquid-like S(Q) (first peak from 3.7 Å neighbours) on 0.5–20 Å⁻¹, on an absolute scale."""
    q = np.arange(0.5, 20.0, 0.02)
    s = 1.0 + 1.2 * np.sin(3.7 * q) / (3.7 * q) * np.exp(-0.02 * q**2)
    return Dataset(q, s, None, "sq", "inv_angstrom", radiation=radiation)


def test_a_given_density_builds_one_box_that_keeps_it():
    data = as_pdf(_liquid(), "Ar")
    found = triage(data)
    given, notes = box_hypotheses("Ar", data, found, [], density=0.0211)
    assert len(given) == 1 and given[0].source.endswith("at 0.0211 atoms/Å³ (given)")
    (box,) = given[0].structures.values()
    assert float(len(box) / box.volume) == pytest.approx(0.0211, rel=1e-6)
    assert "lattice" not in given[0].free and "positions" in given[0].free
    # the same G(r) not on an absolute scale (as a PDF program writes it): without a density the box's is refined
    relative = data.with_(metadata={**data.metadata, "absolute": False})
    (free,), _ = box_hypotheses("Ar", relative, found, [])
    assert "lattice" in free.free
    (kept,), _ = box_hypotheses("Ar", relative, found, [], density=0.0211)
    assert "lattice" not in kept.free


def test_a_density_off_by_its_unit_is_refused_before_anything_is_refined():
    data = _liquid()
    with pytest.raises(ScatterfitError, match=r"ρ0 d1³ = .* outside condensed matter's"):
        solve({"d": data}, "Ar", density=number_density("0.0211", "Ar"), potential=None)  # atoms/Å³ read as g/cm³


def test_the_command_line_error_names_the_option(tmp_path):
    path = tmp_path / "liquid.sq"
    d = _liquid()
    np.savetxt(path, np.column_stack([d.x, d.y]))
    done = subprocess.run([sys.executable, "-m", "scatterfit", "solve", str(path), "--composition", "Ar",
                           "--radiation", "neutron", "--density", "1.4 kg/m3", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("density '1.4 kg/m3': unknown unit 'kg/m3' (use g/cm3 or atoms/A3)")

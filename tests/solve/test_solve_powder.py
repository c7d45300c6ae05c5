"""solve() on Bragg powder patterns: the triage (peaks or none, the Scherrer size), the screen of the library
against the peaks (the right type first with its cell found, c/a included), blind draws of library crystals
simulated as X-ray patterns, the replayable Rietveld config, and one-line refusals."""


import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.scattering.powder import PowderSetup, powder_pattern
from scatterfit.solve.solve import solve
from scatterfit.structure.library import candidates

CU = 1.5406  # Å, Cu Kα1
BINARIES = ("ZnS", "NaCl", "MgO", "CdSe", "GaAs", "NiAs", "CaF2", "TiO2", "CdI2", "CsCl")


def _pattern(structure, rng, params: dict | None = None, counts: float = 3000.0) -> Dataset:
    """A Cu Kα1 X-ray pattern of ``structure`` over 10–120° 2θ (step 0.02°) with Poisson noise on ``counts`` at
    the strongest peak and a decaying background."""
    x = torch.arange(10.0, 120.0, 0.02, dtype=torch.float64)
    y = powder_pattern(structure, x, PowderSetup(wavelength=CU), params or {"W": 0.01, "U": 0.004}).numpy()
    y = counts * y / y.max() + 0.04 * counts * (1 + np.exp(-x.numpy() / 30))
    y = rng.poisson(y).astype(float)
    return Dataset(x.numpy(), y, np.sqrt(np.maximum(y, 1.0)), "xrd", "degrees", metadata={"wavelength": CU},
                   path="sim.xye")


def _stretched(structure, a: float, b: float, c: float):
    """``structure`` with its cell rows scaled by a, b and c (fractional coordinates kept)."""
    frac = structure.positions @ torch.linalg.inv(structure.cell)
    cell = structure.cell * torch.tensor([a, b, c], dtype=torch.float64)[:, None]
    return structure.with_(positions=frac @ cell, cell=cell)


def _strained(structure, rng, most: float = 0.04):
    """``structure`` with each cell length its crystal system leaves free scaled by its own factor within ±most
    (cubic: one factor; tetragonal and hexagonal: a and c; orthorhombic and lower: a, b and c)."""
    from scatterfit.structure.spacegroup import lattice_rule

    index = lattice_rule(structure).index[:3]
    factors = 1 + rng.uniform(-most, most, 3)
    return _stretched(structure, *(factors[i] for i in index))


def _simple(candidate) -> bool:
    from scatterfit.solve.hypotheses import crystal_hypothesis
    from scatterfit.solve.solve import COMPLEX, structural_count

    h = crystal_hypothesis(candidate.structure(), candidate.label, candidate.formula, "", "powder")
    return structural_count(h) <= COMPLEX


def _draw(seed: int):
    """A random truth: a library type of a random binary formula (as the PDF draws of test_solve.py), its a and c
    free cell lengths stretched by independent factors within ±4 %, random Uiso, zero shift and widths; its pattern."""
    rng = np.random.default_rng(seed)
    composition = BINARIES[rng.integers(len(BINARIES))]
    options = [c for c in candidates(composition) if _simple(c)]
    truth = options[rng.integers(len(options))]
    s = _strained(truth.structure().with_uiso(float(rng.uniform(0.003, 0.012))), rng)
    params = {"W": float(rng.uniform(0.003, 0.03)), "U": float(rng.uniform(0.0, 0.02)),
              "zero": float(rng.uniform(-0.1, 0.1))}
    return composition, truth, _pattern(s, rng, params), params


def _check(seed: int) -> str | None:
    composition, truth, data, params = _draw(seed)
    solution = solve({"sim": data}, composition, potential=None)
    best = solution.ranked[0]["hypothesis"]
    if best.kind != "crystal" or best.label != truth.label:
        return f"seed {seed}: truth {truth.label} {params}, ranked first {best.kind} {best.label}"
    return None


def _rutile(a: float, c: float):
    (rutile,) = [c for c in candidates("TiO2") if c.label == "rutile TiO2"]
    return _stretched(rutile.structure().with_uiso(0.008), a, a, c)


def test_the_screen_finds_rutile_and_both_of_its_axes():
    """A rutile pattern whose a is 5 % longer than the bond-length estimate and whose c is 3 % shorter than that:
    among the 59 AB2 types the Bragg screen ranks rutile first, at factors a 1.05 and c 1.0185, and keeps it."""
    from scatterfit.solve.screen import screen_powder

    data = _pattern(_rutile(1.05, 1.05 * 0.97), np.random.default_rng(0))
    rows = screen_powder(candidates("TiO2"), {"sim": data})
    assert rows[0].label == "rutile TiO2" and rows[0].kept
    assert rows[0].factors == pytest.approx((1.05, 1.05, 1.05 * 0.97), abs=0.003)
    fluorite = next(row for row in rows if row.label == "fluorite TiO2")
    assert rows[0].rw < 0.6 * fluorite.rw
    assert sum(row.kept for row in rows) <= 8


def test_the_triage_tells_bragg_peaks_from_broad_humps():
    """A crystal's pattern has Bragg peaks and a Scherrer size above the simulated resolution's; a pattern of two
    broad humps (a glass) has none, and solve says so in one line, pointing to total scattering."""
    from scatterfit.solve.triage import powder_triage

    found = powder_triage(_pattern(_rutile(1.0, 1.0), np.random.default_rng(1)))
    assert found.classes[0] == "crystal" and found.extent > 300  # Å: W 0.01 deg² is a 0.1° wide peak at low angle
    assert "Bragg peaks" in found.reasons[0]
    x = np.arange(10.0, 120.0, 0.02)
    y = 1000 * np.exp(-0.5 * ((x - 27) / 4) ** 2) + 400 * np.exp(-0.5 * ((x - 50) / 6) ** 2) + 100
    y = np.random.default_rng(2).poisson(y).astype(float)
    glass = Dataset(x, y, None, "xrd", "degrees", metadata={"wavelength": CU}, path="glass.xy")
    assert powder_triage(glass).classes == ["amorphous"]
    with pytest.raises(ScatterfitError, match="glass.xy: .*no Bragg peaks.*total scattering"):
        solve({"glass": glass}, "SiO2", potential=None)


def test_patterns_and_pdfs_are_not_mixed_in_one_solve():
    r = np.arange(0.5, 30, 0.01)
    pdf_data = Dataset(r, np.sin(r), None, "gr", "angstrom", metadata={"qmax": 25.0})
    pattern = _pattern(_rutile(1.0, 1.0), np.random.default_rng(3))
    with pytest.raises(ScatterfitError, match="not two of them: solve them separately"):
        solve({"g": pdf_data, "p": pattern}, "TiO2", potential=None)


def test_a_solid_solution_shares_its_site():
    """A formula with fractional amounts that add up to a whole site ("La0.5Ba0.5CoO3") puts those elements on
    one site at their fractions; amounts that make no whole site stay as given."""
    from scatterfit.structure.library import shared_sites

    assert shared_sites({"Mn": 0.2, "Fe": 0.8, "O": 1.0}) == ({"Mn": 1.0, "O": 1.0},
                                                              (("Mn", (("Mn", 0.2), ("Fe", 0.8))),))
    assert shared_sites({"Fe": 0.95, "O": 1.0}) == ({"Fe": 0.95, "O": 1.0}, ())
    options = candidates("La0.5Ba0.5CoO3")
    (perovskite,) = [c for c in options if c.label == "perovskite (La0.5Ba0.5)CoO3"]
    s = perovskite.structure()
    frac = (s.positions @ torch.linalg.inv(s.cell)).numpy()
    la, ba = s.numbers.numpy() == 57, s.numbers.numpy() == 56
    assert la.sum() == ba.sum() == 1 and np.allclose(frac[la], frac[ba])
    assert s.occupancy[torch.as_tensor(la | ba)].tolist() == [0.5, 0.5]


def test_a_simulated_rock_salt_pattern_is_solved_and_its_config_replays(tmp_path):
    """Rock salt NaCl (a 5.64 Å) as a noisy Cu Kα1 pattern with a zero shift, solved knowing the formula: rock
    salt first, a to 0.002 Å, the Rwp at the noise's expected value (10 %), and the written Rietveld config
    replays to the same Rwp."""
    from ase.build import bulk

    from scatterfit import Structure
    from scatterfit.report.solution import write_solution

    truth = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)).with_uiso(0.01)
    data = _pattern(truth, np.random.default_rng(4), {"W": 0.008, "U": 0.006, "zero": -0.04})
    path = tmp_path / "nacl.xye"
    np.savetxt(path, np.column_stack([data.x, data.y, data.sigma]))
    solution = solve({"nacl": data}, "NaCl", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert (best.kind, best.label) == ("crystal", "rock salt NaCl")
    params = best.result.parameters()
    assert abs(params["a"] - 5.64) < 0.002 and abs(params["zero"] + 0.04) < 0.01
    expected = np.sqrt(len(data.y) / np.sum(data.y**2 / data.sigma**2))  # Rwp of the noise alone
    assert best.rw["nacl"] < 1.1 * expected
    (tmp_path / "out").mkdir()
    record = write_solution(solution, tmp_path / "out", {"nacl": path})
    first = record["hypotheses"][0]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "structure types against the Bragg peaks" in page and "rock salt NaCl" in page
    replay = subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(tmp_path / "out" / first["config"]),
                             "--out", str(tmp_path / "replay")], capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert replayed["terms"]["nacl"]["rw"] == pytest.approx(first["rw"]["nacl"], rel=1e-3)


@pytest.mark.slow  # about 15 minutes
def test_blind_draws_of_powder_patterns_rank_the_right_type_first():
    failures = [f for f in (_check(seed) for seed in range(10)) if f]
    assert len(failures) <= 1, "\n".join(failures)


@pytest.mark.slow  # about 3 minutes
def test_solve_the_measured_lbco_neutron_pattern_knowing_only_the_formula():
    """The HRPT neutron pattern of La0.5Ba0.5CoO3 (../shared/data) solved from the formula and the wavelength: the
    cubic perovskite with La and Ba sharing the A site first, at the Rwp (0.0715) and cell (3.8908 Å) of the
    hand-written Rietveld example (examples/lbco_rietveld.toml) within 10 % and 0.001 Å."""
    from conftest import shared_file
    from scatterfit.io import load_dataset

    data = load_dataset(shared_file("LBCO_HRPT_neutron_powder/hrpt.xye"), radiation="neutron", wavelength=1.494)
    solution = solve({"hrpt": data}, "La0.5Ba0.5CoO3", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert (best.kind, best.label) == ("crystal", "perovskite (La0.5Ba0.5)CoO3")
    assert best.rw["hrpt"] < 1.1 * 0.0715
    assert abs(best.result.parameters()["a"] - 3.8908) < 0.001
    assert solution.verdict["fits"]


@pytest.mark.slow  # about 3 minutes
def test_a_two_polymorph_mixture_is_found_from_the_residual():
    """Anatase with a minority of rutile (both TiO2, their cells 1–2 % off the estimates, 1:3 in peak height):
    rutile alone screens poorly against the whole pattern, but it is the best type against the anatase fit's
    residual, and the anatase + rutile mixture is ranked first at the noise's Rwp (10 %)."""
    rng = np.random.default_rng(5)
    options = {c.label: c for c in candidates("TiO2")}
    anatase = _stretched(options["anatase TiO2"].structure().with_uiso(0.006), 1.0, 1.0, 0.99)
    rutile = _stretched(options["rutile TiO2"].structure().with_uiso(0.006), 1.02, 1.02, 0.98)
    x = torch.arange(10.0, 120.0, 0.02, dtype=torch.float64)
    setup, params = PowderSetup(wavelength=CU), {"W": 0.01, "U": 0.005}
    ya, yr = (powder_pattern(s, x, setup, params).numpy() for s in (anatase, rutile))
    y = ya / ya.max() + 0.33 * yr / yr.max()
    y = rng.poisson(3000 * y / y.max() + 150).astype(float)
    data = Dataset(x.numpy(), y, np.sqrt(y), "xrd", "degrees", metadata={"wavelength": CU}, path="p25.xye")
    solution = solve({"p25": data}, "TiO2", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert (best.kind, best.label) == ("mixture", "anatase TiO2 + rutile TiO2")
    expected = np.sqrt(len(y) / np.sum(y**2 / data.sigma**2))
    assert best.rw["p25"] < 1.1 * expected


def test_a_pattern_on_a_q_grid_is_solved_with_its_own_width_parameters():
    """A synchrotron pattern integrated to Q (x in Å⁻¹, as pyFAI writes it) of fcc Ni (a 3.524 Å): the Q
    geometry's width and Lorentzian fraction are refined instead of 2θ's zero and Caglioti widths, fcc first."""
    from ase.build import bulk

    from scatterfit import Structure

    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_uiso(0.005)
    q = torch.arange(1.5, 10.0, 0.004, dtype=torch.float64)
    y = powder_pattern(truth, q, PowderSetup(geometry="q"), {"fwhm_q": 0.01, "eta": 0.3}).numpy()
    y = np.random.default_rng(6).poisson(5000 * y / y.max() + 100).astype(float)
    data = Dataset(q.numpy(), y, np.sqrt(y), "xrd", "inv_angstrom", path="ni.chi")
    solution = solve({"ni": data}, "Ni", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert (best.kind, best.label) == ("crystal", "fcc Ni") and {"fwhm_q", "eta"} <= set(best.free)
    params = best.result.parameters()
    assert abs(params["a"] - 3.524) < 0.001 and abs(params["fwhm_q"] - 0.01) < 0.001

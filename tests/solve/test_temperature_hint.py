"""The temperature hint (solve --temperature K): an element above its melting point is tried as a liquid first,
and a sample above room temperature may have larger ADPs (the Biso bound grows as T / 300 K)."""

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.hypotheses import BOUNDS, thermal_bounds
from scatterfit.solve.solve import solve
from scatterfit.solve.triage import Triage, at_temperature, melting_point
from scatterfit.structure.library import candidates


def _found(classes):
    return Triage("gr", (1.0, 30.0), 30.0, 3.7, -0.3, classes, reasons=["the first peak is at 3.70 Å"])


def test_an_element_above_its_melting_point_is_tried_as_a_liquid_first():
    assert melting_point("Ar") == ("Ar", pytest.approx(83.8)) and melting_point("NaCl") is None
    crystal_like = _found(["crystal", "mixture", "nanoparticle"])
    hot = at_temperature(crystal_like, "Ar", 85.0)
    assert hot.classes == ["amorphous", "crystal", "mixture", "nanoparticle"]
    assert crystal_like.classes == ["crystal", "mixture", "nanoparticle"]  # a copy: the data's triage stays
    assert hot.reasons[-1] == ("temperature 85 K (given) is above Ar's melting point (83.8 K): a liquid, tried first; "
                               "but the data look crystalline (is the temperature in kelvin?)")
    liquid_like = _found(["amorphous", "nanoparticle", "cluster"])
    assert at_temperature(liquid_like, "Ar", 85.0).classes == ["amorphous", "nanoparticle", "cluster"]
    cold = at_temperature(crystal_like, "Ar", 40.0)
    assert cold.classes == crystal_like.classes and "below Ar's melting point (83.8 K)" in cold.reasons[-1]
    compound = at_temperature(crystal_like, "NaCl", 900.0)
    assert compound.classes == crystal_like.classes and "no melting point is known for 'NaCl'" in compound.reasons[-1]


def test_the_biso_bound_grows_with_the_temperature_above_room_temperature():
    assert thermal_bounds(None) == {} and thermal_bounds(300.0) == {} and thermal_bounds(15.0) == {}
    assert thermal_bounds(600.0) == {"biso": (BOUNDS["biso"][0], pytest.approx(2 * BOUNDS["biso"][1]))}


@pytest.mark.parametrize("temperature", [-20.0, 0.0, 2e4, True])
def test_a_temperature_that_is_not_kelvin_is_refused_in_one_line(temperature):
    r = np.arange(1.0, 20.0, 0.02)
    data = Dataset(r, np.sin(3 * r) * np.exp(-0.1 * r), None, "gr", "angstrom", metadata={"qmax": 25.0})
    with pytest.raises(ScatterfitError, match=r"^temperature: a number of kelvin between 0 and 10000, got "):
        solve({"d": data}, "Ni", temperature=temperature, potential=None)


def _hot_lead():
    """fcc Pb near its melting point (550 K; Biso 4.5 Å², about what Pb has there): its simulated G(r) with 1 %
    noise, and the noise's Rw."""
    (c,) = [c for c in candidates("Pb") if c.label == "fcc Pb"]
    s = c.structure()
    s = s.with_(biso=torch.full((len(s),), 4.5, dtype=s.dtype))
    r = torch.arange(1.5, 30.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qmax=25.0, qdamp=0.03).numpy()
    noise = 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    data = Dataset(r.numpy(), g + noise, None, "gr", "angstrom", metadata={"qmax": 25.0})
    return c, data, float(np.sqrt(np.sum(noise**2) / np.sum((g + noise) ** 2)))


def test_a_hot_crystal_gets_the_adps_its_temperature_allows():
    """The hot fcc Pb crystal refined as the solve refines it: with the bounds the temperature gives (in the data's
    metadata, as solve puts them) its Biso reaches the truth and the fit the noise; with the room-temperature
    bound the Biso stops on it (2.5 Å²) and the fit is worse."""
    from scatterfit.solve.hypotheses import crystal_hypothesis, refine_hypothesis

    c, data, noise_rw = _hot_lead()

    def refined(bounds):
        d = data.with_(metadata={**data.metadata, **({"bounds": bounds} if bounds else {})})
        h = refine_hypothesis(crystal_hypothesis(c.structure(), c.label, c.formula, "test"), {"d": d})
        assert h.error is None, h.error
        return h

    hot = refined(thermal_bounds(550.0))
    assert hot.result.parameters()["Biso_Pb"] == pytest.approx(4.5, rel=0.05)
    assert hot.rw["d"] < 1.1 * noise_rw, (hot.rw, noise_rw)
    room = refined(thermal_bounds(None))
    assert room.result.parameters()["Biso_Pb"] == pytest.approx(BOUNDS["biso"][1], rel=0.01)
    assert room.rw["d"] > 1.5 * hot.rw["d"], (room.rw, hot.rw)


@pytest.mark.slow  # about 25 s on a quiet machine, a whole solve
def test_solve_with_the_temperature_of_a_hot_crystal():
    """The whole solve of the hot fcc Pb with ``temperature=550``: below Pb's melting point (600.6 K) the triage
    keeps the crystal first and says so, the note gives the wider Biso bound, and fcc Pb ranks first with the true
    Biso at the noise's Rw."""
    _, data, noise_rw = _hot_lead()
    solution = solve({"d": data}, "Pb", potential=None, temperature=550.0)
    assert solution.triage.classes[0] == "crystal"
    assert "below Pb's melting point (600.61 K)" in solution.triage.reasons[-1]
    assert any("measured at 550 K (given)" in note for note in solution.notes)
    best = solution.ranked[0]["hypothesis"]
    assert best.label == "fcc Pb", [row["hypothesis"].label for row in solution.ranked[:3]]
    assert best.result.parameters()["Biso_Pb"] == pytest.approx(4.5, rel=0.05)
    assert best.rw["d"] < 1.1 * noise_rw, (best.rw, noise_rw)


def test_a_hot_powder_gets_the_adps_its_temperature_allows():
    """The same hot fcc Pb as a Cu Kα1 powder pattern (Poisson noise): its Rietveld hypothesis, refined as the
    solve refines it, reaches the true Biso with the temperature's bounds and stops on 2.5 Å² without them."""
    from scatterfit.scattering.powder import PowderSetup, powder_pattern
    from scatterfit.solve.hypotheses import crystal_hypothesis, powder_free, refine_hypothesis

    c, _, _ = _hot_lead()
    truth = c.structure()
    truth = truth.with_(biso=torch.full((len(truth),), 4.5, dtype=truth.dtype))
    x = torch.arange(15.0, 140.0, 0.02, dtype=torch.float64)
    y = powder_pattern(truth, x, PowderSetup(wavelength=1.5406), {"W": 0.01, "U": 0.004}).numpy()
    y = np.random.default_rng(1).poisson(5000 * y / y.max() + 100).astype(float)
    data = Dataset(x.numpy(), y, np.sqrt(np.maximum(y, 1.0)), "xrd", "degrees", metadata={"wavelength": 1.5406})

    def refined(bounds):
        d = data.with_(metadata={**data.metadata, **({"bounds": bounds} if bounds else {})})
        datasets = {"d": d}
        h = refine_hypothesis(crystal_hypothesis(c.structure(), c.label, c.formula, "test", "powder",
                                                 powder_free(datasets)), datasets)
        assert h.error is None, h.error
        return h.result.parameters()["Biso_Pb"]

    assert refined(thermal_bounds(550.0)) == pytest.approx(4.5, rel=0.05)
    assert refined(thermal_bounds(None)) == pytest.approx(BOUNDS["biso"][1], rel=0.01)

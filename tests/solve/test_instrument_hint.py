"""The instrument's calibration given to solve (--qdamp/--qbroad from a standard): held fixed in every hypothesis
(not refined, in the replay configs as values), and bad values refused in one line."""

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.solve import solve
from scatterfit.structure.library import candidates

CALIBRATION = {"qdamp": 0.045, "qbroad": 0.012}


def _nickel(seed: int = 0) -> tuple[Dataset, float]:
    """fcc Ni (a 3.53 Å) with the calibration's resolution, Qmax 25, 1 % noise, to 30 Å; and the Rw of the
    noise (the truth's Rw against these data)."""
    (fcc,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    s = fcc.structure()
    factor = 3.53 / float(s.cell.norm(dim=1).max())
    s = s.with_(positions=s.positions * factor, cell=s.cell * factor).with_uiso(0.006)
    r = torch.arange(1.0, 30.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qmax=25.0, delta2=2.0, **CALIBRATION).numpy()
    noisy = g + 0.01 * np.abs(g).max() * np.random.default_rng(seed).standard_normal(len(g))
    noise_rw = float(np.sqrt(((noisy - g) ** 2).sum() / (noisy**2).sum()))
    return Dataset(r.numpy(), noisy, None, "gr", "angstrom", metadata={"qmax": 25.0}), noise_rw


def test_a_calibrated_resolution_is_held_in_every_hypothesis(tmp_path):
    from scatterfit.report.solution import write_solution

    data, noise_rw = _nickel()
    solution = solve({"sim": data}, "Ni", instrument=CALIBRATION, potential=None)
    refined = [row["hypothesis"] for row in solution.ranked]
    assert refined and refined[0].label.startswith("fcc Ni")
    for h in refined:
        assert not {"qdamp", "qbroad"} & set(h.free), h.label
        params = h.result.parameters()
        assert (params["qdamp"], params["qbroad"]) == (0.045, 0.012), h.label
    assert refined[0].rw["sim"] < 1.05 * noise_rw  # the truth's resolution: the fit reaches the noise
    assert sum("held fixed in every hypothesis" in note for note in solution.notes) == 2
    record = write_solution(solution, tmp_path, {"sim": tmp_path / "sim.gr"})
    config = (tmp_path / record["hypotheses"][0]["config"]).read_text()
    assert "qdamp = 0.045" in config and "qbroad = 0.012" in config
    free_line = next(line for line in config.splitlines() if line.startswith("free = "))
    assert "qdamp" not in free_line and "qbroad" not in free_line


@pytest.mark.parametrize("instrument, message", [
    ({"qdamp": -0.01}, "qdamp must be a number in \\[0, 1\\)"),
    ({"qdamp": float("nan")}, "qdamp must be a number"),
    ({"Qdamp": 0.04}, "unknown parameter 'Qdamp'"),
])
def test_bad_calibrations_are_refused_in_one_line(instrument, message):
    with pytest.raises(ScatterfitError, match=message):
        solve({"sim": _nickel()[0]}, "Ni", instrument=instrument, potential=None)


def test_a_calibration_of_the_pdf_is_refused_for_a_powder_pattern():
    x = np.linspace(10, 80, 500)
    data = Dataset(x, np.exp(-((x - 44.5) / 0.1) ** 2) + 0.01, None, "xrd", "degrees", metadata={"wavelength": 1.54})
    with pytest.raises(ScatterfitError, match="apply to G\\(r\\), S\\(Q\\) or F\\(Q\\) data; these are bragg data"):
        solve({"xrd": data}, "Ni", instrument={"qdamp": 0.04}, potential=None)


def test_a_qdamp_in_a_files_header_is_not_taken_for_a_calibration():
    """A header's "qdamp = ..." (PDFgui writes one into its fits) lands in the metadata like any key = value line;
    only an explicit calibration is held fixed, so without one qdamp is refined."""
    from scatterfit.solve.hypotheses import calibrated

    data, _ = _nickel()
    data = data.with_(metadata={**data.metadata, "qdamp": 0.08, "qbroad": 0.02})
    assert calibrated({"sim": data}) == {}
    best = solve({"sim": data}, "Ni", potential=None).ranked[0]["hypothesis"]
    assert "qdamp" in best.free
    assert abs(best.result.parameters()["qdamp"] - 0.045) < 0.005  # refined to the truth, not the header's 0.08

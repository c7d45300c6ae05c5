"""`scatterfit refine CONFIG --evaluate`: the starting model scored under the config's terms, nothing refined."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit.cli import main
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import Structure, read_structure

CONFIG = """
[structure]
file = "model.cif"
uiso = {uiso}

[[datasets]]
name = "sim"
file = "sim.gr"

[[terms]]
kind = "data"
dataset = "sim"
model = "pdf"
xmin = 1.5
xmax = 10.0

[parameters]
free = ["lattice", "biso", "qdamp"]
values = {{ qdamp = 0.04 }}

[output]
dir = "results"
"""


@pytest.fixture
def case(tmp_path):
    """Ni's G(r) (a 3.524 Å, Uiso 0.006 Å², qdamp 0.04, 1 % noise) and a model of it with a 1 % larger cell."""
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_uiso(0.006)
    r = torch.arange(0.01, 12.0, 0.01, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.04, qmax=25.0).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(r))
    np.savetxt(tmp_path / "sim.gr", np.column_stack([r.numpy(), g]), header="mode = xray\nqmax = 25.0")
    bulk("Ni", "fcc", a=3.56, cubic=True).write(str(tmp_path / "model.cif"))
    return tmp_path


def _expected_rw(folder, uiso):
    """Rw of the model's G(r) (computed here on the data's own points) against the data, with the least-squares
    scale, over 1.5–10 Å."""
    r, g = np.loadtxt(folder / "sim.gr").T
    model = Structure.from_ase(bulk("Ni", "fcc", a=3.56, cubic=True)).with_uiso(uiso)
    calc = pdf(model, torch.as_tensor(r), qdamp=0.04, qmax=25.0).numpy()
    m = (r >= 1.5) & (r <= 10.0)
    scale = (g[m] * calc[m]).sum() / (calc[m] ** 2).sum()
    return float(np.sqrt(((g[m] - scale * calc[m]) ** 2).sum() / (g[m] ** 2).sum()))


@pytest.mark.parametrize("uiso", [0.004, 0.0001])  # 0.0001 Å² (Biso 0.008) lies under the biso bound 0.01
def test_evaluate_scores_the_start_as_given_and_refines_nothing(case, capsys, uiso):
    (case / "case.toml").write_text(CONFIG.format(uiso=uiso))
    assert main(["refine", str(case / "case.toml"), "--evaluate"]) == 0
    out = capsys.readouterr().out
    assert "evaluation (nothing refined)" in out
    summary = json.loads((case / "results" / "summary.json").read_text())
    assert summary["terms"]["sim"]["rw"] == pytest.approx(_expected_rw(case, uiso), rel=2e-3)
    assert summary["uncertainties"] == {"skipped": "nothing refined (--evaluate)"}
    written = read_structure(case / "results" / "refined.cif")
    assert float(written.cell[0, 0]) == pytest.approx(3.56, abs=1e-6)  # "lattice" was free in the config
    assert float(written.uiso[0]) == pytest.approx(uiso, rel=1e-4)  # not moved off the bound, not refined
    assert summary["parameters"]["qdamp"] == pytest.approx(0.04)


def test_a_refinement_from_the_same_config_lowers_the_evaluated_rw(case, capsys):
    """The contrast: without --evaluate the same config refines (and ends below the evaluated start)."""
    (case / "case.toml").write_text(CONFIG.format(uiso=0.004))  # the default r-range ramp
    main(["refine", str(case / "case.toml"), "--evaluate", "--out", str(case / "start")])
    main(["refine", str(case / "case.toml"), "--out", str(case / "refined")])
    start = json.loads((case / "start" / "summary.json").read_text())["terms"]["sim"]["rw"]
    refined = json.loads((case / "refined" / "summary.json").read_text())["terms"]["sim"]["rw"]
    assert refined < 0.5 * start


def test_evaluate_refuses_to_resume(case, capsys):
    (case / "case.toml").write_text(CONFIG.format(uiso=0.004))
    assert main(["refine", str(case / "case.toml"), "--evaluate", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scatterfit: error:") and "case.toml" in err[0]
    assert "--evaluate" in err[0] and "--resume" in err[0]
    assert not (case / "results" / "summary.json").exists()

"""`scatterfit refine CONFIG.toml`: end to end on a small simulated case, resume, and config mistakes."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit.cli import main
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import Structure

CONFIG = """
[structure]
file = "start.cif"
uiso = 0.004

[[datasets]]
name = "sim"
file = "sim.gr"

[[terms]]
kind = "data"
dataset = "sim"
model = "pdf"
qmax = 25.0
xmin = 1.5
xmax = 12.0

[parameters]
free = ["lattice", "biso", "qdamp"]
values = { qdamp = 0.02 }

[[strategy]]
optimizer = "lbfgs"
free = ["lattice", "biso"]
steps = 30
xmax = 5.0

[[strategy]]
optimizer = "lbfgs"
steps = 60

[output]
dir = "out"
seed = 1
checkpoint_every = 5
"""


@pytest.fixture
def case(tmp_path):
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_(
        biso=torch.full((4,), 8 * math.pi**2 * 0.006, dtype=torch.float64))
    r = torch.arange(0.01, 15.0, 0.01, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.045, qmax=25.0).numpy()
    g += 0.005 * np.random.default_rng(0).standard_normal(len(g))
    np.savetxt(tmp_path / "sim.gr", np.column_stack([r.numpy(), g]), header="mode = xray\nqmax = 25.0")
    bulk("Ni", "fcc", a=3.56, cubic=True).write(str(tmp_path / "start.cif"))
    (tmp_path / "case.toml").write_text(CONFIG)
    return tmp_path


def test_refine_cli_end_to_end(case, capsys):
    assert main(["refine", str(case / "case.toml"), "--out", str(case / "out")]) == 0
    out = capsys.readouterr().out
    assert "Rw = " in out
    import json

    summary = json.loads((case / "out" / "summary.json").read_text())
    assert abs(summary["parameters"]["a"] - 3.524) < 1e-3
    assert abs(summary["parameters"]["qdamp"] - 0.045) < 0.005
    assert summary["terms"]["sim"]["rw"] < 0.05
    for f in ("refined.cif", "refined.extxyz", "fit_sim.csv", "fit_sim.png", "loss_history.csv", "summary.json",
              "chemistry.png"):
        assert (case / "out" / f).is_file(), f
    esd = summary["uncertainties"]["esd"]
    assert 0 < esd["a"] < 0.01 and 0 < esd["qdamp"] < 0.01 and "scale[sim]" in esd
    assert abs(summary["parameters"]["a"] - 3.524) < 3 * esd["a"] + 2e-4  # the truth within the esd (or bias)
    from scatterfit.structure.cif import with_esd

    cif = (case / "out" / "refined.cif").read_text().split()
    assert cif[cif.index("_cell_length_a") + 1] == with_esd(summary["parameters"]["a"], esd["a"])
    assert f"a = {with_esd(summary['parameters']['a'], esd['a'])}" in out
    # resuming a finished run keeps the result
    assert main(["refine", str(case / "case.toml"), "--out", str(case / "out"), "--resume"]) == 0
    again = json.loads((case / "out" / "summary.json").read_text())
    assert again["parameters"]["a"] == pytest.approx(summary["parameters"]["a"], abs=1e-9)


@pytest.mark.parametrize("edit, message", [
    (("qmax = 25.0", "qmaxx = 25.0"), "[[terms]][0]: unknown key 'qmaxx'"),
    (("qmax = 25.0", 'qmax = "25"'), "[[terms]][0].qmax: must be a number"),
    (('file = "sim.gr"', 'file = "missing.gr"'), "[[datasets]][0].file"),
    (('dataset = "sim"', 'dataset = "other"'), "no dataset named 'other'"),
    (('free = ["lattice", "biso", "qdamp"]', 'free = ["lattice", "bisoo"]'), "unknown parameter group"),
    (('optimizer = "lbfgs"\nsteps = 60', 'optimizer = "newton"\nsteps = 60'), "[[strategy]][1]"),
    (("[output]", "[outputs]"), "unknown section [outputs]"),
    (("[[terms]]", "[[terms]]]"), "not valid TOML"),
])
def test_config_mistakes_point_at_the_key(case, capsys, edit, message):
    text = CONFIG.replace(*edit)
    assert text != CONFIG
    (case / "bad.toml").write_text(text)
    assert main(["refine", str(case / "bad.toml"), "--out", str(case / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "bad.toml" in err[0]


@pytest.mark.parametrize("device, message", [("gpu7", "unknown device 'gpu7'"),
                                             ("cuda", "no CUDA device is available"),
                                             ("meta", "not supported")])
def test_refine_device_errors_are_one_line(case, capsys, device, message):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert main(["refine", str(case / "case.toml"), "--out", str(case / "o"), "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_killed_cli_refinement_resumes_to_the_uninterrupted_result(case, monkeypatch):
    """The command killed at step 13 (exit 130) and run again with --resume ends where an uninterrupted run ends."""
    import json

    from scatterfit.report.progress import RefineProgress

    assert main(["refine", str(case / "case.toml"), "--out", str(case / "whole")]) == 0
    real_call = RefineProgress.__call__

    def killed(self, stage, step, loss, terms):
        if stage == 0 and step == 12:
            raise KeyboardInterrupt
        return real_call(self, stage, step, loss, terms)

    monkeypatch.setattr(RefineProgress, "__call__", killed)
    assert main(["refine", str(case / "case.toml"), "--out", str(case / "killed")]) == 130
    assert not (case / "killed" / "summary.json").exists() and (case / "killed" / "checkpoint.pt").is_file()
    monkeypatch.setattr(RefineProgress, "__call__", real_call)
    assert main(["refine", str(case / "case.toml"), "--out", str(case / "killed"), "--resume"]) == 0
    whole, resumed = (json.loads((case / d / "summary.json").read_text()) for d in ("whole", "killed"))
    assert resumed["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    assert resumed["parameters"]["a"] == pytest.approx(whole["parameters"]["a"], abs=1e-12)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_config_is_valid(example):
    from scatterfit.config import load_config

    cfg = load_config(EXAMPLES / example)
    assert cfg.datasets


def test_cell_bounds_in_a_config(case, capsys):
    text = CONFIG.replace('free = ["lattice", "biso", "qdamp"]',
                          'free = ["cell", "biso", "qdamp"]\nbounds = { cell = { alpha = [89.99, 90.01], '
                          'beta = [89.99, 90.01], gamma = [89.99, 90.01] } }')
    text = text.replace('free = ["lattice", "biso"]', 'free = ["cell", "biso"]')
    (case / "cell.toml").write_text(text)
    assert main(["refine", str(case / "cell.toml"), "--out", str(case / "cell")]) == 0
    import json

    p = json.loads((case / "cell" / "summary.json").read_text())["parameters"]
    assert all(89.99 <= p[k] <= 90.01 for k in ("alpha", "beta", "gamma")) and abs(p["a"] - 3.524) < 2e-3
    (case / "pair.toml").write_text(text.replace("bounds = { cell = { alpha = [89.99, 90.01], beta = [89.99, 90.01], "
                                                 "gamma = [89.99, 90.01] } }", "bounds = { cell = [3.4, 3.7] }"))
    assert main(["refine", str(case / "pair.toml"), "--out", str(case / "pair")]) == 2
    assert "not one [lo, hi] pair" in capsys.readouterr().err

"""`scatterfit solve` end to end on a simulated rock-salt G(r) file: the ranked table, solution.json with its
schema, the files of the best hypothesis and report.html; and its one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import Structure
from scatterfit.scattering.pdf import pdf


def _scatterfit(*args):
    return subprocess.run([sys.executable, "-m", "scatterfit", "solve", *map(str, args)], capture_output=True,
                          text=True)


@pytest.mark.slow  # about a minute on a quiet machine
def test_solve_command_on_a_simulated_rock_salt(tmp_path):
    truth = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)).with_uiso(0.008)
    r = torch.arange(0.5, 30.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qmax=25.0, qdamp=0.03).numpy()
    g += 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    path = tmp_path / "nacl.gr"
    np.savetxt(path, np.column_stack([r.numpy(), g]))
    out = tmp_path / "out"
    done = _scatterfit(path, "--composition", "NaCl", "--qmax", 25, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "best: rock salt NaCl" in done.stdout and "triage:" in done.stdout
    solution = json.loads((out / "solution.json").read_text())
    first = solution["hypotheses"][0]
    assert solution["schema"] == "scatterfit.solution/1" and first["class"] == "crystal"
    assert first["label"] == "rock salt NaCl" and first["space_group"] == 225
    assert abs(first["parameters"]["a"] - 5.64) < 0.01
    for name in first["structure_files"] + [first["config"], "report.html"]:
        assert (out / name).is_file(), name
    assert "rock salt NaCl" in (out / "report.html").read_text()
    screen = solution["screen"]  # every library type of NaCl's formula, best first, the refined ones marked
    assert len(screen) > 40 and screen[0]["label"] == "rock salt NaCl" and screen[0]["kept"]
    assert [row["rw"] for row in screen] == sorted(row["rw"] for row in screen)
    assert "Library screen" in (out / "report.html").read_text()
    # the ranking's score is the BIC plus the energy's prior (CHGNet, the default): listed and summed
    from types import SimpleNamespace

    from scatterfit.solve.ranking import energy_penalty

    assert "E-prior" in done.stdout and first["energy_above_library"] is not None
    assert first["energy_penalty"] == pytest.approx(energy_penalty(SimpleNamespace(**first)))
    score = [h["bic"] + h["energy_penalty"] for h in solution["hypotheses"]]
    assert [h["delta_bic"] for h in solution["hypotheses"]] == pytest.approx([v - score[0] for v in score])


def test_solve_errors_are_one_line(tmp_path):
    for args, message in (((tmp_path / "none.gr", "--composition", "Ni"), "none.gr: no such data file"),):
        done = _scatterfit(*args, "--out", tmp_path / "out")
        assert done.returncode == 2 and done.stderr.strip().endswith(message) and "Traceback" not in done.stderr
    path = tmp_path / "flat.gr"
    np.savetxt(path, np.column_stack([np.linspace(0.5, 20, 500), np.sin(np.linspace(0.5, 20, 500))]))
    done = _scatterfit(path, "--composition", "Ni", "--out", tmp_path / "out")
    assert done.returncode == 2 and "no Qmax in the header; give --qmax" in done.stderr
    done = _scatterfit(path, "--composition", "Qq2", "--qmax", 25, "--out", tmp_path / "out")
    assert done.returncode == 2 and "unknown element 'Qq'" in done.stderr
    done = _scatterfit(path, "--composition", "Ni", "--qmax", 25, "--qmin", 30, "--out", tmp_path / "out")
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "flat.gr: qmin must be a number from 0 to below Qmax (25 Å⁻¹), got 30.0") and "Traceback" not in done.stderr
    pattern = tmp_path / "scan.xy"  # a 2θ scan (it runs past 40°) whose file gives no wavelength
    np.savetxt(pattern, np.column_stack([np.linspace(10, 90, 400), np.ones(400)]))
    done = _scatterfit(pattern, "--composition", "Ni", "--out", tmp_path / "out")
    assert done.returncode == 2 and done.stderr.strip().endswith("scan.xy: a 2θ powder pattern needs its wavelength: "
                                                                 "give --wavelength (Å)")

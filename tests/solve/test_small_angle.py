"""Small-angle curves in solve (solve/small_angle.py): a simulated polydisperse rod, given with only the element,
is found as a rod of its size, length and size spread; its config replays; a file without uncertainties is
weighted relatively and written with them for the replay; the Guinier triage reads the Rg."""

import json

import numpy as np
import pytest
import torch

from scatterfit.io.datasets import load_dataset
from scatterfit.scattering.shapes import guinier_radius, polydisperse_intensity
from scatterfit.solve.small_angle import guinier, is_small_angle


def _curve(path, shape, radius, aspect, sigma, with_errors=True, seed=1):
    q = np.geomspace(0.004, 0.4, 120)
    i = 1e4 * polydisperse_intensity(shape, torch.as_tensor(q), radius, aspect, sigma).numpy() + 0.05
    err = 0.02 * i
    y = i + err * np.random.default_rng(seed).standard_normal(len(q))
    np.savetxt(path, np.column_stack([q, y, err]) if with_errors else np.column_stack([q, y]), header="q I sigma")
    return path


def test_guinier_reads_the_radius_of_gyration(tmp_path):
    data = load_dataset(_curve(tmp_path / "s.dat", "sphere", 30.0, 1.0, 0.001))
    assert is_small_angle(data)
    rg, i0, n = guinier(np.asarray(data.x), np.asarray(data.y))
    assert rg == pytest.approx(guinier_radius("sphere", 30.0), rel=0.03)
    assert i0 == pytest.approx(1e4, rel=0.03) and n >= 5


def test_a_polydisperse_rod_is_solved_from_its_curve_and_replays(tmp_path):
    from scatterfit.commands.refine import run_refine
    from scatterfit.report.solution import write_solution
    from scatterfit.solve.solve import solve

    path = _curve(tmp_path / "rod.dat", "cylinder", 15.0, 5.0, 0.1)
    solution = solve({"rod": load_dataset(path)}, "Au", potential=None)
    best = solution.ranked[0]["hypothesis"]
    p = best.result.parameters()
    assert best.kind == "nanoparticle" and best.label.startswith("rod")
    assert float(p["radius"]) == pytest.approx(15.0, rel=0.03)
    assert float(p["aspect"]) == pytest.approx(5.0, rel=0.05)
    assert float(p["polydispersity"]) == pytest.approx(0.1, abs=0.03)
    assert best.rw["rod"] < 1.5 * 0.02  # the noise: 2 % on every point
    assert solution.verdict["distinguishable"]
    (tmp_path / "out").mkdir()
    out = write_solution(solution, tmp_path / "out", {"rod": path})
    top = out["hypotheses"][0]
    assert top["n_atoms"] > 1000 and top["class"] == "nanoparticle"
    assert out["triage"]["features"]["rg"] == pytest.approx(guinier_radius("cylinder", 15.0, 5.0), rel=0.25)
    replay = run_refine(tmp_path / "out" / top["config"], out=tmp_path / "replay")
    assert replay.terms["rod"].breakdown["rw"] == pytest.approx(best.rw["rod"], abs=1e-4)


def test_a_curve_without_uncertainties_is_weighted_relatively(tmp_path):
    from scatterfit.report.solution import write_solution
    from scatterfit.solve.solve import solve

    path = _curve(tmp_path / "sphere.dat", "sphere", 25.0, 1.0, 0.15, with_errors=False)
    solution = solve({"sphere": load_dataset(path)}, "Au", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert best.label.startswith("sphere")
    assert float(best.result.parameters()["radius"]) == pytest.approx(25.0, rel=0.05)
    assert any("weighted relatively" in note for note in solution.notes)
    from scatterfit.solve.ranking import separating_measurement

    second = solution.ranked[1]["hypothesis"]
    assert "higher Q" in separating_measurement(best, second)
    (tmp_path / "out").mkdir()
    write_solution(solution, tmp_path / "out", {"sphere": path})
    written = load_dataset(tmp_path / "out" / "sphere_weighted.dat")
    assert written.sigma is not None and np.allclose(written.sigma, np.abs(written.y))
    config = (tmp_path / "out" / json.loads((tmp_path / "out" / "solution.json").read_text())["hypotheses"][0]
              ["config"]).read_text()
    assert "sphere_weighted.dat" in config and 'shape = "sphere"' in config

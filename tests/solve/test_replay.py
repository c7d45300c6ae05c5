"""Every written hypothesis config replays to the Rw the solve reported: the same start, the same stages (the
r-range ramp's short step limits, or a warm hypothesis' one stage), the Qmax given on the command line (slow:
a whole solve)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scatterfit.io import load_dataset
from scatterfit.report.solution import write_solution
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.solve import solve
from scatterfit.structure.library import candidates

pytestmark = pytest.mark.slow


def test_written_configs_replay_to_the_reported_rw(tmp_path):
    (c,) = [c for c in candidates("NaCl") if c.label == "rock salt NaCl"]
    r = torch.arange(1.0, 30.0, 0.02, dtype=torch.float64)
    g = pdf(c.structure().with_uiso(0.008), r, qdamp=0.03, qmax=25.0).numpy()
    g = g + np.random.default_rng(1).normal(0, 0.01 * np.abs(g).max(), g.shape)
    np.savetxt(tmp_path / "nacl.gr", np.column_stack([r.numpy(), g]))  # no header: Qmax from the caller
    solution = solve({"nacl": load_dataset(tmp_path / "nacl.gr")}, "NaCl", potential=None, qmax=25.0)
    (tmp_path / "out").mkdir()
    write_solution(solution, tmp_path / "out", {"nacl": tmp_path / "nacl.gr"})
    written = json.loads((tmp_path / "out" / "solution.json").read_text())["hypotheses"]
    assert written[0]["label"] == "rock salt NaCl"
    for h in written[:3]:
        replay = subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(tmp_path / "out" / h["config"]),
                                 "--out", str(tmp_path / "replay")], capture_output=True, text=True)
        assert replay.returncode == 0, replay.stderr
        rw = json.loads((tmp_path / "replay" / "summary.json").read_text())["terms"]["nacl"]["rw"]
        assert rw == pytest.approx(h["rw"]["nacl"], abs=1e-6), h["label"]

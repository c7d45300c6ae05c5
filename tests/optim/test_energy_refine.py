"""Energy and restraint terms inside a refinement: they resolve what scattering alone cannot, and the config /
CLI route builds them and reports the chemistry."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron

from scatterfit import Structure
from scatterfit.constraints import MinDistance
from scatterfit.energy import ASECalculatorEnergy
from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, EnergyTerm, Loss
from scatterfit.optim import Stage, refine
from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.models import DebyeModel
from scatterfit.structure.parametrisation import Parametrisation


def _nearest_neighbour_distances(s: Structure) -> torch.Tensor:
    d = torch.cdist(s.positions, s.positions) + 1e3 * torch.eye(len(s), dtype=s.dtype)
    return d.min(1).values


@pytest.fixture(scope="module")
def saxs_problem():
    """Small-angle data (Q ≤ 1 Å⁻¹, 1 % noise) of a 55-atom Au icosahedron resolve ~6 Å, not bonds: any
    arrangement with the right envelope fits. The start is the truth shrunk by 10 % and displaced at random
    (0.6 Å rms), with atoms 0.9 Å apart."""
    from ase.calculators.emt import EMT

    truth = Structure.from_ase(Icosahedron("Au", 3))
    q = torch.linspace(0.05, 1.0, 120, dtype=torch.float64)
    i = debye_intensity(truth, q)
    rng = np.random.default_rng(0)
    data = Dataset(q.numpy(), i.numpy() * (1 + 0.01 * rng.standard_normal(len(q))), 0.01 * i.numpy(), "saxs",
                   "1/angstrom")
    g = torch.Generator().manual_seed(1)
    start = truth.with_(positions=0.9 * truth.positions
                        + 0.6 * torch.randn(truth.positions.shape, generator=g, dtype=torch.float64))
    emt = ASECalculatorEnergy(EMT())
    return truth, data, start, emt


def _fit(data, start, extra):
    terms = [DataTerm(DebyeModel(kind="saxs", method="exact"), data), *extra]
    res = refine(Loss(terms), Parametrisation(start, free=["positions"]), [Stage("lbfgs", steps=200)])
    return res, res.terms["data:saxs"].breakdown["rw"]


def test_energy_term_resolves_what_small_angle_data_cannot(saxs_problem):
    truth, data, start, emt = saxs_problem
    e_truth = float(emt.energy(truth)) / len(truth)
    alone, rw_alone = _fit(data, start, [])
    with_energy, rw_energy = _fit(data, start, [EnergyTerm(emt, weight=0.1, reference=e_truth)])
    # both fit the data to its noise level (1 %) equally well ...
    assert rw_alone < 0.012 and rw_energy < 0.012 and abs(rw_alone - rw_energy) < 0.002
    # ... but scattering alone leaves atoms 1.3 Å apart, far below gold's 2.88 Å bond
    assert float(_nearest_neighbour_distances(alone.structure).min()) < 2.0
    nn = _nearest_neighbour_distances(with_energy.structure)
    assert float(nn.min()) > 2.4 and 2.6 < float(nn.mean()) < 3.0
    e_alone = float(emt.energy(alone.structure)) / len(truth)
    e_energy = float(emt.energy(with_energy.structure)) / len(truth)
    assert e_energy < e_truth + 0.05 < e_alone  # EMT relaxes the ideal icosahedron slightly below e_truth
    assert with_energy.terms["energy"].breakdown["energy_per_atom_eV"] == pytest.approx(e_energy, abs=1e-9)


def test_min_distance_restraint_alone_also_removes_the_overlaps(saxs_problem):
    _, data, start, _ = saxs_problem
    res, rw = _fit(data, start, [MinDistance(2.5, weight=1.0)])
    assert rw < 0.012
    assert float(_nearest_neighbour_distances(res.structure).min()) > 2.4


CONFIG = """
[structure]
bulk = {{ name = "Si", crystalstructure = "diamond", a = 5.45, cubic = true }}

[[datasets]]
name = "si"
file = "{data}"

[[terms]]
kind = "data"
dataset = "si"
model = "pdf"
qmax = 25.0

[[terms]]
kind = "energy"
potential = "sw"
weight = 0.05
reference = -4.3366

[[terms]]
kind = "restraint"
restraint = "coordination"
args = {{ pair = "Si-Si", r0 = 2.8, target = [3.9, 4.1] }}

[[terms]]
kind = "restraint"
restraint = "min_distance"
args = {{ distances = 2.1 }}

[parameters]
free = ["lattice", "biso"]

[[strategy]]
optimizer = "lbfgs"
steps = 30

[output]
oxidation = {{ Si = 0 }}
"""


def test_config_with_energy_and_restraint_terms_reports_energy_and_chemistry(tmp_path):
    from scatterfit.commands.refine import run_refine
    from scatterfit.scattering.pdf import pdf

    truth = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True))
    r = torch.arange(1.5, 15.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qmax=25.0)
    np.savetxt(tmp_path / "si.gr", np.column_stack([r.numpy(), g.numpy()]))
    (tmp_path / "si.toml").write_text(CONFIG.format(data=tmp_path / "si.gr"))
    result = run_refine(tmp_path / "si.toml", out=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["parameters"]["a"] == pytest.approx(5.431, abs=2e-3)
    energy = summary["terms"]["energy"]
    assert energy["potential"] == "stillinger-weber"
    assert energy["energy_per_atom_eV"] == pytest.approx(-4.3366, abs=2e-3)
    assert summary["terms"]["coordination:Si-Si"]["fraction_in_range"] == 1.0
    assert summary["chemistry"]["coordination"]["Si"]["total"] == {"4": 8}
    assert result.terms["min_distance"].breakdown["violations"] == 0


def test_config_rejects_bad_chemistry_terms(tmp_path):
    from scatterfit import ScatterfitError
    from scatterfit.commands.refine import run_refine

    np.savetxt(tmp_path / "si.gr", np.column_stack([np.arange(1, 10, 0.1), np.sin(np.arange(1, 10, 0.1))]))
    base = CONFIG.format(data=tmp_path / "si.gr")
    cases = [(base.replace('potential = "sw"', 'potential = "reaxff"'), "unknown potential"),
             (base.replace('restraint = "coordination"', 'restraint = "hardness"'), "unknown restraint"),
             (base.replace('r0 = 2.8, ', ''), "bad arguments"),
             (base.replace('kind = "energy"', 'kind = "entropy"'),
              "kind: 'entropy' is not one of data, energy, restraint"),
             (base.replace('reference = -4.3366', 'dataset = "si"'), "do not apply")]
    for k, (text, message) in enumerate(cases):
        path = tmp_path / f"bad{k}.toml"
        path.write_text(text)
        with pytest.raises(ScatterfitError, match=message):
            run_refine(path, out=tmp_path / "bad")

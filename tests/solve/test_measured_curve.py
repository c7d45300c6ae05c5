"""A box hypothesis on S(Q) or F(Q) data is fitted to the measured curve as well as to the G(r) solve derives from
it (solve/inputs.as_pdf keeps the curve; solve/hypotheses.hypothesis_loss adds its term), and its replay config
builds the same terms."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit.io import Dataset
from scatterfit.loss import DataTerm
from scatterfit.solve.hypotheses import (
    amorphous_hypothesis,
    analytic_scales,
    box_qmin,
    crystal_hypothesis,
    hypothesis_loss,
    measured_name,
)
from scatterfit.solve.inputs import as_pdf, mean_length_squared
from scatterfit.structure import Structure


def _liquid_sq():
    """An S(Q) with a liquid's first peak (3.7 Å) on 0.5–15 Å⁻¹."""
    q = np.arange(0.5, 15.0, 0.02)
    return q, 1.0 + np.sin(3.7 * q) / (3.7 * q) * np.exp(-0.01 * q**2)


def test_as_pdf_keeps_the_measured_curve_as_s_minus_1_on_the_gr_scale():
    q, s = _liquid_sq()
    d = as_pdf(Dataset(q, s, None, "sq", "inv_angstrom", radiation="neutron"), "Ar")
    kept = d.metadata["reciprocal"]
    np.testing.assert_allclose(kept["q"], q)
    np.testing.assert_allclose(kept["s_minus_1"], s - 1.0, atol=1e-12)
    barns = 0.276 * (s - 1.0)  # a Gudrun interference function of SiO2 in barns/sr/atom: ⟨b⟩² (S − 1)
    d = as_pdf(Dataset(q, barns, None, "fq", "inv_angstrom", radiation="neutron",
                       metadata={"form": "interference"}), "SiO2")
    np.testing.assert_allclose(d.metadata["reciprocal"]["s_minus_1"], barns / mean_length_squared("SiO2"),
                               rtol=1e-12)


def test_a_box_fits_the_measured_curve_and_a_crystal_does_not():
    q, s = _liquid_sq()
    d = as_pdf(Dataset(q, s, None, "sq", "inv_angstrom", radiation="neutron"), "Ar")
    box = amorphous_hypothesis("Ar", 0.021, 3.7, 10.0, "given")
    terms = {t.name: t for t in hypothesis_loss(box, {"d": d}).terms if isinstance(t, DataTerm)}
    assert set(terms) == {"d", measured_name("d")}
    measured = terms[measured_name("d")]
    (structure,) = box.structures.values()
    qmin = 4 * math.pi / float(structure.cell[0, 0])  # a cubic box: 2π over half its edge
    assert box_qmin(box) == pytest.approx(qmin) and qmin <= float(measured.x[0]) < qmin + 0.02
    assert (measured.model.kind, measured.model.q_weighted, measured.pattern_form()) == ("fq", False,
                                                                                        "interference")
    assert measured.fit_scale == terms["d"].fit_scale
    np.testing.assert_allclose(measured.dataset.y, (s - 1.0)[q >= float(measured.x[0]) - 1e-9], atol=1e-12)
    ni = Structure.from_ase(bulk("Ar", "fcc", a=5.26, cubic=True))
    crystal = crystal_hypothesis(ni, "fcc Ar", "Ar", "")
    assert [t.name for t in hypothesis_loss(crystal, {"d": d}).terms if isinstance(t, DataTerm)] == ["d"]
    # the ranking counts each scale solved in closed form as a refined parameter: the box's two, the crystal's one
    assert analytic_scales(hypothesis_loss(box, {"d": d})) == 2
    assert analytic_scales(hypothesis_loss(crystal, {"d": d})) == 1


def test_the_replay_config_of_a_box_fits_the_same_curve(tmp_path):
    """What write_solution writes: the derived G(r) and the measured S(Q) − 1 files, and a config whose loss has
    the same data terms (names, range, scale rule, values at the start) as the solve's."""
    from scatterfit.config.builders import build_datasets, build_loss, build_model_structure, build_parametrisation
    from scatterfit.config.schema import load_config
    from scatterfit.report.solution import _config_text
    from scatterfit.structure.files import write_structure
    from scatterfit.structure.parametrisation import Parametrisation

    q, s = _liquid_sq()
    d = as_pdf(Dataset(q, s, None, "sq", "inv_angstrom", radiation="neutron"), "Ar")
    h = amorphous_hypothesis("Ar", 0.021, 3.7, 10.0, "given")
    (phase, box) = next(iter(h.structures.items()))
    write_structure(box, tmp_path / "box.xyz")
    np.savetxt(tmp_path / "d.gr", np.column_stack([d.x, d.y]), header=f"qmax = {d.metadata['qmax']:.6g}")
    kept = d.metadata["reciprocal"]
    np.savetxt(tmp_path / "d_measured.fq", np.column_stack([kept["q"], kept["s_minus_1"]]))
    paths = {"d": tmp_path / "d.gr", measured_name("d"): tmp_path / "d_measured.fq"}
    (tmp_path / "h01.toml").write_text(_config_text(h, {phase: "box.xyz"}, {"d": d}, paths, "h01"))
    cfg = load_config(tmp_path / "h01.toml")
    replayed = build_loss(cfg, build_datasets(cfg))
    solved = hypothesis_loss(h, {"d": d})
    mine = {t.name: t for t in solved.terms if isinstance(t, DataTerm)}
    theirs = {t.name: t for t in replayed.terms if isinstance(t, DataTerm)}
    assert set(mine) == set(theirs)
    for name in mine:
        torch.testing.assert_close(theirs[name].x, mine[name].x)
        assert theirs[name].fit_scale == mine[name].fit_scale
        assert theirs[name].weight == mine[name].weight == 0.5
    p_solve = Parametrisation(box)
    p_replay = build_parametrisation(cfg, build_model_structure(cfg), replayed)
    with torch.no_grad():
        a = solved.evaluate(p_solve.state(p_solve.initial_vector()))[1]
        b = replayed.evaluate(p_replay.state(p_replay.initial_vector()))[1]
    name = measured_name("d")
    assert b[name].breakdown["rw"] == pytest.approx(a[name].breakdown["rw"], rel=1e-5)


def test_solution_json_reports_the_box_rw_on_the_measured_curve():
    """solution.json's record of a box on S(Q) data has rw_measured beside rw (the derived G(r)'s)."""
    from scatterfit.optim.runner import evaluate
    from scatterfit.report.solution import _hypothesis_record
    from scatterfit.structure.parametrisation import Parametrisation

    q, s = _liquid_sq()
    d = as_pdf(Dataset(q, s, None, "sq", "inv_angstrom", radiation="neutron"), "Ar")
    h = amorphous_hypothesis("Ar", 0.021, 3.7, 10.0, "given")
    loss = hypothesis_loss(h, {"d": d})
    h.result = evaluate(loss, Parametrisation(next(iter(h.structures.values()))))
    h.rw = {"d": h.result.terms["d"].breakdown["rw"]}
    record = _hypothesis_record({"hypothesis": h, "bic": 0.0, "delta_bic": 0.0, "weight": 1.0}, 1)
    assert record["rw_measured"] == {"d": h.result.terms[measured_name("d")].breakdown["rw"]}
    assert 0 < record["rw_measured"]["d"] != record["rw"]["d"]

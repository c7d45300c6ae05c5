"""The information criterion, the weights and the verdict (solve/ranking.py), and the gain rule for derived
hypotheses (solve/hypotheses.check_gain), on hand-made refined hypotheses."""

import math

import pytest

from scatterfit.solve.hypotheses import Hypothesis, check_gain
from scatterfit.solve.ranking import bic, independent_points, rank, verdict


def _h(kind, label, rw, k, parents=()):
    return Hypothesis(kind, label, "X", {}, [], rw={"d": rw}, n_parameters=k, parents=list(parents))


def test_bic_weights_and_verdict():
    points = {"d": independent_points(None, 1.5, 30.0, 25.0)}
    assert points["d"] == pytest.approx(28.5 * 25 / math.pi)
    a, b, c = _h("crystal", "A", 0.10, 5), _h("crystal", "B", 0.1002, 5), _h("crystal", "C", 0.30, 5)
    assert bic(a.rw, points, 5) == pytest.approx(points["d"] * math.log(0.01) + 5 * math.log(points["d"]))
    ranked = rank([c, b, a], points)
    assert [row["hypothesis"].label for row in ranked] == ["A", "B", "C"]
    assert sum(row["weight"] for row in ranked) == pytest.approx(1.0)
    assert ranked[1]["weight"] / ranked[0]["weight"] == pytest.approx(math.exp(-0.5 * ranked[1]["delta_bic"]))
    close = verdict(ranked)
    assert close["best"] == "A" and not close["distinguishable"] and "Bragg" in close["next_measurement"]
    clear = verdict(rank([a, c], points))
    assert clear["distinguishable"] and clear["evidence"] == "strong" and "next_measurement" not in clear
    # one more parameter must pay for itself: the same Rw with k + 1 ranks lower by ln N
    more = rank([_h("crystal", "A", 0.10, 5), _h("nanoparticle", "A particle", 0.10, 6)], points)
    assert more[1]["delta_bic"] == pytest.approx(math.log(points["d"]))


def test_derived_hypotheses_must_improve_on_their_parents():
    parent = _h("crystal", "fcc Ni", 0.0391, 5)
    spurious = check_gain(_h("mixture", "fcc Ni + hcp Ni", 0.0345, 10, [parent, _h("crystal", "hcp", 0.77, 6)]))
    assert spurious.error and "not supported" in spurious.error and "12 %" in spurious.error
    real = check_gain(_h("mixture", "Si + Ni", 0.10, 10, [_h("crystal", "Si", 0.35, 5), _h("crystal", "Ni", 0.8, 5)]))
    assert real.error is None
    particle = check_gain(_h("nanoparticle", "Pt particle", 0.12, 6, [_h("crystal", "Pt", 0.30, 5)]))
    assert particle.error is None


def test_a_ranking_whose_best_leaves_most_of_the_signal_says_nothing_fits():
    from types import SimpleNamespace

    from scatterfit.solve.ranking import NO_FIT, rank, verdict

    poor = SimpleNamespace(label="box", kind="amorphous", formula="SiO2", rw={"d": 1.0}, n_parameters=3,
                           error=None, energy_per_atom=None)
    out = verdict(rank([poor], {"d": 100.0}))
    assert out["fits"] is False and out["evidence"].startswith("none")
    good = SimpleNamespace(**{**vars(poor), "rw": {"d": 0.5 * NO_FIT}, "label": "crystal"})
    assert verdict(rank([poor, good], {"d": 100.0}))["fits"] is True

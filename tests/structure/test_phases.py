"""The parametrisation of several phases: names, sharing, fractions and their bounds."""

import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.optim import Stage
from scatterfit.structure.phases import MixtureParametrisation, inverse_stick_breaking, stick_breaking


def _phases():
    return {"Si": Structure.from_ase(bulk("Si", "diamond", a=5.43)).with_uiso(0.006),
            "Ni": Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True)).with_uiso(0.005)}


def test_stick_breaking_round_trip_and_simplex():
    c = [0.2, 0.5, 0.3]
    u = torch.tensor(inverse_stick_breaking(c), dtype=torch.float64)
    assert stick_breaking(u).tolist() == pytest.approx(c, abs=1e-12)
    x = stick_breaking(torch.rand(4, dtype=torch.float64))
    assert float(x.sum()) == pytest.approx(1.0) and bool((x > 0).all())


def test_plain_groups_are_every_phase_and_dotted_ones_one_phase():
    par = MixtureParametrisation(_phases(), free=["lattice", "Ni.biso", "qdamp", "fraction"],
                                 values={"delta2": 1.0, "Ni.delta2": 2.5, "qdamp": 0.03})
    assert par.free == ["qdamp", "fraction", "Si.lattice", "Ni.lattice", "Ni.biso"]
    state = par.state(par.initial_vector())
    assert float(state.phases["Si"].params["delta2"]) == 1.0
    assert float(state.phases["Ni"].params["delta2"]) == 2.5
    assert float(state.phases["Ni"].params["qdamp"]) == pytest.approx(0.03)  # the dataset's, shared
    assert state.structure is state.phases["Si"].structure
    fractions = torch.stack([s.params["fraction"] for s in state.phases.values()])
    assert fractions.tolist() == pytest.approx([0.5, 0.5])
    report = par.report(par.initial_vector())
    assert report["fraction[Si]"] == pytest.approx(0.5)
    assert report["mass_fraction[Ni]"] == pytest.approx(58.6934 / (58.6934 + 28.0855), rel=1e-4)
    assert report["Si.a"] == pytest.approx(5.43 / 2**0.5, rel=1e-9)  # ASE's primitive diamond cell
    # a stage's plain groups expand like the parametrisation's
    assert Stage("lbfgs", free=["lattice"]).groups(par) == ["Si.lattice", "Ni.lattice"]
    assert Stage("lbfgs", free=["biso"]).groups(par) == ["Ni.biso"]  # Si's biso is not free: left out
    with pytest.raises(ScatterfitError, match="does not have free"):
        Stage("lbfgs", free=["Si.biso"]).groups(par)


def test_fractions_start_where_asked_and_stay_on_the_simplex():
    par = MixtureParametrisation(_phases(), free=["fraction"], fractions={"Si": 3.0, "Ni": 1.0})
    theta = par.initial_vector()
    assert par.fractions(theta).tolist() == pytest.approx([0.75, 0.25])
    far = par.fractions(theta + 40.0)
    assert float(far.sum()) == pytest.approx(1.0) and bool((far >= 0).all())


@pytest.mark.parametrize("kwargs, message", [
    ({"free": ["Cu.lattice"]}, "no phase 'Cu'"),
    ({"free": ["Si.qdamp"]}, "not a phase parameter"),
    ({"free": ["lattice"], "fractions": {"Cu": 1.0}}, "unknown phase"),
    ({"free": ["lattice"], "fractions": {"Si": 0.0}}, "must be > 0"),
    ({"free": ["frobnicate"]}, "unknown parameter group"),
])
def test_mistakes_are_one_line(kwargs, message):
    with pytest.raises(ScatterfitError, match=message):
        MixtureParametrisation(_phases(), **kwargs)
    with pytest.raises(ScatterfitError, match="at least two phases"):
        MixtureParametrisation({"Si": _phases()["Si"]}, free=[])

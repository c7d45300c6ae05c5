"""Every forward model and every energy model of the package passes the validators of scatterfit.testing
(shapes, batched equals one by one, float32 close to float64, gradients against finite differences, inputs
unchanged)."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from scatterfit.structure import Structure
from scatterfit.testing import check_energy_model, check_forward_model, random_box, random_cluster


def _rattled(atoms, amount=0.05, seed=0):
    atoms = atoms.copy()
    atoms.positions += np.random.default_rng(seed).normal(0, amount, atoms.positions.shape)
    return Structure.from_ase(atoms)


NI = _rattled(bulk("Ni", "fcc", a=3.52, cubic=True))
CLUSTER = random_cluster(6, numbers=(79, 29), seed=1).with_uiso(0.01)
BOX = random_box(12, 0.06, numbers=(14, 8), min_dist=1.8, seed=2).with_uiso(0.01)


def _forward_cases():
    from scatterfit.scattering.models import BoxScatteringModel, DebyeModel, PDFModel

    r = torch.arange(1.0, 6.0, 0.05, dtype=torch.float64)
    q = torch.arange(0.8, 12.0, 0.1, dtype=torch.float64)
    params = {"scale": torch.tensor(0.8, dtype=torch.float64), "qdamp": torch.tensor(0.03, dtype=torch.float64)}
    yield "pdf-crystal", PDFModel(qmax=25.0), NI, r, params
    yield "pdf-cluster", PDFModel(qmax=0.0), CLUSTER, r, params
    plain = {"scale": params["scale"]}
    for kind in ("iq", "sq", "fq", "saxs"):
        yield f"debye-{kind}", DebyeModel(kind=kind, method="exact"), CLUSTER, q, plain
    yield "debye-fast", DebyeModel(kind="iq", method="fast"), CLUSTER, q, plain
    yield "debye-gr", DebyeModel(kind="gr", qmin=0.8, qmax=15.0, method="exact"), CLUSTER, r, params
    for kind in ("sq", "fq"):
        yield f"box-{kind}", BoxScatteringModel(kind=kind), BOX, q, {}


FORWARD = list(_forward_cases())


@pytest.mark.parametrize("name, model, structure, x, params", FORWARD, ids=[c[0] for c in FORWARD])
def test_every_forward_model_passes_the_validator(name, model, structure, x, params):
    check_forward_model(model, structure, x, params=params)


def test_debye_with_q_resolution_passes_the_validator():
    """The Q resolution (qdamp) is a convolution on the data grid: on every other point it matches the full grid
    to the accuracy of that coarser quadrature (3.5e-5 of the maximum), not to rounding; within 6σ of the grid's
    ends the window is cut and renormalised, which depends on the sampling (8e-3 at the first point), so those
    points are left out."""
    from scatterfit.scattering.models import DebyeModel

    q = torch.arange(0.8, 4.0, 0.01, dtype=torch.float64)
    params = {"scale": torch.tensor(0.8, dtype=torch.float64), "qdamp": torch.tensor(0.03, dtype=torch.float64)}
    check_forward_model(DebyeModel(kind="iq", method="exact"), CLUSTER, q, params=params, subset_rtol=1e-4,
                        edge=6 * 0.03)


def _energy_cases():
    from scatterfit.energy.coulomb import DSFCoulomb
    from scatterfit.energy.pair import Buckingham, LennardJones, Morse, bks_silica
    from scatterfit.energy.registry import make_potential
    from scatterfit.energy.stillinger_weber import StillingerWeber
    from scatterfit.energy.tersoff import Tersoff

    au = random_cluster(5, numbers=(79,), min_dist=2.6, seed=3)
    yield "lennard-jones", LennardJones({"Au-Au": {"epsilon": 0.2, "sigma": 2.6}}, cutoff=6.0), au, {}
    yield "morse", Morse({"Au-Au": {"D": 0.4, "alpha": 1.6, "r0": 2.9}}, cutoff=6.0), au, {}
    yield "buckingham", Buckingham({"Au-Au": {"A": 1000.0, "rho": 0.3, "C": 20.0}}, cutoff=6.0), au, {}
    yield "coulomb", DSFCoulomb({"Na": 1, "Cl": -1}, cutoff=6.0, alpha=0.3), _rattled(
        bulk("NaCl", "rocksalt", a=5.64, cubic=True)), {}
    yield "bks", bks_silica(cutoff=6.0, coulomb_cutoff=6.0), random_box(9, 0.066, numbers=(14, 8, 8),
                                                                        min_dist=1.5, seed=4), {}
    yield "stillinger-weber", StillingerWeber(), _rattled(bulk("Si", "diamond", a=5.431)), {}
    yield "tersoff", Tersoff("Si"), _rattled(bulk("Si", "diamond", a=5.431)), {}
    yield "emt", make_potential("emt"), _rattled(bulk("Cu", "fcc", a=3.61)), {"float32_rtol": 1e-3}
    # CHGNet computes in float32 internally: its forces are checked with a larger finite-difference step
    yield "chgnet", make_potential("chgnet"), _rattled(bulk("Si", "diamond", a=5.431), 0.1), {
        "float32_rtol": None, "fd_step": 2e-3, "fd_rtol": 3e-2, "additivity_rtol": 1e-5}
    water = Structure.from_ase(molecule("H2O"))
    yield "gfn2-xtb", make_potential("xtb"), water, {"float32_rtol": 1e-5, "fd_step": 1e-4, "fd_rtol": 1e-4,
                                                     "additivity_rtol": 1e-6}


ENERGY = list(_energy_cases())


@pytest.mark.parametrize("name, model, structure, options", ENERGY, ids=[c[0] for c in ENERGY])
def test_every_energy_model_passes_the_validator(name, model, structure, options):
    check_energy_model(model, structure, **options)


def test_the_validators_catch_a_broken_model():
    """A model whose gradient is wrong, one that keeps hidden state, and one that edits its input all fail."""
    from scatterfit.scattering.models import DebyeModel

    q = torch.arange(0.8, 6.0, 0.2, dtype=torch.float64)
    good = DebyeModel(kind="iq", method="exact")

    def wrong_gradient(state, x):
        y = good(state, x)
        return y.detach() + 0.0 * state.structure.positions.sum() + (state.structure.positions ** 2).sum().detach()

    calls = {"n": 0}

    def stateful(state, x):
        calls["n"] += 1
        return good(state, x) * (1 + 1e-3 * calls["n"])

    def edits_input(state, x):
        state.structure.positions.data[0, 0] += 1e-3
        return good(state, x)

    s = random_cluster(4, seed=5)
    for bad, check in ((stateful, "repeatable"), (edits_input, "repeatable")):
        with pytest.raises(AssertionError, match=check):
            check_forward_model(bad, s, q)

    class NotAdditive:
        name = "not-additive"

        def energy(self, structure):
            return (structure.positions.sum(0) ** 2).sum()

    with pytest.raises(AssertionError, match="additive|forces"):
        check_energy_model(NotAdditive(), s)
    with pytest.raises(Exception):
        check_forward_model(wrong_gradient, s, q)

"""Debye engine: analytic dimer, exact vs fast path (values and gradients), DebyeCalculator 1.1.1 reference,
finite-difference gradient checks."""


import numpy as np
import pytest
import torch

from scatterfit import Structure
from scatterfit.scattering.debye import debye_intensity, debye_partials
from scatterfit.scattering.formfactors import ScatteringFactors
from scatterfit.scattering.transforms import pdf_from_fq, reduced_structure_factor, structure_factor
from scatterfit.testing import random_cluster

Q = torch.arange(1.0, 25.0, 0.05, dtype=torch.float64)


def test_dimer_matches_analytic_formula():
    d = 2.5
    s = Structure(torch.tensor([[0, 0, 0], [0.3, 0.4, d]], dtype=torch.float64), [6, 8], biso=torch.zeros(2))
    dist = float(s.positions[1].norm())
    f = ScatteringFactors.build([6, 8]).real(Q)
    ref = f[0] ** 2 + f[1] ** 2 + 2 * f[0] * f[1] * torch.sin(Q * dist) / (Q * dist)
    for method in ("exact", "fast"):
        i = debye_intensity(s, Q, method=method)
        assert torch.allclose(i, ref, rtol=0, atol=1e-6 * float(ref.max())), method


def test_fast_path_values_and_gradients_match_exact():
    s = random_cluster(80, numbers=(79, 28), seed=1)
    pos = s.positions.clone().requires_grad_(True)
    occ = s.occupancy.clone().requires_grad_(True)
    weights = torch.cos(Q)  # an arbitrary loss direction
    out = {}
    for method in ("exact", "fast"):
        st = s.with_(positions=pos, occupancy=occ)
        i = debye_intensity(st, Q, method=method)
        gp, go = torch.autograd.grad((i * weights).sum(), (pos, occ))
        out[method] = (i.detach(), gp, go)
    ie, gpe, goe = out["exact"]
    i_f, gpf, gof = out["fast"]
    assert float((ie - i_f).abs().max() / ie.abs().max()) < 1e-4
    assert float((gpe - gpf).norm() / gpe.norm()) < 1e-3
    assert float((goe - gof).norm() / goe.norm()) < 1e-3


def test_partials_sum_to_total():
    s = random_cluster(30, numbers=(8, 14), seed=2)
    parts = debye_partials(s, Q)
    assert set(parts) == {"O-O", "O-Si", "Si-Si", "self"}
    assert torch.allclose(sum(parts.values()), debye_intensity(s, Q))


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_gradcheck_positions_occupancy_biso(method):
    s = random_cluster(6, numbers=(6, 8), seed=3)
    q = torch.linspace(0.5, 20, 25, dtype=torch.float64)
    pos = s.positions.clone().requires_grad_(True)
    occ = (0.5 + 0.5 * torch.rand(6, dtype=torch.float64)).requires_grad_(True)
    if method == "exact":
        biso = (0.3 + torch.rand(6, dtype=torch.float64)).requires_grad_(True)
        fn = lambda p, o, b: debye_intensity(s.with_(positions=p, occupancy=o, biso=b), q, method=method)  # noqa
        assert torch.autograd.gradcheck(fn, (pos, occ, biso))
    else:  # per-species ADPs, as the fast path groups atoms by (Z, Biso)
        bspec = torch.tensor([0.4, 0.9], dtype=torch.float64, requires_grad=True)
        species = (s.numbers == 8).long()
        fn = lambda p, o, b: debye_intensity(s.with_(positions=p, occupancy=o, biso=b[species]), q,  # noqa
                                             method=method)
        assert torch.autograd.gradcheck(fn, (pos, occ, bspec))


def _dc(**kw):
    dc_mod = pytest.importorskip("debyecalculator")
    return dc_mod.DebyeCalculator(device="cpu", dtype=torch.float64, **kw)


def test_against_debyecalculator_gold_nanoparticle():
    """~1000-atom Au cluster: our I is the full double sum, DebyeCalculator's is half of it (documented)."""
    from ase.cluster import Octahedron

    atoms = Octahedron("Au", 11, cutoff=3)
    assert 800 < len(atoms) < 1300
    dc = _dc(qmin=1.0, qmax=25.0, qstep=0.05, biso=0.5, rmax=30.0, qdamp=0.0)
    q_dc, i_dc = dc.iq(atoms)
    q = torch.tensor(q_dc, dtype=torch.float64)
    s = Structure.from_ase(atoms).with_(biso=torch.full((len(atoms),), 0.5, dtype=torch.float64))
    i = debye_intensity(s, q, method="fast")
    np.testing.assert_allclose(i.numpy(), 2 * i_dc, rtol=0, atol=1e-5 * float(i.max()))
    # S(Q), F(Q), G(r): ours = 1 + 2 S_DC, 2 F_DC, 2 G_DC
    _, s_dc = dc.sq(atoms)
    _, f_dc = dc.fq(atoms)
    r_dc, g_dc = dc.gr(atoms)
    sq = structure_factor(i, s, q)
    np.testing.assert_allclose(sq.numpy() - 1, 2 * s_dc, rtol=0, atol=1e-5 * float(np.abs(2 * s_dc).max()))
    fq = reduced_structure_factor(sq, q)
    np.testing.assert_allclose(fq.numpy(), 2 * f_dc, rtol=0, atol=1e-5 * float(np.abs(2 * f_dc).max()))
    # DebyeCalculator integrates with a plain rectangle rule on the same grid, like ours on a uniform grid
    g = pdf_from_fq(fq, q, torch.tensor(r_dc, dtype=torch.float64))
    rw = float(np.sqrt(((g.numpy() - 2 * g_dc) ** 2).sum() / ((2 * g_dc) ** 2).sum()))
    assert rw < 1e-3


def test_against_debyecalculator_c60_neutron():
    from ase.build import molecule

    atoms = molecule("C60")
    dc = _dc(qmin=0.5, qmax=30.0, qstep=0.05, biso=0.0, radiation_type="neutron")
    q_dc, i_dc = dc.iq(atoms)
    q = torch.tensor(q_dc, dtype=torch.float64)
    s = Structure.from_ase(atoms).with_(biso=torch.zeros(60, dtype=torch.float64))
    i = debye_intensity(s, q, method="exact", radiation="neutron")
    # DebyeCalculator's b_c(C) table differs from periodictable's 6.6484 fm by 0.02 %: the ratio must be a
    # Q-independent constant (the physics identical), equal to 1 within that table difference
    ratio = i.numpy() / (2 * i_dc)
    assert np.std(ratio) / np.mean(ratio) < 1e-8
    assert abs(np.mean(ratio) - 1) < 5e-4


def test_sq_tends_to_one_at_high_q():
    s = random_cluster(40, numbers=(79,), seed=4).with_(biso=torch.full((40,), 1.0, dtype=torch.float64))
    q = torch.linspace(30, 40, 11, dtype=torch.float64)
    sq = structure_factor(debye_intensity(s, q), s, q)
    assert float((sq - 1).abs().max()) < 0.02


def test_a_refined_qmin_equals_the_plain_transform_at_grid_points_and_has_the_finite_difference_gradient():
    """A Debye G(r) whose transform's qmin is a refined parameter (models.DebyeModel.parameters): the extended
    grid with transforms.qmin_window (a smoothed step, so that no grid point is a kink) converges to the plain
    transform on [qmin, qmax] at second order in the grid step (whatever the model's own qmin; about 1e-3 of the
    largest value at the default 0.02 Å⁻¹ for this small cluster, whose F(Q) is large at low Q), and d G / d qmin
    matches central differences on and between grid points."""
    from scatterfit.scattering.models import DebyeModel
    from scatterfit.structure.parametrisation import State

    s = random_cluster(13, seed=3)
    r = torch.arange(1.5, 12.0, 0.05, dtype=torch.float64)
    errors = {}
    for step in (0.02, 0.01):
        plain = DebyeModel(kind="gr", qmin=0.7, qmax=20.0, qstep=step)
        g_plain = plain(State(s, {}), r)
        for start in (0.5, 0.7, 1.0):  # the model's own qmin, from which the grid is extended
            model = DebyeModel(kind="gr", qmin=start, qmax=20.0, qstep=step)
            qmin = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            g = model(State(s, {"qmin": qmin}), r).detach()
            errors[step, start] = float((g - g_plain).abs().max() / g_plain.abs().max())
    assert max(errors[0.02, start] for start in (0.5, 0.7, 1.0)) < 2e-3, errors
    for start in (0.5, 0.7, 1.0):
        assert 3.0 < errors[0.02, start] / errors[0.01, start] < 5.0, errors
    assert plain.parameters({}) == {"qmin": (0.7, 0.0, 2.0)}
    assert DebyeModel(kind="iq").parameters({}) == {}

    model = DebyeModel(kind="gr", qmin=0.5, qmax=20.0)
    weights = torch.linspace(0.5, 1.5, len(r), dtype=torch.float64)

    def loss(value, grad=False):
        qmin = torch.tensor(value, dtype=torch.float64, requires_grad=grad)
        out = (weights * model(State(s, {"qmin": qmin}), r) ** 2).sum()
        if grad:
            out.backward()
            return float(qmin.grad)
        return float(out)

    for value in (0.2, 0.557, 0.72, 0.731, 1.349):
        h = 1e-6
        numeric = (loss(value + h) - loss(value - h)) / (2 * h)
        assert loss(value, grad=True) == pytest.approx(numeric, rel=1e-6, abs=1e-9)

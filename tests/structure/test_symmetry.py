"""Point groups, site types, symmetric random clusters and the "orbits" parameter group."""

import itertools

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.symmetry import (
    detect_point_group,
    fewest_orbits,
    orbit_map,
    point_group,
    random_symmetric_cluster,
    site_types,
    symmetrise,
)

# orders and Wyckoff multiplicities of the point groups (International Tables for Crystallography, Vol. A,
# point-group tables; for I and Ih: the 12/20/30 vertices, faces and edges of the icosahedron)
ORDERS = {"C1": 1, "Ci": 2, "C2": 2, "C3": 3, "C2v": 4, "C3v": 6, "C2h": 4, "D2": 4, "D3": 6, "D2d": 8,
          "D3d": 12, "D3h": 12, "D6h": 24, "T": 12, "Th": 24, "Td": 24, "O": 24, "Oh": 48, "I": 60, "Ih": 120}
MULTIPLICITIES = {"Td": [1, 4, 6, 12, 24], "Th": [1, 6, 8, 12, 24], "Oh": [1, 6, 8, 12, 24, 24, 48],
                  "Ih": [1, 12, 20, 30, 60, 120], "I": [1, 12, 20, 30, 60], "D3h": [1, 2, 3, 6, 6, 12],
                  "C2v": [1, 2, 2, 4]}


@pytest.mark.parametrize("name", ORDERS)
def test_point_groups_are_closed_orthogonal_groups_of_the_right_order(name):
    ops = point_group(name)
    assert len(ops) == ORDERS[name]
    assert np.allclose(np.einsum("gji,gjk->gik", ops, ops), np.eye(3), atol=1e-12)
    products = np.einsum("aij,bjk->abik", ops, ops).reshape(-1, 3, 3)
    assert all(np.abs(ops - p).reshape(len(ops), -1).max(1).min() < 1e-9 for p in products)


@pytest.mark.parametrize("name", MULTIPLICITIES)
def test_site_types_have_the_tabulated_multiplicities(name):
    sites = site_types(name)
    assert [s.size for s in sites] == MULTIPLICITIES[name]
    for s in sites:  # every orbit of a generic representative has size distinct images
        r = np.array([0.31, -0.52, 0.77]) @ s.projector.T
        images = np.einsum("nij,j->ni", s.ops, r)
        if s.dim:
            assert len(np.unique(np.round(images, 8), axis=0)) == s.size


def test_unknown_group_is_a_one_line_error():
    with pytest.raises(ScatterfitError, match="unknown point group 'X7'"):
        point_group("X7")


def test_fewest_orbits_prefers_few_large_orbits_and_reports_impossible_counts():
    t, ih = site_types("T"), site_types("Ih")
    assert sorted(t[i].size for i in fewest_orbits(40, t)) == [4, 12, 12, 12]
    assert [ih[i].size for i in fewest_orbits(60, ih)] == [60]
    assert fewest_orbits(7, ih) is None
    one = fewest_orbits(1, t, origin_free=True)
    assert [t[i].dim for i in one] == [0]
    assert fewest_orbits(1, t, origin_free=False) is None


@pytest.mark.parametrize("group,counts", [("T", {74: 12, 8: 40, 15: 1}), ("Ih", {6: 60}), ("D3h", {6: 9, 1: 6})])
def test_random_symmetric_clusters_are_invariant_and_respect_the_minimum_distance(group, counts):
    pos, numbers, sym = random_symmetric_cluster(counts, group, radius=6.0, min_dist=1.0,
                                                 rng=np.random.default_rng(3))
    assert {int(z): int((numbers == z).sum()) for z in np.unique(numbers)} == counts
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(len(pos), 1)]
    assert d.min() >= 1.0
    assert np.allclose(sym.positions(np.stack([sym.transforms[sym.orbit == k][0].T @ pos[sym.orbit == k][0]
                                               for k in range(sym.n_orbits)])), pos, atol=1e-10)
    found = orbit_map(pos, numbers, group, tol=1e-8)
    assert found is not None and sorted(found.sizes) == sorted(sym.sizes)


def test_too_many_atoms_for_the_sphere_is_a_one_line_error():
    with pytest.raises(ScatterfitError, match="cannot place an orbit"):
        random_symmetric_cluster({6: 60}, "Ih", radius=1.0, min_dist=1.0, rng=np.random.default_rng(0), tries=50)
    with pytest.raises(ScatterfitError, match="7 O do not split into orbits of Ih"):
        random_symmetric_cluster({8: 7}, "Ih", radius=5.0, min_dist=1.0, rng=np.random.default_rng(0))


def test_detect_point_group_of_a_cuboctahedron_and_a_distorted_one():
    verts = np.array(sorted({tuple(a * b for a, b in zip(p, s)) for p in itertools.permutations([1, 1, 0])
                             for s in itertools.product([1, -1], repeat=3)}), dtype=float) * 2.5
    z = np.full(12, 79)
    assert detect_point_group(verts, z) == "Oh"
    sym = orbit_map(verts, z, "Oh")
    assert sym.sizes == (12,) and sym.dims == (1,)
    noisy = verts + np.random.default_rng(0).normal(scale=0.2, size=verts.shape)
    assert detect_point_group(noisy, z, tol=0.05) is None
    restored = symmetrise(noisy, sym)  # the average over the orbit is symmetric again
    assert detect_point_group(restored, z, tol=1e-8) == "Oh"


def _symmetric_structure(group="T", seed=1):
    from scatterfit.structure.builders import random_symmetric_molecule

    return random_symmetric_molecule("W12O40P", group, min_dist=1.0, density=0.1, seed=seed)


def test_orbit_parameters_keep_the_group_and_their_gradient_matches_finite_differences():
    from scatterfit.scattering.debye import debye_intensity
    from scatterfit.structure.parametrisation import Parametrisation

    s = _symmetric_structure()
    p = Parametrisation(s, free=["orbits"], bounds={"orbits": 3.0})
    theta = p.initial_vector() + 0.3 * torch.randn(p.initial_vector().shape, generator=torch.Generator().manual_seed(0),
                                                   dtype=torch.float64)
    moved = p.state(theta).structure
    assert orbit_map(moved.positions.numpy(), moved.numbers.numpy(), "T", tol=1e-9) is not None
    q = torch.linspace(0.5, 8.0, 40, dtype=torch.float64)

    def f(t):
        return debye_intensity(p.state(t).structure, q, radiation="xray").square().sum() * 1e-12

    theta = theta.requires_grad_(True)
    (grad,) = torch.autograd.grad(f(theta), theta)
    h = 1e-6
    for i in range(0, len(theta), 5):
        e = torch.zeros_like(theta)
        e[i] = h
        fd = (f(theta.detach() + e) - f(theta.detach() - e)) / (2 * h)
        assert float(grad[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_orbits_without_a_symmetry_map_is_a_one_line_error():
    from scatterfit.structure.builders import random_molecule
    from scatterfit.structure.parametrisation import Parametrisation

    with pytest.raises(ScatterfitError, match="'orbits' is free but the structure has no point-group map"):
        Parametrisation(random_molecule("C60"), free=["orbits"])


class ShellTerm:
    """A smooth loss of the geometry: every atom pulled towards a sphere of 4 Å about the origin."""

    name, weight = "shell", 1.0

    def evaluate(self, state, xmax=None):
        from scatterfit.loss import TermValue

        return TermValue(((state.structure.positions.norm(dim=1) - 4.0) ** 2).mean(), {})


def test_basin_hopping_on_orbits_keeps_the_group():
    from scatterfit.loss import Loss
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    s = _symmetric_structure("Th", seed=4)
    loss = Loss([ShellTerm()])
    p = Parametrisation(s, free=["orbits"], bounds={"orbits": 5.0})
    result = refine(loss, p, [Stage("basin", steps=4, local_steps=5, step_size=0.3)])
    out = result.structure
    assert orbit_map(out.positions.detach().numpy(), out.numbers.numpy(), "Th", tol=1e-8) is not None
    assert result.loss < float(loss.evaluate(p.state(p.initial_vector()))[0])


def test_symmetric_search_tells_an_icosahedron_from_a_cuboctahedron():
    """Simulated X-ray I(Q) of the Au13 icosahedron; the swarm knows only "Au13" and picks the point group and
    start. The icosahedron's surface atoms have six neighbours (five on the surface and the centre), the
    cuboctahedron's five."""
    from scatterfit.io import Dataset
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.optim import Stage
    from scatterfit.optim.search import CandidateEvaluator, search
    from scatterfit.optim.space import Choice, Integer, SearchSpace
    from scatterfit.scattering.debye import debye_intensity
    from scatterfit.scattering.models import DebyeModel
    from scatterfit.structure.builders import nanoparticle
    from scatterfit.structure.candidates import SymmetricMoleculeCandidates

    truth = nanoparticle("Au", "icosahedron", 1, nn_distance=2.78)
    q = torch.linspace(1.0, 12.0, 111, dtype=torch.float64)
    data = Dataset(q.numpy(), debye_intensity(truth, q, method="exact").numpy(), None, "iq", "inv_angstrom")
    loss = Loss([DataTerm(DebyeModel("iq", method="exact"), data)])
    evaluator = CandidateEvaluator(SymmetricMoleculeCandidates("Au13", min_dist=2.0, density=0.05), loss,
                                   free=["orbits", "biso"], stages=[Stage("lbfgs", steps=40, tol=1e-6)],
                                   bounds={"orbits": 4.0})
    space = SearchSpace([Choice("group", ("Oh", "Ih", "Td")), Integer("start", 0, 99)])
    res = search(evaluator, space, size=3, budget=6, stall=1, seed=0, top_k=1)
    assert res.refined.terms["data:iq"].breakdown["rw"] < 0.01
    pos = res.refined.structure.positions.detach().numpy()
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    centre = int(np.linalg.norm(pos - pos.mean(0), axis=1).argmin())
    surface_neighbours = [(d[i] < 1.15 * 2.78).sum() - 1 for i in range(13) if i != centre]
    assert surface_neighbours == [6] * 12
    from scatterfit.report.results import summary

    summary = summary(res.refined)["point_group"]  # the group the atoms were kept in, and how well
    assert summary["group"] == res.best["group"] and summary["max_deviation_A"] < 1e-8

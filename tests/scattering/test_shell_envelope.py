"""The spherical-shell characteristic function (a core–shell particle's shell phase, a hollow particle): against
the distances between random points of a shell, its solid-sphere limit, finite differences, and the G(r) of an
explicitly cut crystal shell; and the core–shell mixture's tie of the shell's hollow to the core's diameter."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.scattering.instrument import shape_envelope_shell, shape_envelope_sphere
from scatterfit.scattering.pdf import pdf, pdf_partials

F64 = torch.float64


def _t(x):
    return torch.tensor(float(x), dtype=F64)


def test_shell_envelope_is_the_distance_distribution_of_random_points_in_a_shell():
    rng = np.random.default_rng(7)
    n, n_pairs, ri, ro = 200_000, 1_500_000, 15.0, 26.0
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    radius = (ri**3 + rng.random(n) * (ro**3 - ri**3)) ** (1 / 3)  # uniform in the shell's volume
    p = v * radius[:, None]
    i, j = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    counts, edges = np.histogram(np.linalg.norm(p[i] - p[j], axis=1), bins=60, range=(0.0, 60.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    # pairs at distance r in a body: ∝ 4π r² γ0(r)
    gamma = shape_envelope_shell(torch.as_tensor(centres), _t(2 * ri), _t(ro - ri)).numpy()
    expected = centres**2 * gamma / (centres**2 * gamma).sum()
    observed = counts / counts.sum()
    noise = np.sqrt(expected / n_pairs)
    assert np.abs(observed - expected).max() < 5 * noise.max()
    assert gamma[centres > 2 * ro].max() == 0.0


def test_shell_without_hollow_is_the_solid_sphere_and_starts_at_one():
    r = torch.linspace(0.0, 50.0, 501, dtype=F64)
    torch.testing.assert_close(shape_envelope_shell(r, _t(0.0), _t(12.0)), shape_envelope_sphere(r, _t(24.0)),
                               rtol=0, atol=1e-12)
    gamma = shape_envelope_shell(r, _t(20.0), _t(5.0))
    assert float(gamma[0]) == pytest.approx(1.0, abs=1e-12)
    assert bool((gamma[1:] <= gamma[:-1] + 1e-12).all())  # a shell's γ0 falls monotonically (its hollow's rise is
    #                                                       slower than the wall's loss)


def test_shell_envelope_gradients_match_finite_differences():
    r = torch.linspace(0.3, 60.0, 300, dtype=F64)
    d = torch.tensor(21.0, dtype=F64, requires_grad=True)
    t = torch.tensor(9.0, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda dd, tt: shape_envelope_shell(r, dd, tt), (d, t))


def test_crystal_in_a_shell_envelope_matches_the_g_of_an_explicitly_cut_shell():
    """The periodic G(r) times the shell's γ0 against the G(r) of the atoms of an fcc crystal between radii 10 and
    20 Å (their own pairs, with the crystal's density times the shell's γ0 as the baseline): the envelope is the
    cut body's. A sphere envelope of the same outer size is far off."""
    a, ri, ro, biso = 3.524, 10.0, 20.0, 0.5
    ni = Structure.from_ase(bulk("Ni", "fcc", a=a, cubic=True))
    ni = ni.with_(biso=torch.full((len(ni),), biso, dtype=ni.dtype))
    big = bulk("Ni", "fcc", a=a, cubic=True) * (14, 14, 14)
    pos = big.positions - big.positions.mean(0)
    pos -= pos[np.argmin(np.linalg.norm(pos, axis=1))]  # an atom at the centre
    rad = np.linalg.norm(pos, axis=1)
    keep = (rad >= ri) & (rad < ro)
    from ase import Atoms

    shell_atoms = Atoms("Ni" * int(keep.sum()), positions=pos[keep])
    cut = Structure.from_ase(shell_atoms)
    cut = cut.with_(biso=torch.full((len(cut),), biso, dtype=cut.dtype))
    r = torch.arange(1.5, 38.0, 0.02, dtype=F64)
    rho0 = len(ni) / a**3
    gamma = shape_envelope_shell(r, _t(2 * ri), _t(ro - ri))
    explicit = pdf_partials(cut, r)["Ni-Ni"] - 4 * math.pi * rho0 * r * gamma
    model = pdf(ni, r, spdiameter=2 * ri, shell_thickness=ro - ri)
    sphere = pdf(ni, r, spdiameter=2 * ro)

    def rw(m):
        return float(torch.sqrt(((explicit - m) ** 2).sum() / (explicit**2).sum()))

    assert rw(model) < 0.03  # measured 0.011: the atoms' discreteness at the two surfaces
    assert rw(sphere) > 10 * rw(model)  # measured 0.23


def test_shell_thickness_needs_a_hollow_and_a_crystal():
    from scatterfit.structure.parametrisation import Parametrisation

    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    with pytest.raises(ScatterfitError, match="shell_thickness needs spdiameter"):
        Parametrisation(ni, free=["shell_thickness"])
    with pytest.raises(ScatterfitError, match="periodic"):
        pdf(Structure.from_ase(bulk("Ni", "fcc", a=3.524) * (2, 2, 2), pbc=False) if False else
            ni.with_(cell=None), torch.linspace(1, 5, 10, dtype=F64), spdiameter=10.0, shell_thickness=3.0)


def _core_shell(free, values, shells=None):
    from scatterfit.structure.phases import MixtureParametrisation

    cds = Structure.from_ase(bulk("CdS", "wurtzite", a=4.14, c=6.72))
    zns = Structure.from_ase(bulk("ZnS", "wurtzite", a=3.82, c=6.26))
    return MixtureParametrisation({"CdS": cds, "ZnS": zns}, free=free, values=values,
                                  shells={"ZnS": "CdS"} if shells is None else shells)


def test_core_shell_ties_the_shell_hollow_to_the_core_diameter():
    p = _core_shell(["spdiameter", "ZnS.shell_thickness"], {"CdS.spdiameter": 30.0, "ZnS.shell_thickness": 11.0})
    assert "ZnS.spdiameter" not in p.free and "CdS.spdiameter" in p.free
    theta = p.with_values(p.initial_vector(), "CdS.spdiameter", _t(240.0))
    state = p.state(theta)
    assert float(state.phases["ZnS"].params["spdiameter"]) == pytest.approx(240.0)
    assert float(state.phases["ZnS"].params["shell_thickness"]) == pytest.approx(11.0)
    assert state.phases["CdS"].params["shell_thickness"] is None
    report = p.report(theta)
    assert report["ZnS.spdiameter"] == pytest.approx(240.0) and report["ZnS.shell_thickness"] == pytest.approx(11.0)


@pytest.mark.parametrize("free, values, shells, message", [
    (["ZnS.spdiameter"], {"CdS.spdiameter": 30.0, "ZnS.shell_thickness": 5.0}, None, "hollow is its core"),
    (["CdS.spdiameter"], {"CdS.spdiameter": 30.0}, None, "ZnS.shell_thickness"),
    ([], {"ZnS.shell_thickness": 5.0}, None, "CdS.spdiameter"),
    ([], {}, {"ZnS": "PbS"}, "names no phase"),
    ([], {}, {"ZnS": "CdS", "CdS": "ZnS"}, "no shell itself"),
])
def test_core_shell_refuses_what_it_cannot_mean(free, values, shells, message):
    with pytest.raises(ScatterfitError, match=message):
        _core_shell(free, values, shells)

"""Real-space G(r) against PDFfit2 1.5.1 (the engine behind PDFgui) and analytic limits; gradient checks."""

import math
import os

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.scattering.histogram import pair_histogram
from scatterfit.scattering.pdf import pdf, pdf_partials
from scatterfit.structure.neighbours import NeighbourCache, neighbours
from scatterfit.testing import random_box, random_cluster


def _pdffit2_gr(atoms, r, uiso, *, qmax=0.0, qdamp=0.0, qbroad=0.0, delta1=0.0, delta2=0.0, spdiameter=0.0,
                mode="X"):
    """G(r) by PDFfit2 1.5.1 (a test requirement; only the reference tests need it)."""
    pdffit2 = pytest.importorskip("diffpy.pdffit2")
    from diffpy.structure import Atom, Lattice
    from diffpy.structure import Structure as DStructure

    pdffit2.redirect_stdout(open(os.devnull, "w"))
    lat = Lattice(*atoms.cell.cellpar())
    st = DStructure(lattice=lat)
    for a, f, u in zip(atoms, atoms.get_scaled_positions(wrap=False), np.broadcast_to(uiso, len(atoms))):
        at = Atom(a.symbol, f, lattice=lat)
        at.Uisoequiv = float(u)
        st.addNewAtom(at)
    pf = pdffit2.PdfFit()
    pf.add_structure(st)
    pf.read_data_lists(mode, qmax, qdamp, list(r), list(np.zeros_like(r)))
    for name, v in (("qbroad", qbroad), ("delta1", delta1), ("delta2", delta2)):
        pf.setvar(name, v)
    if spdiameter:
        pf.setvar("spdiameter", spdiameter)
    pf.calc()
    return np.array(pf.getpdf_fit())


def _rw(a, b):
    return float(np.sqrt(((a - b) ** 2).sum() / (b**2).sum()))


R = np.arange(0.01, 30.0001, 0.01)
FIT = R >= 1.5
NI_PARAMS = [dict(), dict(qdamp=0.05), dict(qbroad=0.02), dict(delta1=1.0), dict(delta2=2.0), dict(spdiameter=30.0),
             dict(qmax=25.0), dict(qmax=25.0, qdamp=0.04, delta2=2.0, qbroad=0.02)]


@pytest.mark.parametrize("params", NI_PARAMS)
def test_nickel_matches_pdffit2(params):
    """Rw between the two curves below 1e-3 on 1.5–30 Å (measured: ≤ 1.5e-4): far below the ~0.04 of a good fit."""
    atoms = bulk("Ni", "fcc", a=3.524, cubic=True)
    ref = _pdffit2_gr(atoms, R, 0.006, **params)
    s = Structure.from_ase(atoms).with_(biso=torch.full((4,), 8 * math.pi**2 * 0.006, dtype=torch.float64))
    g = pdf(s, torch.tensor(R), **params).numpy()
    assert _rw(g[FIT], ref[FIT]) < 1e-3


@pytest.mark.parametrize("mode,radiation", [("X", "xray"), ("N", "neutron")])
def test_rocksalt_matches_pdffit2(mode, radiation):
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    u = np.where(atoms.numbers == 11, 0.012, 0.008)
    ref = _pdffit2_gr(atoms, R, u, qdamp=0.03, delta2=1.0, mode=mode)
    s = Structure.from_ase(atoms).with_(biso=torch.tensor(8 * math.pi**2 * u))
    g = pdf(s, torch.tensor(R), qdamp=0.03, delta2=1.0, radiation=radiation).numpy()
    assert _rw(g[FIT], ref[FIT]) < 1e-3


def test_amorphous_box_matches_pdffit2():
    s = random_box(200, 0.05, numbers=(14, 8), seed=5)
    atoms = s.to_ase()
    r = np.arange(0.01, 12.0001, 0.01)
    ref = _pdffit2_gr(atoms, r, 0.01, mode="N")
    g = pdf(s.with_(biso=torch.full((200,), 8 * math.pi**2 * 0.01, dtype=torch.float64)), torch.tensor(r),
            radiation="neutron").numpy()
    assert _rw(g[r >= 1.0], ref[r >= 1.0]) < 1e-3


def test_cluster_in_large_box_matches_pdffit2():
    """A finite cluster (all pairs, no images) equals PDFfit2's cluster in a box too big for images to reach."""
    from ase.cluster import Octahedron

    atoms = Octahedron("Au", 5, cutoff=1)
    atoms.center(vacuum=40.0)
    atoms.pbc = True
    r = np.arange(0.01, 20.0001, 0.01)
    ref = _pdffit2_gr(atoms, r, 0.005)
    finite = Structure.from_ase(atoms).with_(cell=None, pbc=(False, False, False))
    rho0 = len(atoms) / atoms.get_volume()
    g = pdf(finite, torch.tensor(r), rho0=rho0).numpy()
    assert _rw(g[r >= 1.5], ref[r >= 1.5]) < 1e-3


def test_small_r_slope_is_minus_four_pi_rho0():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    r = torch.arange(0.05, 1.5, 0.01, dtype=torch.float64)
    g = pdf(s, r)
    slope = float(torch.linalg.lstsq(r[:, None], g[:, None]).solution)
    assert slope == pytest.approx(-4 * math.pi * float(s.number_density()), rel=1e-6)


def test_histogram_counts_every_pair_once():
    s = random_box(150, 0.05, seed=6)
    pairs = neighbours(s, 8.0)
    h = pair_histogram(s.positions, s.occupancy, torch.zeros(150, dtype=torch.long), 1, dr=0.01, n_nodes=900,
                       cell=s.cell, pairs=pairs)
    assert float(h.sum()) == pytest.approx(len(pairs.i), rel=1e-12)
    c = random_cluster(20, seed=1)
    h = pair_histogram(c.positions, c.occupancy, torch.zeros(20, dtype=torch.long), 1, dr=0.01, n_nodes=3000)
    assert float(h.sum()) == pytest.approx(20 * 19 / 2, rel=1e-12)


def test_partials_sum_and_keys():
    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    r = torch.arange(1.0, 10.0, 0.01, dtype=torch.float64)
    parts = pdf_partials(s, r, qdamp=0.02)
    assert set(parts) == {"Na-Na", "Na-Cl", "Cl-Cl", "baseline"}
    assert torch.allclose(sum(parts.values()), pdf(s, r, qdamp=0.02))


def test_neighbour_cache_reuses_list():
    """Isotropic ADPs on the CPU need no list (cell lists find the pairs at each pass); anisotropic ones take
    their pairs from the cache, which keeps its list while no atom moved more than half the skin."""
    s = random_box(100, 0.05, seed=7)
    cache = NeighbourCache(skin=1.0)
    r = torch.arange(1.0, 8.0, 0.02, dtype=torch.float64)
    pdf(s, r, neighbour_cache=cache)
    assert cache.builds == 0
    s = s.with_(uaniso=torch.diag(torch.tensor([0.004, 0.006, 0.008], dtype=torch.float64)).expand(len(s), 3, 3))
    g1 = pdf(s, r, neighbour_cache=cache)
    generator = torch.Generator().manual_seed(0)
    moved = s.positions + 0.1 * torch.rand(s.positions.shape, dtype=torch.float64, generator=generator)
    g2 = pdf(s.with_(positions=moved), r, neighbour_cache=cache)
    assert cache.builds == 1
    g3 = pdf(s.with_(positions=moved), r)
    assert torch.allclose(g2, g3, atol=1e-12) and not torch.allclose(g1, g2)


def test_gradcheck_every_parameter_periodic():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    s = Structure.from_ase(atoms)
    r = torch.arange(2.0, 7.0, 0.25, dtype=torch.float64)
    species = (s.numbers == 11).long()

    def fn(pos, cell, occ, u, scale, qdamp, qbroad, delta1, delta2, spd):
        st = s.with_(positions=pos, cell=cell, occupancy=occ, biso=8 * math.pi**2 * u[species])
        return pdf(st, r, scale=scale, qdamp=qdamp, qbroad=qbroad, delta1=delta1, delta2=delta2, spdiameter=spd,
                   qmax=20.0)

    t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    inputs = (s.positions.clone().requires_grad_(True), s.cell.clone().requires_grad_(True),
              t([0.9, 0.8]), t([0.01, 0.015]), t(1.2), t(0.04), t(0.01), t(0.2), t(0.5), t(25.0))
    assert torch.autograd.gradcheck(fn, inputs, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradcheck_finite_cluster():
    c = random_cluster(8, numbers=(79, 28), seed=2)
    r = torch.arange(1.5, 10.0, 0.25, dtype=torch.float64)
    fn = lambda p: pdf(c.with_(positions=p), r, qdamp=0.03)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (c.positions.clone().requires_grad_(True),), fast_mode=True)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("periodic", [False, True])
def test_numba_and_torch_engines_agree(periodic, threads, monkeypatch):
    """The compiled CPU kernels (serial, and split in chunks over two threads) compute the same histogram and
    gradients as the blocked torch path."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    s = random_box(60, 0.05, numbers=(14, 8), seed=8) if periodic else random_cluster(40, numbers=(79, 28), seed=8)
    pairs = neighbours(s, 7.0) if periodic else None
    types = (s.numbers == 8).long() if periodic else (s.numbers == 28).long()
    weights = torch.rand(3, 800, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = {}
    for engine in ("torch", "numba"):
        pos = s.positions.clone().requires_grad_(True)
        occ = (s.occupancy * 0.9).requires_grad_(True)
        cell = s.cell.clone().requires_grad_(True) if periodic else None
        h = pair_histogram(pos, occ, types, 2, dr=0.01, n_nodes=800, cell=cell, pairs=pairs, inverse_r=not periodic,
                           engine=engine)
        inputs = (pos, occ, cell) if periodic else (pos, occ)
        out[engine] = (h.detach(), torch.autograd.grad((h * weights).sum(), inputs))
    assert torch.allclose(out["torch"][0], out["numba"][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(out["torch"][1], out["numba"][1]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_finite_particle_baseline_uses_the_particle_envelope_and_leaves_its_peaks_alone():
    from scatterfit.scattering.instrument import shape_envelope_sphere
    from scatterfit.structure.builders import nanoparticle

    s = nanoparticle("Pt", "cuboctahedron", 2)
    r = torch.arange(1.0, 20.0, 0.05, dtype=torch.float64)
    d = torch.tensor(14.0, dtype=torch.float64, requires_grad=True)
    with_particle = pdf_partials(s, r, spdiameter=d)
    plain = pdf_partials(s, r)
    torch.testing.assert_close(with_particle["Pt-Pt"], plain["Pt-Pt"])
    rho0 = len(s) / (math.pi / 6 * 14.0**3)
    expected = -4 * math.pi * rho0 * r * shape_envelope_sphere(r, torch.tensor(14.0, dtype=torch.float64))
    torch.testing.assert_close(with_particle["baseline"].detach(), expected, rtol=1e-3, atol=1e-3)
    assert torch.autograd.gradcheck(lambda dd: pdf(s, r, spdiameter=dd), (d,))


def test_box_scattering_model_sq_fq_gr_are_one_chain():
    from scatterfit.scattering.models import BoxScatteringModel
    from scatterfit.scattering.transforms import pdf_from_fq
    from scatterfit.structure.parametrisation import State

    si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True) * (3, 3, 3))
    state = State(si, {})
    q = torch.arange(0.8, 20.0 + 1e-9, 0.02, dtype=torch.float64)
    sq = BoxScatteringModel("sq")(state, q)
    fq = BoxScatteringModel("fq")(state, q)
    torch.testing.assert_close(fq, q * (sq - 1))
    r = torch.arange(1.5, 8.0, 0.05, dtype=torch.float64)
    torch.testing.assert_close(BoxScatteringModel("gr")(state, r), pdf_from_fq(fq, q, r))
    # the strongest low-Q peak of diamond Si is the (111) reflection at 2π√3/a
    low = (q > 1.5) & (q < 2.5)
    assert float(q[low][torch.argmax(sq[low])]) == pytest.approx(2 * math.pi * math.sqrt(3) / 5.431, abs=0.05)
    with pytest.raises(ScatterfitError, match="periodic"):
        BoxScatteringModel("sq")(State(Structure(si.positions, si.numbers), {}), q)



@pytest.mark.parametrize("uiso", [0.0005, 0.002, 0.005, 0.012])
@pytest.mark.parametrize("step", [0.007, 0.01, 0.02])
def test_the_adaptive_grid_keeps_the_exact_gaussians(uiso, step):
    """The internal grid follows the narrowest peak (0.005, 0.01 or 0.02 Å, at most an eighth of its σ,
    interpolated between nodes off the data's points): G(r) of Ni stays within 3e-5 of max |G| of the exact sum of
    Gaussians over every pair, sharp or broad; within 5e-5 where the sharpest peaks (σ = 0.03 Å, 6 nodes) are
    interpolated (a step of 0.007 Å from 1 Å puts no node on the data)."""
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_uiso(uiso)
    r = torch.arange(1.0, 16.0 + 1e-9, step, dtype=torch.float64)
    nb = neighbours(s, 22.0)
    pos, cell = s.positions.numpy(), s.cell.numpy()
    d = np.linalg.norm(pos[nb.j.numpy()] - pos[nb.i.numpy()] + nb.shifts.numpy().astype(float) @ cell, axis=1)
    sigma = math.sqrt(2 * uiso)
    x = r.numpy()
    exact = sum((np.exp(-0.5 * ((x[:, None] - part[None, :]) / sigma) ** 2)).sum(1)
                for part in np.array_split(d, 16)) / (math.sqrt(2 * math.pi) * sigma)
    exact = 2 * exact / (len(s) * x) - 4 * math.pi * len(s) / abs(np.linalg.det(cell)) * x
    g = pdf(s, r).numpy()
    assert np.abs(g - exact).max() < (5e-5 if step == 0.007 and uiso < 0.001 else 3e-5) * np.abs(exact).max()

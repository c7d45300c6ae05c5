"""The forward models on a CUDA device against the same models on the CPU (float64: the CPU runs the compiled numba
kernels, the GPU the blocked torch path, so this also cross-checks two independent implementations), gradients by
finite differences on the device, and the float32 path against float64.

Marked ``gpu``: deselected by default, run with ``pytest -m gpu`` on a machine with a CUDA device.
SCATTERFIT_TEST_DEVICE=cpu runs the same file on the CPU (a dry run of the tests themselves).
"""

import math
import os

import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron

from scatterfit import Structure
from scatterfit.models import BoxScatteringModel, DebyeModel
from scatterfit.scattering.debye import debye_intensity, debye_partials
from scatterfit.scattering.pdf import pdf
from scatterfit.scattering.powder import powder_pattern
from scatterfit.scattering.saxs import saxs_intensity
from scatterfit.structure.pairs import NeighbourCache
from scatterfit.structure.parametrisation import State
from scatterfit.testing import random_box, random_cluster

CUDA = torch.device(os.environ.get("SCATTERFIT_TEST_DEVICE", "cuda"))
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")]


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-9) -> None:
    """|a − b| ≤ rel · max|b| elementwise (the scale of a pattern, not of each point)."""
    a, b = a.detach().cpu(), b.detach().cpu()
    err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
    assert err <= rel, f"max deviation {err:.2e} of the pattern's scale (allowed {rel:.0e})"


def _grad(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    fn(*leaves).pow(2).sum().backward()
    return [leaf.grad for leaf in leaves]


def _alloy_cluster(device):
    atoms = Icosahedron("Au", 3)  # 55 atoms
    atoms.numbers[::3] = 46
    s = Structure.from_ase(atoms)
    biso = torch.where(s.numbers == 79, 0.6, 0.9).to(torch.float64)
    occ = torch.linspace(0.7, 1.0, len(s), dtype=torch.float64)
    return s.with_(biso=biso, occupancy=occ).to(device)


@pytest.mark.parametrize("method", ["fast", "exact"])
@pytest.mark.parametrize("radiation", ["xray", "neutron"])
def test_debye_intensity_and_gradients_match_cpu(method, radiation):
    q = torch.arange(0.5, 20.0, 0.05, dtype=torch.float64)
    cpu, gpu = _alloy_cluster("cpu"), _alloy_cluster(CUDA)
    _close(debye_intensity(gpu, q.to(CUDA), radiation=radiation, method=method),
           debye_intensity(cpu, q, radiation=radiation, method=method))

    def fn(structure, qq):
        return lambda pos, biso, occ: debye_intensity(structure.with_(positions=pos, biso=biso, occupancy=occ), qq,
                                                      radiation=radiation, method=method)

    g_cpu = _grad(fn(cpu, q), cpu.positions, cpu.biso, cpu.occupancy)
    g_gpu = _grad(fn(gpu, q.to(CUDA)), gpu.positions, gpu.biso, gpu.occupancy)
    for a, b in zip(g_gpu, g_cpu):
        _close(a, b)


def test_debye_partials_sum_to_total_on_cuda():
    gpu = _alloy_cluster(CUDA)
    q = torch.arange(0.5, 15.0, 0.05, dtype=torch.float64, device=CUDA)
    parts = debye_partials(gpu, q)
    assert all(v.device.type == CUDA.type for v in parts.values())
    _close(sum(parts.values()), debye_intensity(gpu, q), rel=1e-12)


@pytest.mark.parametrize("kind", ["iq", "sq", "fq", "gr"])
def test_debye_model_kinds_match_cpu(kind):
    model = DebyeModel(kind=kind, qmin=0.8, qmax=20.0, qstep=0.02, lorch=True)
    x = torch.arange(1.0, 15.0, 0.01 if kind == "gr" else 0.05, dtype=torch.float64)
    params = {"scale": torch.tensor(1.3, dtype=torch.float64), "qdamp": torch.tensor(0.04, dtype=torch.float64)}
    out = []
    for dev in (CUDA, torch.device("cpu")):
        p = {k: v.to(dev) for k, v in params.items()}
        out.append(model(State(_alloy_cluster(dev), p), x.to(dev)))
        assert out[-1].device.type == dev.type
    _close(*out)


def test_saxs_matches_cpu():
    q = torch.linspace(0.01, 0.5, 200, dtype=torch.float64)
    _close(saxs_intensity(_alloy_cluster(CUDA), q.to(CUDA), scale=2.0, background=0.1),
           saxs_intensity(_alloy_cluster("cpu"), q, scale=2.0, background=0.1))


def test_periodic_pdf_every_parameter_matches_cpu():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.05, seed=1)  # off the symmetric sites, where the position gradient is zero (round-off only)
    r = torch.arange(1.5, 20.0, 0.01, dtype=torch.float64)
    kw = dict(qmax=25.0, qdamp=0.04, qbroad=0.01, delta2=0.5, spdiameter=40.0)

    def run(dev):
        s = Structure.from_ase(atoms).with_uiso(0.008).to(dev)
        cache = NeighbourCache(skin=0.5)
        fn = lambda pos, cell, biso: pdf(s.with_(positions=pos, cell=cell, biso=biso), r.to(dev),  # noqa: E731
                                         neighbour_cache=cache, **kw)
        return fn(s.positions, s.cell, s.biso), _grad(fn, s.positions, s.cell, s.biso)

    (g_gpu, d_gpu), (g_cpu, d_cpu) = run(CUDA), run("cpu")
    _close(g_gpu, g_cpu)
    for a, b in zip(d_gpu, d_cpu):
        _close(a, b)


def test_amorphous_box_pdf_and_box_scattering_match_cpu():
    box = random_box(300, 0.066, numbers=(14, 8, 8), min_dist=1.4, seed=3)
    r = torch.arange(0.5, 10.0, 0.02, dtype=torch.float64)
    _close(pdf(box.to(CUDA), r.to(CUDA), qdamp=0.03), pdf(box, r, qdamp=0.03))
    q = torch.arange(0.8, 15.0, 0.05, dtype=torch.float64)
    model = BoxScatteringModel(kind="fq", radiation="neutron")
    _close(model(State(box.to(CUDA), {}), q.to(CUDA)), BoxScatteringModel(kind="fq", radiation="neutron")(
        State(box, {}), q))


def test_powder_pattern_and_gradients_match_cpu():
    tth = torch.arange(20.0, 100.0, 0.02, dtype=torch.float64)

    def run(dev):
        s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)).with_uiso(0.01).to(dev)
        fn = lambda cell, biso: powder_pattern(s.with_(cell=cell, biso=biso), tth.to(dev),  # noqa: E731
                                               wavelength=1.5406, u=0.01, v=-0.005, w=0.01, eta=0.4)
        return fn(s.cell, s.biso), _grad(fn, s.cell, s.biso)

    (p_gpu, d_gpu), (p_cpu, d_cpu) = run(CUDA), run("cpu")
    _close(p_gpu, p_cpu)
    for a, b in zip(d_gpu, d_cpu):
        _close(a, b)


def test_gradcheck_on_cuda():
    c = random_cluster(8, numbers=(79, 28), seed=2).to(CUDA)
    q = torch.arange(1.0, 12.0, 0.5, dtype=torch.float64, device=CUDA)
    r = torch.arange(1.5, 10.0, 0.25, dtype=torch.float64, device=CUDA)
    pos = c.positions.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: debye_intensity(c.with_(positions=p), q), (pos,), fast_mode=True)
    qd = torch.tensor(0.03, dtype=torch.float64, device=CUDA, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, d: pdf(c.with_(positions=p), r, qdamp=d), (pos, qd), fast_mode=True)


def test_float32_on_cuda_within_fast_path_tolerance():
    """float32 positions (what a GPU user would pick) against the float64 exact path: the histogram still
    accumulates in float64, so the value error stays within the fast path's 1e-4 of max I(Q)."""
    atoms = Icosahedron("Au", 6)  # 309 atoms
    s = Structure.from_ase(atoms)
    q = torch.arange(1.0, 25.0, 0.05, dtype=torch.float64)
    exact = debye_intensity(s, q, method="exact")
    fast32 = debye_intensity(s.to(CUDA, torch.float32), q.to(CUDA, torch.float32))
    assert fast32.dtype == torch.float32
    _close(fast32.double(), exact, rel=1e-4)
    assert math.isfinite(float(fast32.sum()))

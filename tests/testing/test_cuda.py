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
from scatterfit.scattering.debye import debye_intensity, debye_partials
from scatterfit.scattering.models import BoxScatteringModel, DebyeModel
from scatterfit.scattering.pdf import pdf
from scatterfit.scattering.powder import powder_pattern
from scatterfit.scattering.saxs import saxs_intensity
from scatterfit.structure.neighbours import NeighbourCache
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


def test_refine_cli_on_the_device_equals_the_cpu_run(tmp_path):
    """`scatterfit refine CONFIG --device cuda`: the Ni PDF case of test_config_cli on the device reaches the
    CPU run's lattice, qdamp and Rw, writes every output, and resumes."""
    import json

    import numpy as np
    from test_config_cli import CONFIG  # noqa: I001

    from scatterfit.cli import main

    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_uiso(0.006)
    r = torch.arange(0.01, 15.0, 0.01, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.045, qmax=25.0).numpy() + 0.005 * np.random.default_rng(0).standard_normal(len(r))
    np.savetxt(tmp_path / "sim.gr", np.column_stack([r.numpy(), g]), header="mode = xray\nqmax = 25.0")
    bulk("Ni", "fcc", a=3.56, cubic=True).write(str(tmp_path / "start.cif"))
    (tmp_path / "case.toml").write_text(CONFIG)
    runs = {}
    for dev in ("cpu", str(CUDA)):
        assert main(["refine", str(tmp_path / "case.toml"), "--out", str(tmp_path / dev), "--device", dev]) == 0
        runs[dev] = json.loads((tmp_path / dev / "summary.json").read_text())
        assert (tmp_path / dev / "fit_sim.png").is_file() and (tmp_path / dev / "refined.cif").is_file()
    cpu, gpu = runs["cpu"], runs[str(CUDA)]
    assert gpu["parameters"]["a"] == pytest.approx(cpu["parameters"]["a"], abs=1e-5)
    assert gpu["parameters"]["qdamp"] == pytest.approx(cpu["parameters"]["qdamp"], abs=1e-4)
    assert gpu["terms"]["sim"]["rw"] == pytest.approx(cpu["terms"]["sim"]["rw"], abs=1e-4)
    assert main(["refine", str(tmp_path / "case.toml"), "--out", str(tmp_path / str(CUDA)), "--device", str(CUDA),
                 "--resume"]) == 0


def test_cluster_refinement_with_energy_restraints_and_basin_hops_on_the_device():
    """Positions of a cluster against a Debye I(Q), with a Lennard-Jones energy, restraints and basin hops:
    every term runs on the device and the result matches the same refinement on the CPU."""

    from scatterfit.constraints import BondAngle, Coordination, MinDistance
    from scatterfit.energy import LennardJones
    from scatterfit.io.datasets import Dataset
    from scatterfit.loss import DataTerm, EnergyTerm, Loss
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    truth = Structure.from_ase(Icosahedron("Au", 2))  # 13 atoms
    q = torch.arange(1.0, 15.0, 0.05, dtype=torch.float64)
    data = Dataset(q.numpy(), debye_intensity(truth, q).numpy(), None, "iq", "inv_angstrom")
    start = truth.with_(positions=truth.positions + 0.15 * torch.randn(13, 3, dtype=torch.float64,
                                                                        generator=torch.Generator().manual_seed(0)))
    results = []
    for dev in (CUDA, torch.device("cpu")):
        terms = [DataTerm(DebyeModel("iq"), data),
                 EnergyTerm(LennardJones({"Au-Au": {"epsilon": 0.2, "sigma": 2.57}}), weight=0.01),
                 MinDistance(2.3, weight=1.0), Coordination("Au-Au", r0=3.3, target=[3, 12], weight=0.1),
                 BondAngle("Au-Au-Au", 3.3, [50, 180], weight=0.01)]
        res = refine(Loss(terms), Parametrisation(start.to(dev), free=["positions"], bounds={"positions": 2.0}),
                     [Stage("lbfgs", steps=30), Stage("basin", steps=2, local_steps=5, step_size=0.05)])
        assert res.structure.positions.device.type == dev.type
        results.append(res)
    gpu, cpu = results
    assert gpu.terms["data:iq"].breakdown["rw"] < 0.01 and cpu.terms["data:iq"].breakdown["rw"] < 0.01
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-3)


def test_anneal_stage_runs_on_the_device_like_on_the_cpu():
    """Langevin dynamics of a periodic Lennard-Jones box with a light S(Q) data term: the random numbers come
    from a CPU generator, so the device trajectory follows the CPU one to round-off over 50 steps. No L-BFGS
    relaxation first (local_steps = 0): a line search's discrete choices could turn round-off into a different
    path."""
    import numpy as np

    from scatterfit.energy import LennardJones
    from scatterfit.io.datasets import Dataset
    from scatterfit.loss import DataTerm, EnergyTerm, Loss
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    box = random_box(64, 0.02, numbers=(18,), min_dist=3.0, seed=0)
    q = torch.arange(1.0, 10.0, 0.05, dtype=torch.float64)
    sq = BoxScatteringModel("sq")(State(box, {}), q).numpy()
    noisy = sq + 0.01 * np.random.default_rng(0).standard_normal(len(sq))  # away from Rw = 0, where the
    data = Dataset(q.numpy(), noisy, None, "sq", "inv_angstrom")              # gradient is a cone's tip
    half = 0.5 * float(box.cell[0, 0])
    results = []
    for dev in (CUDA, torch.device("cpu")):
        terms = [DataTerm(BoxScatteringModel("sq"), data, fit_scale=False, weight=0.01),
                 EnergyTerm(LennardJones({"Ar-Ar": {"epsilon": 0.0104, "sigma": 3.4}}, cutoff=8.0, r_on=7.0),
                            weight=0.01)]
        res = refine(Loss(terms), Parametrisation(box.to(dev), free=["positions"], bounds={"positions": half * 1.1}),
                     Stage("anneal", steps=50, timestep=5.0, t_start=200, t_end=50, local_steps=0),
                     seed=0)
        assert res.structure.positions.device.type == dev.type
        results.append(res)
    gpu, cpu = results
    assert torch.allclose(gpu.structure.positions.cpu(), cpu.structure.positions, atol=1e-6)

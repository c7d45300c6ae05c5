"""Particle swarm, memetic structure search, executors, checkpoint/resume and reproducibility."""

import numpy as np
import pytest
import torch

from scatterfit import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import Stage
from scatterfit.optim.pso import ParticleSwarm, minimize
from scatterfit.optim.search import CandidateEvaluator, search
from scatterfit.optim.space import Choice, Integer, Real, SearchSpace
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.builders import SHAPES, nanoparticle, random_alloy
from scatterfit.structure.candidates import ParticleCandidates


def rastrigin(c):
    x = np.array(list(c.values()))
    return float(10 * len(x) + np.sum(x * x - 10 * np.cos(2 * np.pi * x)))


def rosenbrock(c):
    x = np.array(list(c.values()))
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def mixed(c):
    return (c["n"] - 7) ** 2 + (c["x"] - 0.3) ** 2 + (0.0 if c["shape"] == "ico" else 1.0)


MIXED = SearchSpace([Integer("n", 0, 30), Real("x", -1.0, 1.0), Choice("shape", ("sphere", "cubo", "ico", "deca"))])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pso_reaches_the_optimum_of_standard_functions(seed):
    space = SearchSpace([Real(f"x{i}", -5.12, 5.12) for i in range(2)])
    r = minimize(rastrigin, space, budget=5000, target=1e-4, stall=10**6, size=30, seed=seed)
    assert r["loss"] <= 1e-4 and np.abs(list(r["best"].values())).max() < 1e-3
    space = SearchSpace([Real(f"x{i}", -2.0, 2.0) for i in range(2)])
    r = minimize(rosenbrock, space, budget=10000, target=1e-4, stall=10**6, size=30, seed=seed)
    assert r["loss"] <= 1e-4 and np.allclose(list(r["best"].values()), 1.0, atol=0.03)
    r = minimize(mixed, MIXED, budget=2000, target=1e-4, stall=10**6, size=20, seed=seed)
    assert r["best"]["n"] == 7 and r["best"]["shape"] == "ico" and abs(r["best"]["x"] - 0.3) < 0.01


def test_pso_is_reproducible_and_its_state_round_trips():
    a = minimize(mixed, MIXED, budget=400, stall=10**6, seed=5)
    b = minimize(mixed, MIXED, budget=400, stall=10**6, seed=5)
    assert a["history"] == b["history"] and a["best"] == b["best"]
    s1 = ParticleSwarm(MIXED, size=8, seed=3)
    s1.tell([mixed(c) for c in s1.ask()])
    s2 = ParticleSwarm(MIXED, size=8, seed=99)
    s2.load_state_dict(s1.state_dict())
    assert s1.ask() == s2.ask()


def test_nevergrad_engine_behind_the_same_interface():
    r = minimize(mixed, MIXED, budget=600, target=1e-3, stall=10**6, engine="nevergrad", size=20, seed=0)
    assert r["best"]["n"] == 7 and r["best"]["shape"] == "ico"


def test_search_space_errors():
    with pytest.raises(ScatterfitError, match="below"):
        Real("a", 2.0, 1.0)
    with pytest.raises(ScatterfitError, match="unique"):
        SearchSpace([Real("a", 0, 1), Integer("a", 0, 3)])
    with pytest.raises(ScatterfitError, match="unknown kind"):
        SearchSpace.from_config({"a": {"kind": "fuzzy"}})
    with pytest.raises(ScatterfitError, match="twice"):
        swarm = ParticleSwarm(MIXED, size=4)
        swarm.ask()
        swarm.ask()


def particle_problem(element, shape, size, nn, rmax=15.0, noise=0.005, seed=0):
    """Noisy simulated G(r) of a particle; the evaluator knows only the element."""
    truth = nanoparticle(element, shape, size, nn_distance=nn)
    truth = truth.with_(biso=torch.full((len(truth),), 0.6, dtype=torch.float64))
    r = torch.arange(1.5, rmax, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.03, qmax=25.0)
    sigma = noise * float(g.abs().max())
    rng = np.random.default_rng(seed)
    data = Dataset(r.numpy(), g.numpy() + sigma * rng.standard_normal(len(r)), np.full(len(r), sigma), "gr",
                   "angstrom")
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    evaluator = CandidateEvaluator(ParticleCandidates(element), loss, free=["expansion", "biso"],
                                   stages=[Stage("lbfgs", steps=5, tol=1e-4, patience=1)], values={"qdamp": 0.03})
    return truth, evaluator


def test_search_recovers_shape_and_atom_count_of_a_small_particle(tmp_path):
    truth, evaluator = particle_problem("Au", "cuboctahedron", 2, 2.884)
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 3)])
    res = search(evaluator, space, size=10, budget=18, stall=4, seed=0, top_k=2,
                 final_stages=[Stage("lbfgs", steps=30)])
    assert res.best == {"shape": "cuboctahedron", "size": 2}
    assert len(res.refined.structure) == 55
    assert res.refined.terms["data:gr"].breakdown["rw"] <= 0.05
    from scatterfit.report.results import write_search

    write_search(res, tmp_path)
    assert (tmp_path / "search.json").is_file() and (tmp_path / "search_history.png").is_file()


def test_search_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    _, evaluator = particle_problem("Au", "icosahedron", 1, 2.884, rmax=10.0)
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 2)])
    kwargs = dict(size=6, budget=12, stall=100, seed=3, top_k=1)
    full = search(evaluator, space, **kwargs)

    class Kill(Exception):
        pass

    def kill(generation, best):
        if generation == 1:
            raise Kill

    with pytest.raises(Kill):
        search(evaluator, space, checkpoint=tmp_path / "s.pt", on_generation=kill, **kwargs)
    resumed = search(evaluator, space, checkpoint=tmp_path / "s.pt", resume=True, **kwargs)
    assert resumed.history == full.history and resumed.best == full.best
    assert resumed.evaluations == full.evaluations and resumed.top == full.top
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ScatterfitError, match="not a readable scatterfit checkpoint"):
        search(evaluator, space, checkpoint=tmp_path / "bad.pt", resume=True, **kwargs)


def test_search_on_a_local_two_worker_dask_cluster_equals_serial():
    pytest.importorskip("dask.distributed")
    _, evaluator = particle_problem("Au", "icosahedron", 1, 2.884, rmax=10.0)
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 2)])
    kwargs = dict(size=6, budget=12, stall=100, seed=1, top_k=1)
    serial = search(evaluator, space, **kwargs)
    dask = search(evaluator, space, executor="dask-local:2", **kwargs)
    # the same candidates in the same order; losses agree to the last bits (worker processes may round the
    # final ulp differently)
    assert dask.best == serial.best and dask.evaluations == serial.evaluations
    assert [t["candidate"] for t in dask.top] == [t["candidate"] for t in serial.top]
    np.testing.assert_allclose(dask.history, serial.history, rtol=1e-12)


@pytest.mark.ray
def test_search_on_a_local_two_worker_ray_runtime_equals_serial():
    """Ray is an optional extra (scatterfit[ray], 240 MB): run by `make test-all`, which installs it."""
    pytest.importorskip("ray")
    _, evaluator = particle_problem("Au", "icosahedron", 1, 2.884, rmax=10.0)
    space = SearchSpace([Choice("shape", SHAPES), Integer("size", 1, 2)])
    kwargs = dict(size=6, budget=12, stall=100, seed=1, top_k=1)
    serial = search(evaluator, space, **kwargs)
    ray_run = search(evaluator, space, executor="ray-local:2", **kwargs)
    assert ray_run.best == serial.best and ray_run.evaluations == serial.evaluations
    assert [t["candidate"] for t in ray_run.top] == [t["candidate"] for t in serial.top]
    np.testing.assert_allclose(ray_run.history, serial.history, rtol=1e-12)


def test_executor_specs():
    from scatterfit.optim.executor import SerialExecutor, make_executor

    assert isinstance(make_executor(None), SerialExecutor)
    with pytest.raises(ScatterfitError, match="unknown executor"):
        make_executor("cloud:5")
    with pytest.raises(ScatterfitError, match="integer"):
        make_executor("processes:two")


def test_candidate_errors_are_infinite_losses_not_crashes():
    _, evaluator = particle_problem("Au", "icosahedron", 1, 2.884, rmax=8.0)
    out = evaluator(({"shape": "icosahedron", "size": 99}, ("x",)))
    assert out["loss"] == float("inf") and "size" in out["error"]


def test_alloy_builder_fraction():
    s = random_alloy(nanoparticle("Pt", "cuboctahedron", 3), {"Pt": 0.3, "Ni": 0.7}, seed=1)
    assert int((s.numbers == 78).sum()) == round(0.3 * 147)


SEARCH_CONFIG = """
[[datasets]]
name = "np"
file = "{data}"

[[terms]]
dataset = "np"
model = "pdf"
qmax = 25.0

[parameters]
free = ["expansion", "biso"]
values = {{ qdamp = 0.03 }}

[search]
builder = "nanoparticle"
builder_args = {{ element = "Au" }}
variables.shape = {{ kind = "choice", options = ["icosahedron", "cuboctahedron", "decahedron"] }}
variables.size = {{ kind = "integer", low = 1, high = 2 }}
swarm_size = 6
budget = 6
top_k = 1

[[strategy]]
optimizer = "lbfgs"
steps = 20
"""


def test_search_from_a_config_file_and_the_cli(tmp_path, capsys):
    from scatterfit.cli import main

    truth = nanoparticle("Au", "decahedron", 1, nn_distance=2.884)
    r = torch.arange(1.5, 10.0, 0.02, dtype=torch.float64)
    np.savetxt(tmp_path / "np.gr", np.column_stack([r.numpy(), pdf(truth, r, qdamp=0.03, qmax=25.0).numpy()]))
    (tmp_path / "np.toml").write_text(SEARCH_CONFIG.format(data=tmp_path / "np.gr"))
    assert main(["refine", str(tmp_path / "np.toml"), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "'shape': 'decahedron', 'size': 1" in text.splitlines()[1]
    assert (tmp_path / "out" / "search.json").is_file() and (tmp_path / "out" / "refined.xyz").is_file()
    bad = SEARCH_CONFIG.format(data=tmp_path / "np.gr").replace('builder = "nanoparticle"', 'builder = "crystal"')
    (tmp_path / "bad.toml").write_text(bad)
    assert main(["refine", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "bad")]) == 2
    assert "[search].builder: 'crystal' is not one of" in capsys.readouterr().err


class ConstantTerm:
    """A term worth 5 whatever the structure: visible in the base loss, gone when a stage weights it 0."""

    name, weight = "constant", 1.0

    def evaluate(self, state, xmax=None):
        from scatterfit.loss import TermValue

        return TermValue(torch.tensor(5.0, dtype=torch.float64), {})


def test_finalists_are_ranked_by_the_loss_of_the_last_final_stage():
    truth, evaluator = particle_problem("Au", "cuboctahedron", 2, 2.884)
    evaluator.loss = Loss([*evaluator.loss.terms, ConstantTerm()])
    space = SearchSpace([Choice("shape", ("cuboctahedron", "icosahedron")), Integer("size", 2, 2)])
    res = search(evaluator, space, size=2, budget=2, stall=1, seed=0, top_k=2,
                 final_stages=[Stage("lbfgs", steps=5, weights={"constant": 0.0})])
    assert all(entry["loss"] > 5 for entry in res.top)  # the swarm saw the base weights
    assert all(entry["final_loss"] < 1 for entry in res.top)  # the finalists, the last stage's
    assert res.loss == min(entry["final_loss"] for entry in res.top)


CRYSTAL_PARTICLE = """
[[datasets]]
name = "np"
file = "cdse_np.gr"

[[terms]]
kind = "data"
dataset = "np"
model = "pdf"
qmax = 25.0

[parameters]
free = ["biso"]

[search]
builder = "crystal_particle"
builder_args = { file = "cdse.cif", uiso = 0.008 }
variables.diameter = { kind = "real", low = 18.0, high = 42.0 }
swarm_size = 8
budget = 16
stall = 3
top_k = 2
inner_steps = 3
seed = 1

[[strategy]]
optimizer = "lbfgs"
steps = 20
"""


def test_a_particle_of_any_crystal_is_cut_and_sized_by_the_search(tmp_path, capsys):
    """Wurtzite CdSe (a binary from a CIF, not an fcc/bcc element): a 30 Å sphere's PDF with noise; the search over
    the diameter finds it within 10 %."""
    import json

    from ase.build import bulk

    from scatterfit.cli import main
    from scatterfit.structure import read_structure
    from scatterfit.structure.particles import cut_particle

    bulk("CdSe", "wurtzite", a=4.30, c=7.01, u=0.375).write(str(tmp_path / "cdse.cif"))
    truth = cut_particle(read_structure(tmp_path / "cdse.cif"), 30.0).with_uiso(0.008)
    assert sorted(set(truth.symbols)) == ["Cd", "Se"] and 480 < len(truth) < 520
    r = torch.arange(1.5, 35.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qmax=25.0).numpy() + 0.01 * np.random.default_rng(0).standard_normal(len(r))
    np.savetxt(tmp_path / "cdse_np.gr", np.column_stack([r.numpy(), g]))
    (tmp_path / "s.toml").write_text(CRYSTAL_PARTICLE)
    assert main(["refine", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "search.json").read_text())
    assert record["best"]["diameter"] == pytest.approx(30.0, rel=0.1)


STACKED_PARTICLE = CRYSTAL_PARTICLE.replace('builder = "crystal_particle"', 'builder = "stacked_particle"').replace(
    'uiso = 0.008 }', 'uiso = 0.008, ensemble = 16 }').replace(
    'variables.diameter = { kind = "real", low = 18.0, high = 42.0 }',
    'variables.diameter = { kind = "real", low = 18.0, high = 42.0 }\n'
    'variables.fault_probability = { kind = "real", low = 0.0, high = 1.0 }').replace(
    "budget = 16", "budget = 96").replace("swarm_size = 8", "swarm_size = 16").replace("stall = 3", "stall = 6")


@pytest.mark.slow  # about 5 min: 96 candidates of 16 particles (8,000 atoms) each
def test_a_faulted_wurtzite_particle_is_recovered_by_the_search(tmp_path):
    """A sample of 30 Å wurtzite CdSe particles with stacking faults drawn at p = 0.3 (sixteen particles, their own
    random numbers; the search's candidates are ensembles of sixteen drawn from other ones): from their PDF with
    noise the search over diameter and fault probability finds the size within 10 % and p within 0.1."""
    import json

    from ase.build import bulk

    from scatterfit.cli import main
    from scatterfit.structure import read_structure
    from scatterfit.structure.stacking import layers_of, stacked_particle, stacking_sequence

    bulk("CdSe", "wurtzite", a=4.30, c=7.01, u=0.375).write(str(tmp_path / "cdse.cif"))
    layers = layers_of(read_structure(tmp_path / "cdse.cif"))
    from scatterfit.structure.candidates import side_by_side

    sequences = [stacking_sequence(12, "h", 0.3, seed=100 + k) for k in range(16)]
    truth = side_by_side([stacked_particle(layers, q, 30.0) for q in sequences], 600.0).with_uiso(0.008)
    r = torch.arange(1.5, 35.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qmax=25.0).numpy() + 0.01 * np.random.default_rng(0).standard_normal(len(r))
    np.savetxt(tmp_path / "cdse_np.gr", np.column_stack([r.numpy(), g]))
    (tmp_path / "s.toml").write_text(STACKED_PARTICLE)
    assert main(["refine", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    best = json.loads((tmp_path / "out" / "search.json").read_text())["best"]
    assert best["diameter"] == pytest.approx(30.0, rel=0.1)
    assert abs(best["fault_probability"] - 0.3) < 0.1


def test_failed_candidates_are_listed_with_their_messages():
    """Candidates the builder cannot make (size 50 is beyond the nanoparticle builder's 40 shells) are counted and
    listed with their errors, for search.json."""
    _, evaluator = particle_problem("Au", "icosahedron", 1, 2.884, rmax=8.0)
    space = SearchSpace([Choice("shape", ("icosahedron",)), Choice("size", (1, 2, 45, 50))])
    res = search(evaluator, space, size=6, budget=8, stall=2, seed=0, top_k=1)
    assert res.failed == len(res.failures) > 0
    assert all("size" in f["error"] and f["candidate"]["size"] > 40 for f in res.failures)

"""Refinement: recovery of known parameters from simulated data, checkpoint/resume, and the Ni fit against the
PDFfit2 reference run in the same session."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from conftest import cmi_file
from scatterfit import ScatterfitError, Structure
from scatterfit.io import Dataset, load_dataset
from scatterfit.loss import DataTerm, Loss
from scatterfit.optim import Stage, refine
from scatterfit.scattering.models import PDFModel
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.parametrisation import Parametrisation

STAGES = [Stage("lbfgs", free=["lattice", "biso"], steps=40, xmax=5.0), Stage("lbfgs", steps=40, xmax=12.0),
          Stage("lbfgs", steps=150)]


def _simulated_ni(noise=0.01, seed=0):
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.5240, cubic=True)).with_(
        biso=torch.full((4,), 0.50, dtype=torch.float64))
    r = torch.arange(1.0, 20.0, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.04, delta2=1.5, qmax=25.0)
    rng = np.random.default_rng(seed)
    y = g.numpy() + noise * rng.standard_normal(len(r))
    return Dataset(r.numpy(), y, np.full(len(r), noise), "gr", "angstrom")


def test_recovers_lattice_and_biso_from_noisy_simulation():
    data = _simulated_ni()
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.58, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    res = refine(loss, Parametrisation(start, free=["lattice", "biso", "qdamp", "delta2"]), STAGES)
    p = res.parameters()
    assert abs(p["a"] - 3.5240) < 1e-3
    assert abs(p["Biso_Ni"] - 0.50) / 0.50 < 0.05
    assert abs(p["qdamp"] - 0.04) < 0.004


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    data = _simulated_ni(seed=1)
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.55, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    stages = [Stage("adam", free=["lattice"], steps=12, lr=0.02), Stage("lbfgs", steps=10)]
    make = lambda: Parametrisation(start, free=["lattice", "biso"])  # noqa: E731
    full = refine(loss, make(), stages)

    class Kill(Exception):
        pass

    def killer(stage, step, value, terms):
        if stage == 1 and step == 4:
            raise Kill

    ck = tmp_path / "ck.pt"
    with pytest.raises(Kill):
        refine(loss, make(), stages, checkpoint=ck, checkpoint_every=2, observers=[killer])
    resumed = refine(loss, make(), stages, checkpoint=ck, checkpoint_every=2, resume=True)
    assert torch.allclose(resumed.theta, full.theta, atol=1e-10)
    assert resumed.history == pytest.approx(full.history, rel=1e-10)


def test_bad_settings():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52))
    with pytest.raises(ScatterfitError, match="unknown parameter group"):
        Parametrisation(s, free=["lattices"])
    with pytest.raises(ScatterfitError, match="optimizer"):
        Stage("sgd")
    with pytest.raises(ScatterfitError, match="metric"):
        DataTerm(PDFModel(), _simulated_ni(), metric="r2")


@pytest.mark.parametrize("with_qbroad", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_nickel_fit_matches_pdffit2(with_qbroad):
    """Our fit from a = 3.60 Å and PDFfit2's (run here, same data and range) reach the same minimum."""
    pytest.importorskip("diffpy.pdffit2")
    from scatterfit.testing import pdffit2_nickel_reference

    path = cmi_file("pdf/ch03NiModelling/data/Ni.gr")
    data = load_dataset(path)
    ref = pdffit2_nickel_reference(data, qbroad=with_qbroad)
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.60, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, xmin=1.5, xmax=30.0)])
    free = ["lattice", "biso", "qdamp", "delta2"] + (["qbroad"] if with_qbroad else [])
    res = refine(loss, Parametrisation(start, free=free), STAGES)
    ours = res.terms[loss.terms[0].name].breakdown["rw"]
    p = res.parameters()
    assert abs(p["a"] - ref["a"]) < 0.002
    assert ours <= (0.029 if with_qbroad else 0.045)
    assert ours <= ref["rw"] + 1e-3
    assert abs(p["Uiso_Ni"] - ref["uiso"]) < 0.05 * ref["uiso"]
    assert abs(p["qdamp"] - ref["qdamp"]) < 0.05 * ref["qdamp"]
    # standard uncertainties from the Jacobian at the minimum, in PDFfit2's convention (σ = 1, not scaled by the
    # goodness of fit), against the esds PDFfit2 prints (two significant digits)
    from scatterfit.optim.uncertainty import uncertainties

    errors = uncertainties(loss, res.parametrisation, res.theta)
    ours = errors["esd_unscaled"]
    for name, key in (("a", "a"), ("Uiso_Ni", "uiso"), ("qdamp", "qdamp"), ("delta2", "delta2"),
                      (f"scale[{loss.terms[0].name}]", "scale")):
        assert ours[name] == pytest.approx(ref["esd"][key], rel=0.08), name
    assert errors["esd"]["a"] == pytest.approx(ours["a"] * errors["reduced_chi2"] ** 0.5, rel=1e-12)


def test_uncertainty_of_a_scale_alone_is_analytic():
    """Only the analytic scale s free: its esd is √(χ²_red / Σ y_model²) (unit weights) and √(1/Σ y²/σ²)
    unscaled with σ."""
    from scatterfit.optim.uncertainty import uncertainties
    data = _simulated_ni(noise=0.02, seed=3)
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.5240, cubic=True)).with_(biso=torch.full((4,), 0.5,
                                                                                          dtype=torch.float64))
    model = PDFModel(qmax=25.0)
    loss = Loss([DataTerm(model, data, name="sim")])
    param = Parametrisation(s, free=[], values={"qdamp": 0.04, "delta2": 1.5})  # the simulation's values
    errors = uncertainties(loss, param, param.initial_vector())
    y_model = model(param.state(param.initial_vector()), torch.as_tensor(data.x)).numpy()
    w = 1 / data.sigma**2
    assert errors["esd_unscaled"]["scale[sim]"] == pytest.approx((1 / (w * y_model**2).sum()) ** 0.5, rel=1e-9)
    assert errors["reduced_chi2"] == pytest.approx(1.0, abs=0.1)  # σ is the noise that was added


def test_recovers_anisotropic_cell():
    """Free a, b, c, α, β, γ: an orthorhombic distortion of rock salt comes back to 1e-3 Å and 0.05°."""
    from ase.geometry import cellpar_to_cell

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    truth_atoms = atoms.copy()
    truth_atoms.set_cell(cellpar_to_cell([5.60, 5.70, 5.66, 90, 90, 90]), scale_atoms=True)
    truth = Structure.from_ase(truth_atoms)
    r = torch.arange(1.5, 15.0, 0.02, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    loss = Loss([DataTerm(PDFModel(), data)])
    # a cubic start is a symmetric point (the three axes get the same gradient): start slightly anisotropic
    start_atoms = atoms.copy()
    start_atoms.set_cell(cellpar_to_cell([5.63, 5.65, 5.64, 90, 90, 90]), scale_atoms=True)
    param = Parametrisation(Structure.from_ase(start_atoms), free=["cell"], values={"qdamp": 0.02})
    res = refine(loss, param, [Stage("lbfgs", steps=150, xmax=6.0), Stage("lbfgs", steps=150, tol=1e-14)])
    p = res.parameters()
    assert [p["a"], p["b"], p["c"]] == pytest.approx([5.60, 5.70, 5.66], abs=1e-3)
    assert [p["alpha"], p["beta"], p["gamma"]] == pytest.approx([90, 90, 90], abs=0.05)


def test_cell_bounds_per_parameter_pin_the_angles():
    """bounds.cell as a table: lengths in Å and angles in degrees separately; angles pinned to 90 ± 0.01° stay
    there while the lengths refine, and one pair for all six is refused."""
    from ase.geometry import cellpar_to_cell

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    truth_atoms = atoms.copy()
    truth_atoms.set_cell(cellpar_to_cell([5.60, 5.70, 5.66, 90, 90, 89.4]), scale_atoms=True)
    r = torch.arange(1.5, 12.0, 0.02, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(Structure.from_ase(truth_atoms), r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    loss = Loss([DataTerm(PDFModel(), data)])
    start_atoms = atoms.copy()
    start_atoms.set_cell(cellpar_to_cell([5.63, 5.65, 5.64, 90, 90, 90]), scale_atoms=True)
    pinned = {name: (89.99, 90.01) for name in ("alpha", "beta", "gamma")}
    param = Parametrisation(Structure.from_ase(start_atoms), free=["cell"], values={"qdamp": 0.02},
                            bounds={"cell": {"a": (5.5, 5.8), "b": (5.5, 5.8), "c": (5.5, 5.8), **pinned}})
    p = refine(loss, param, [Stage("lbfgs", steps=100, xmax=6.0), Stage("lbfgs", steps=100)]).parameters()
    assert all(89.99 <= p[k] <= 90.01 for k in ("alpha", "beta", "gamma"))  # γ would go to 89.4 if free
    with pytest.raises(ScatterfitError, match="not one \\[lo, hi\\] pair"):
        Parametrisation(Structure.from_ase(start_atoms), free=["cell"], bounds={"cell": (5.0, 6.0)})
    with pytest.raises(ScatterfitError, match="lies outside"):
        Parametrisation(Structure.from_ase(start_atoms), free=["cell"], bounds={"cell": {"gamma": (91, 92)}})


def test_recovers_positions_of_distorted_crystal():
    """Atoms of a distorted rock-salt cell (random 0.1 Å displacements, sharp peaks: Biso 0.1 Å²) come back to
    0.01 Å from a start 0.03 Å away. A periodic PDF cannot tell a structure from its translated or inverted copy,
    so the comparison is made after removing the mean displacement and against both the truth and its inversion
    image."""
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    ideal = Structure.from_ase(atoms).with_(biso=torch.full((8,), 0.1, dtype=torch.float64))
    gen = torch.Generator().manual_seed(3)
    shift = 0.1 * torch.randn(ideal.positions.shape, dtype=torch.float64, generator=gen)
    truth = ideal.with_(positions=ideal.positions + shift)
    r = torch.arange(1.5, 20.0, 0.01, dtype=torch.float64)
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    start = truth.with_(positions=truth.positions + 0.03 * torch.randn(shift.shape, dtype=torch.float64,
                                                                       generator=gen))
    loss = Loss([DataTerm(PDFModel(), data)])
    param = Parametrisation(start, free=["positions"], values={"qdamp": 0.02})
    res = refine(loss, param, Stage("lbfgs", steps=300, tol=1e-14))
    got = res.structure.positions - ideal.positions
    want = shift
    err = min(float(((got - got.mean(0)) - (want - want.mean(0))).norm(dim=1).max()),
              float(((got - got.mean(0)) + (want - want.mean(0))).norm(dim=1).max()))
    assert err < 0.01


def test_cell_parametrisation_gradcheck():
    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64))
    r = torch.arange(2.0, 6.0, 0.25, dtype=torch.float64)
    param = Parametrisation(s, free=["cell", "fractional"])
    theta = param.initial_vector().clone() + 0.01
    fn = lambda t: pdf(param.state(t).structure, r, qdamp=0.03)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (theta.requires_grad_(True),), fast_mode=True)


def test_background_polynomial_is_refined():
    """A quadratic background added to simulated G(r) is recovered along with the lattice."""
    data = _simulated_ni(noise=0.005, seed=2)
    lo, hi = data.x[0], data.x[-1]
    t = (2 * data.x - (lo + hi)) / (hi - lo)
    coeffs = [0.3, -0.2, 0.5]  # Chebyshev: T0 = 1, T1 = t, T2 = 2t² − 1
    data = data.with_(y=data.y + coeffs[0] + coeffs[1] * t + coeffs[2] * (2 * t**2 - 1))
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.53, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data)])
    param = Parametrisation(start, free=["lattice", "biso", "qdamp", "delta2", "background"],
                            bounds={"background": (-5.0, 5.0)})
    res = refine(loss, param, STAGES)
    p = res.parameters()
    assert abs(p["a"] - 3.524) < 1e-3
    assert p["background"] == pytest.approx(coeffs, abs=0.02)


def test_stage_weights_switch_terms_off_and_must_name_real_terms():
    data = _simulated_ni(seed=2)
    start = Structure.from_ase(bulk("Ni", "fcc", a=3.55, cubic=True))
    loss = Loss([DataTerm(PDFModel(qmax=25.0), data, name="ni")])
    res = refine(loss, Parametrisation(start, free=["lattice"]), [Stage("lbfgs", steps=5, weights={"ni": 0.0})])
    assert res.parameters()["a"] == pytest.approx(3.55, abs=1e-9)  # nothing to fit: the lattice stays
    with pytest.raises(ScatterfitError, match="unknown term"):
        refine(loss, Parametrisation(start, free=["lattice"]), [Stage("lbfgs", steps=5, weights={"nope": 1.0})])
    # a term whose own weight is 0 (switched on only by some stages) still appears in the final report
    off = DataTerm(PDFModel(qmax=25.0), data, name="off", weight=0.0)
    res = refine(Loss([DataTerm(PDFModel(qmax=25.0), data, name="ni"), off]), Parametrisation(start, free=["lattice"]),
                 [Stage("lbfgs", steps=5)])
    assert set(res.terms) == {"ni", "off"}
    assert res.loss == pytest.approx(float(res.terms["ni"].value), rel=1e-12)


def test_rw_gradient_at_a_perfect_fit_is_zero_not_nan():
    from scatterfit.loss import rw

    y = torch.linspace(1.0, 2.0, 20, dtype=torch.float64)
    calc = y.clone().requires_grad_(True)
    value = rw(y, calc)
    value.backward()
    assert float(value) < 1e-140 and torch.equal(calc.grad, torch.zeros_like(y))
    calc = (y + 0.01).requires_grad_(True)
    rw(y, calc).backward()
    assert torch.isfinite(calc.grad).all() and float(calc.grad.abs().sum()) > 0


def test_parameters_the_data_do_not_move_are_reported_undetermined():
    """Cell angles at exactly 90° are a stationary point of a powder PDF (±δ give the same distances): no esd is
    invented for them, and they do not show up as perfectly correlated."""
    from ase.geometry import cellpar_to_cell

    from scatterfit.optim.uncertainty import uncertainties

    def nacl(cellpar):
        atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
        atoms.set_cell(cellpar_to_cell(cellpar), scale_atoms=True)
        return Structure.from_ase(atoms)

    r = torch.arange(1.5, 12.0, 0.02, dtype=torch.float64)
    truth = nacl([5.60, 5.70, 5.66, 90, 90, 89.4])
    data = Dataset(r.numpy(), pdf(truth, r, qdamp=0.02).numpy(), None, "gr", "angstrom")
    loss = Loss([DataTerm(PDFModel(), data)])
    param = Parametrisation(nacl([5.63, 5.65, 5.64, 90, 90, 90]), free=["cell"], values={"qdamp": 0.02})
    errors = uncertainties(loss, param, refine(loss, param, Stage("lbfgs", steps=60)).theta)
    assert errors["undetermined"] == ["alpha", "beta", "gamma"]
    assert {"a", "b", "c"} <= set(errors["esd"]) and not errors["high_correlations"]


def test_the_analytic_scale_is_never_negative():
    """A model that matches the data only upside down gets scale 0 and Rw 1, not a negative scale that would
    make it look right (a random silica box once fitted the NIMROD data to Rw 0.097 at scale −7.6)."""
    from scatterfit.loss import optimal_scale, rw

    x = torch.linspace(0, 10, 200, dtype=torch.float64)
    data = torch.sin(x)
    assert float(optimal_scale(data, 2 * torch.sin(x))) == pytest.approx(0.5)
    upside_down = -torch.sin(x)
    s = optimal_scale(data, upside_down)
    assert float(s) == 0.0
    assert float(rw(data, s * upside_down)) == pytest.approx(1.0)

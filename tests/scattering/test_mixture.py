"""Phase mixtures: the phases' weights from their atom fractions, checked on mixtures whose answer is known
without them (one crystal described by two cells of different size must give that crystal's pattern at any
fractions), and their gradients by finite differences."""

import pytest
import torch
from ase.build import bulk, make_supercell

from scatterfit import ScatterfitError, Structure
from scatterfit.scattering.mixture import PhaseMixture, mean_scattering_length, phase_weights
from scatterfit.scattering.models import BoxScatteringModel, DebyeModel, PDFModel, PowderModel
from scatterfit.scattering.powder import PowderSetup
from scatterfit.structure.phases import MixtureParametrisation


def _two_cells_of_one_crystal():
    """NaCl as its 8-atom conventional cell and as a 2×1×1 supercell of it (16 atoms, twice the volume)."""
    small = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)).with_uiso(0.008)
    big = Structure.from_ase(make_supercell(bulk("NaCl", "rocksalt", a=5.64, cubic=True),
                                            [[2, 0, 0], [0, 1, 0], [0, 0, 1]])).with_uiso(0.008)
    return small, big


def _state(structures, fractions, free=("fraction",)):
    par = MixtureParametrisation(dict(zip(("A", "B"), structures)), free=list(free),
                                 fractions=dict(zip(("A", "B"), fractions)))
    return par, par.state(par.initial_vector())


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.1), (0.2, 0.8)])
def test_one_crystal_in_two_cells_gives_its_own_pdf_and_powder_pattern(fractions):
    small, big = _two_cells_of_one_crystal()
    _, state = _state((small, big), fractions)
    r = torch.linspace(1.5, 12.0, 300, dtype=torch.float64)
    single = PDFModel(20.0)(state.phases["A"], r)
    mix = PhaseMixture({"A": PDFModel(20.0), "B": PDFModel(20.0)})(state, r)
    # G of each phase is normalised per atom: the weights must add to one for identical phases
    assert torch.allclose(mix, single, atol=1e-9 * float(single.abs().max()))
    tth = torch.linspace(20.0, 80.0, 800, dtype=torch.float64)
    setup = PowderSetup(geometry="cw", radiation="xray", wavelength=1.54)
    params = {"U": 0.01, "V": 0.0, "W": 0.01}
    one = PowderModel(setup)
    state.phases["A"].params.update(params)
    state.phases["B"].params.update(params)
    pattern_a = one(state.phases["A"], tth)
    pattern_b = one(state.phases["B"], tth)
    # the supercell's |F|² per cell is four times the small cell's ((2 cells)²) where both have peaks
    assert float(pattern_b.max()) == pytest.approx(4 * float(pattern_a.max()), rel=1e-6)
    mix = PhaseMixture({"A": PowderModel(setup), "B": PowderModel(setup)})(state, tth)
    w_a = phase_weights([small], torch.ones(1, dtype=torch.float64), "cell")[0]
    assert torch.allclose(mix, w_a * pattern_a, rtol=1e-8, atol=1e-12 * float(pattern_a.max()))


def test_debye_intensity_of_a_mixture_counts_structures_per_atom():
    """Two clusters made of one 13-atom and one 26-atom description of the same atoms (the second is the first
    twice, far apart): per atom of sample they scatter alike, so any fractions give I per atom × 13."""
    from ase.cluster import Icosahedron

    one = Structure.from_ase(Icosahedron("Cu", 2)).with_uiso(0.005)
    far = one.positions + torch.tensor([500.0, 0.0, 0.0], dtype=torch.float64)
    two = Structure(torch.cat([one.positions, far]), torch.cat([one.numbers, one.numbers]))
    two = two.with_uiso(0.005)
    q = torch.linspace(1.0, 10.0, 100, dtype=torch.float64)
    _, state = _state((one, two), (0.3, 0.7))
    model = DebyeModel(kind="iq", method="exact")
    mix = PhaseMixture({"A": DebyeModel(kind="iq", method="exact"), "B": DebyeModel(kind="iq", method="exact")})
    expected = model(state.phases["A"], q) / len(one)  # per atom
    # the far copy adds only its own intensity (the cross term oscillates at Q·500 Å; below 1e-3 relative here)
    assert torch.allclose(mix(state, q), expected, rtol=2e-3)


def test_pdf_weights_follow_mean_scattering_lengths():
    si = Structure.from_ase(bulk("Si", "diamond", a=5.43))
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.52))
    c = torch.tensor([0.9, 0.1], dtype=torch.float64)
    w = phase_weights([si, ni], c, "pdf")
    b = [float(mean_scattering_length(s)) for s in (si, ni)]
    assert b == pytest.approx([14.0, 28.0], abs=0.01)  # f(0) ≈ Z for neutral atoms (Waasmaier–Kirfel fit)
    mean = 0.9 * b[0] + 0.1 * b[1]
    assert w.tolist() == pytest.approx([0.9 * b[0] ** 2 / mean**2, 0.1 * b[1] ** 2 / mean**2], rel=1e-12)
    assert float(phase_weights([si, ni], c, "pdf", "neutron").sum()) != pytest.approx(float(w.sum()))


def test_mixture_gradient_with_respect_to_fractions_and_lattices_matches_finite_differences():
    si = Structure.from_ase(bulk("Si", "diamond", a=5.43)).with_uiso(0.006)
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True)).with_uiso(0.005)
    par = MixtureParametrisation({"Si": si, "Ni": ni}, free=["fraction", "lattice", "Ni.delta1", "qdamp"],
                                 values={"qdamp": 0.04}, fractions={"Si": 0.7, "Ni": 0.3})
    model = PhaseMixture({"Si": PDFModel(20.0), "Ni": PDFModel(20.0)})
    r = torch.linspace(1.8, 8.0, 120, dtype=torch.float64)
    theta = par.initial_vector().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: model(par.state(t), r), (theta,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_models_that_cannot_add_phases_say_so():
    with pytest.raises(ScatterfitError, match="cannot add phases"):
        PhaseMixture({"A": BoxScatteringModel("sq"), "B": BoxScatteringModel("sq")})
    with pytest.raises(ScatterfitError, match="cannot add phases"):
        PhaseMixture({"A": DebyeModel(kind="sq"), "B": DebyeModel(kind="sq")})
    with pytest.raises(ScatterfitError, match="cannot add phases"):
        PhaseMixture({"A": PDFModel(20.0), "B": DebyeModel(kind="iq")})

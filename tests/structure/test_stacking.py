"""Close-packed stackings: layers found in hexagonal and cubic F crystals, restacked, faulted and cut into
particles; checked against particles cut from the parent crystals themselves (wurtzite ↔ zinc blende)."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.candidates import StackedParticleCandidates, side_by_side
from scatterfit.structure.particles import cut_particle
from scatterfit.structure.stacking import layers_of, stacked_particle, stacking_sequence

A_ZB = 6.1  # zinc-blende CdSe, Å; the ideal wurtzite of the same bonds: a = A_ZB/√2, c = 2 A_ZB/√3, u = 3/8


def _distances(s: Structure) -> np.ndarray:
    x = s.positions.numpy()
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return np.sort(d[np.triu_indices(len(x), 1)])


def _zinc_blende() -> Structure:
    return Structure.from_ase(bulk("CdSe", "zincblende", a=A_ZB))


def _conventional_zinc_blende() -> Structure:
    return Structure.from_ase(bulk("CdSe", "zincblende", a=A_ZB, cubic=True))


def _ideal_wurtzite() -> Structure:
    return Structure.from_ase(bulk("CdSe", "wurtzite", a=A_ZB / math.sqrt(2), c=2 * A_ZB / math.sqrt(3), u=0.375))


def test_layers_of_wurtzite_and_zinc_blende():
    w, z = layers_of(_ideal_wurtzite()), layers_of(_conventional_zinc_blende())
    assert (w.parent, z.parent) == ("h", "c")
    assert w.a == pytest.approx(z.a) and w.spacing == pytest.approx(z.spacing)
    assert sorted(w.numbers.tolist()) == sorted(z.numbers.tolist()) == [34, 48]
    np.testing.assert_allclose(np.sort(w.heights), np.sort(z.heights), atol=1e-9)


@pytest.mark.parametrize("make", [_ideal_wurtzite, _conventional_zinc_blende])
def test_the_parent_stacking_is_the_parent_crystal(make):
    crystal = make()
    layers = layers_of(crystal)
    particle = stacked_particle(layers, stacking_sequence(20, layers.parent), 18.0)
    reference = cut_particle(crystal, 18.0)
    assert len(particle) == len(reference)
    np.testing.assert_allclose(_distances(particle), _distances(reference), atol=1e-6)


def test_wurtzite_layers_stacked_abc_are_zinc_blende():
    layers = layers_of(_ideal_wurtzite())
    particle = stacked_particle(layers, "ABC" * 8, 18.0)
    reference = cut_particle(_conventional_zinc_blende(), 18.0)
    assert len(particle) == len(reference)
    np.testing.assert_allclose(_distances(particle), _distances(reference), atol=1e-6)


def test_fault_sequences():
    assert stacking_sequence(8, "h") == "ABABABAB" and stacking_sequence(9, "c") == "ABCABCABC"
    assert stacking_sequence(9, "h", 1.0) == "ABCABCABC"  # every layer flipped: the other parent
    faults = {}
    for p in (0.1, 0.3, 0.6):
        q = stacking_sequence(40, "h", p, seed=3)
        faults[p] = {k for k in range(2, 40) if q[k] != q[k - 2]}  # cubic (faulted) layers
    assert faults[0.1] <= faults[0.3] <= faults[0.6]  # common random numbers: more p, more faults
    assert 0.1 < len(faults[0.3]) / 38 < 0.5


def test_an_ensemble_of_identical_particles_has_the_particle_pdf():
    layers = layers_of(_ideal_wurtzite())
    one = stacked_particle(layers, "ABCBABCA", 16.0).with_uiso(0.006)
    r = torch.arange(1.5, 20.0, 0.02, dtype=torch.float64)
    three = side_by_side([one, one, one], 300.0)
    assert three.particles == 3
    torch.testing.assert_close(pdf(three, r), pdf(one, r), rtol=1e-9, atol=1e-12)
    # the measured particle's baseline −4πρ0 r γ0(r) takes each particle's own density
    torch.testing.assert_close(pdf(three, r, spdiameter=16.0), pdf(one, r, spdiameter=16.0), rtol=1e-9, atol=1e-12)


def test_candidates_draw_independent_particles_per_ensemble_member(tmp_path):
    _ideal_wurtzite().to_ase().write(str(tmp_path / "w.cif"))
    build = StackedParticleCandidates(str(tmp_path / "w.cif"), seed=0, ensemble=4)
    s = build({"diameter": 20.0, "fault_probability": 0.5}, 0)
    single = StackedParticleCandidates(str(tmp_path / "w.cif"), seed=0)({"diameter": 20.0,
                                                                        "fault_probability": 0.5}, 0)
    assert len(s) > 3 * len(single)
    fixed = build({"diameter": 20.0, "sequence": "ABCABCABCABC"}, 0)
    assert len(fixed) == len(cut_particle(_conventional_zinc_blende(), 20.0))


@pytest.mark.parametrize("crystal, message", [
    (Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)), "layers per cell"),
    (Structure.from_ase(bulk("Po", "sc", a=3.3)), "not F-centred|hexagonal cell"),
])
def test_crystals_without_close_packed_layers_are_one_line(crystal, message):
    with pytest.raises(ScatterfitError, match=message):
        layers_of(crystal)
    with pytest.raises(ScatterfitError, match="twice in a row"):
        stacked_particle(layers_of(_ideal_wurtzite()), "ABBA", 10.0)

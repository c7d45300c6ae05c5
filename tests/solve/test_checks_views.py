"""The physical checks of refined hypotheses (energy per atom against CHGNet's own ASE calculator, the energy
tie-break of the ranking, chemistry), the executors' on_result callback, and the 3D view's model."""

import numpy as np
import pytest
import torch

from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.hypotheses import Hypothesis, crystal_hypothesis, refine_hypothesis
from scatterfit.solve.ranking import INDISTINCT, prefer_stable, verdict
from scatterfit.structure.library import candidates


@pytest.fixture(scope="module")
def refined_rock_salt():
    """Rock-salt NaCl refined against its own simulated PDF (Qmax 25 Å⁻¹, 1 % noise)."""
    (truth,) = [c for c in candidates("NaCl") if c.label == "rock salt NaCl"]
    s = truth.structure().with_uiso(0.008)
    r = torch.arange(0.5, 20.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qdamp=0.03, qmax=25.0, delta2=1.0).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    data = Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})
    h = crystal_hypothesis(truth.structure(), truth.label, truth.formula, "test")
    refine_hypothesis(h, {"sim": data})
    assert h.error is None
    return h


def test_energy_per_atom_equals_chgnets_ase_calculator(refined_rock_salt):
    from chgnet.model.dynamics import CHGNetCalculator

    from scatterfit.energy.chgnet import CHGNetEnergy
    from scatterfit.solve.checks import energetics

    h = refined_rock_salt
    energetics([h], CHGNetEnergy())
    atoms = h.result.structure.to_ase()
    atoms.calc = CHGNetCalculator(use_device="cpu")
    reference = atoms.get_potential_energy() / len(atoms)
    assert h.energy_per_atom == pytest.approx(reference, abs=2e-3)
    assert h.energy_above_best == 0.0
    assert -5.0 < h.energy_per_atom < -2.0  # NaCl: about −3.4 eV/atom in the Materials Project's GGA scale


def test_energy_above_the_librarys_most_stable_type(refined_rock_salt):
    """Rock salt is NaCl's most stable type: the refined crystal lies within the potential's margin of the
    library's minimum, which is the lowest of the NaCl types at their estimated cells (recomputed here)."""
    from scatterfit.energy.chgnet import CHGNetEnergy
    from scatterfit.solve.checks import energetics, structure_energy
    from scatterfit.solve.ranking import UNLIKELY_ABOVE

    h = refined_rock_salt
    potential = CHGNetEnergy()
    energetics([h], potential, candidates("NaCl"))
    energies = {c.label: structure_energy(c.structure(), potential) for c in candidates("NaCl")}
    lowest = min((e, label) for label, e in energies.items() if e is not None)
    assert h.library_reference == lowest[1]
    assert h.energy_above_library == pytest.approx(h.energy_per_atom - lowest[0], abs=1e-9)
    assert abs(h.energy_above_library) < UNLIKELY_ABOVE
    assert "stability" not in verdict([{"hypothesis": h, "bic": 0.0, "delta_bic": 0.0, "weight": 1.0}])


def test_verdict_warns_when_the_best_lies_far_above_the_librarys_most_stable_type():
    from scatterfit.solve.ranking import UNLIKELY_ABOVE

    h = Hypothesis("crystal", "Millerite CdSe", "CdSe", {}, [], rw={"d": 0.2})
    h.energy_above_library, h.library_reference = UNLIKELY_ABOVE + 0.1, "wurtzite CdSe"
    v = verdict([{"hypothesis": h, "bic": 0.0, "delta_bic": 0.0, "weight": 1.0}])
    assert "wurtzite CdSe" in v["stability"] and f"{UNLIKELY_ABOVE + 0.1:.2f} eV/atom" in v["stability"]
    h.energy_above_library = UNLIKELY_ABOVE - 0.01
    assert "stability" not in verdict([{"hypothesis": h, "bic": 0.0, "delta_bic": 0.0, "weight": 1.0}])


def test_chemistry_checks_of_rock_salt(refined_rock_salt):
    from scatterfit.solve.checks import chemistry_checks

    checks = chemistry_checks(refined_rock_salt)
    assert checks["coordination"] == {"Na": 6.0, "Cl": 6.0}
    a = refined_rock_salt.result.parameters()["a"]
    assert checks["bonds"]["Na-Cl"] == pytest.approx(a / 2, abs=1e-3)
    assert checks["too_close"] == 0


def _row(label: str, formula: str, bic: float, energy):
    h = Hypothesis("crystal", label, formula, {}, [])
    h.energy_per_atom = energy
    return {"hypothesis": h, "bic": bic}


def _ranked(rows):
    best = min(r["bic"] for r in rows)
    for r in rows:
        r["delta_bic"] = r["bic"] - best
        r["weight"] = 0.0
    return sorted(rows, key=lambda r: r["bic"])


def test_energy_decides_between_hypotheses_the_data_cannot_tell_apart():
    rows = _ranked([_row("hcp X", "X", 0.0, -3.0), _row("fcc X", "X", INDISTINCT / 2, -3.2),
                    _row("bcc X", "X", 10.0, -4.0)])
    ordered = prefer_stable(rows)
    assert [r["hypothesis"].label for r in ordered] == ["fcc X", "hcp X", "bcc X"]
    assert ordered[0]["decided_by"] == "energy"
    v = verdict(ordered)
    assert v["best"] == "fcc X" and not v["distinguishable"] and "energy" in v["decided_by"]
    assert v["delta_bic"] == pytest.approx(INDISTINCT / 2)


@pytest.mark.parametrize("rows", [
    [("hcp X", "X", 0.0, -3.0), ("fcc X", "X", 3 * INDISTINCT, -3.5)],  # the data tell them apart
    [("hcp X", "X", 0.0, -3.0), ("fcc Y", "Y", 0.5, -5.0)],  # other formula: energies not comparable
    [("hcp X", "X", 0.0, -3.0), ("fcc X", "X", 0.5, -3.01)],  # within the potential's margin
    [("hcp X", "X", 0.0, None), ("fcc X", "X", 0.5, -5.0)],  # the best has no energy
], ids=["distinct", "other-formula", "margin", "no-energy"])
def test_energy_leaves_the_order_alone_otherwise(rows):
    ranked = _ranked([_row(*r) for r in rows])
    assert prefer_stable(ranked)[0]["hypothesis"].label == "hcp X"


@pytest.mark.parametrize("spec", [None, "processes:2"])
def test_executors_call_on_result_for_every_item(spec):
    from scatterfit.optim.executor import make_executor

    pool = make_executor(spec)
    seen = {}
    try:
        out = pool.map(abs, [-3, 1, -2], on_result=lambda k, v: seen.__setitem__(k, v))
    finally:
        pool.close()
    assert out == [3, 1, 2] and seen == {0: 3, 1: 1, 2: 2}


def test_view_model_of_an_fcc_cell():
    """The conventional fcc cell drawn as a crystallographer does: 8 corners + 6 face centres, 36 nearest-neighbour
    bonds (each face centre to its 4 corners, and the 12 pairs of adjacent face centres), 12 cell edges."""
    from scatterfit.report.viewer3d import structure_views, view_model

    (fcc,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    model = view_model(fcc.structure())
    assert model["total"] == 14 and len(model["bonds"]) == 36 and len(model["cell_edges"]) == 12
    xyz = np.array(model["xyz"])
    a = float(fcc.structure().cell[0, 0])
    assert xyz.min() == pytest.approx(0.0, abs=1e-6) and xyz.max() == pytest.approx(a, abs=1e-4)
    html = structure_views([("fcc Ni", fcc.structure())])
    assert html.count("<canvas") == 1 and "<script>" in html and "http" not in html.split("<script>")[1]


def test_discrete_particles_come_in_the_triaged_and_the_envelopes_sizes_up_to_a_limit():
    from types import SimpleNamespace

    from scatterfit.solve.hypotheses import DISCRETE_SHAPES, MAX_SHELLS, discrete_particle_hypotheses

    def refined(label: str, **params):
        h = Hypothesis("crystal", label, label.split()[-1], {}, [])
        h.result = SimpleNamespace(parameters=lambda: params)
        return h

    nn = 2.88
    crystal = refined("fcc Au", a=nn * 2**0.5, qdamp=0.1, delta2=2.0, Biso_Au=0.6)
    envelope = refined("fcc Au particle", a=nn * 2**0.5, qdamp=0.03, delta2=1.0, spdiameter=2 * 6 * nn)
    made = discrete_particle_hypotheses(crystal, envelope, diameter=2 * 4.4 * nn)
    atoms = {h.label.split("(")[1].split()[0] for h in made}
    assert atoms == {"147", "309", "923"}  # 3, 4 (triage: its estimate and one shell less) and 6 shells (envelope)
    assert len(made) == 3 * len(DISCRETE_SHAPES)
    assert all(h.values["qdamp"] == 0.03 for h in made)  # the envelope's resolution, not the crystal's
    huge = refined("fcc Au particle", a=nn * 2**0.5, qdamp=0.03, delta2=1.0, spdiameter=400.0)
    assert discrete_particle_hypotheses(crystal, huge, diameter=400.0) == []  # all beyond MAX_SHELLS
    edge = refined("fcc Au particle", a=nn * 2**0.5, qdamp=0.03, delta2=1.0, spdiameter=2 * MAX_SHELLS * nn)
    assert {h.label.split("(")[1] for h in discrete_particle_hypotheses(crystal, edge, 2 * 4.4 * nn)} >= \
        {"6525 atoms)"}  # 12 shells: (10·12³ + 15·12² + 11·12 + 3)/3
    assert discrete_particle_hypotheses(refined("rock salt NaCl"), None, 30.0) == []
    small = {h.label.split("(")[1].split()[0] for h in discrete_particle_hypotheses(crystal, None, 2 * 3.2 * nn)}
    assert small == {"147"}  # 2 and 3 shells triaged: the 55-atom particles (under MIN_ENVELOPE_ATOMS) not made


def test_energy_prior_penalty_grows_with_the_energy_above_and_is_capped():
    from scatterfit.solve.ranking import LEAST_PRIOR, METASTABLE_SCALE, energy_penalty

    h = Hypothesis("crystal", "x", "X", {}, [])
    assert energy_penalty(h) == 0.0  # no energy: no prior
    h.energy_above_library = -0.02  # below the library's unrelaxed type: as stable as it
    assert energy_penalty(h) == 0.0
    h.energy_above_library = 0.1
    assert energy_penalty(h) == pytest.approx(2 * 0.1 / METASTABLE_SCALE)
    h.energy_above_library = 5.0
    assert energy_penalty(h) == pytest.approx(2 * np.log(1 / LEAST_PRIOR))


def test_the_energy_prior_reorders_only_what_the_data_leave_close():
    """A crystal far above the library's most stable type loses its first place to a stable one whose BIC is
    worse by less than the penalty, and keeps it when the data favour it by more."""
    import math

    from scatterfit.solve.ranking import energy_penalty, rank

    points = {"d": 100.0}
    stable = Hypothesis("crystal", "wurtzite X", "X", {}, [], rw={"d": 0.30}, n_parameters=5)
    stable.energy_above_library = 0.0
    unstable = Hypothesis("crystal", "Millerite X", "X", {}, [], rw={"d": 0.29}, n_parameters=5)
    unstable.energy_above_library = 0.6
    gap = 100 * math.log(0.30**2 / 0.29**2)  # ΔBIC in favour of the unstable one: 6.8 < its penalty 13.8
    ranked = rank([unstable, stable], points)
    assert [row["hypothesis"].label for row in ranked] == ["wurtzite X", "Millerite X"]
    assert ranked[1]["delta_bic"] == pytest.approx(energy_penalty(unstable) - gap)
    assert ranked[0]["weight"] == pytest.approx(1 / (1 + math.exp(-0.5 * ranked[1]["delta_bic"])))
    unstable.rw = {"d": 0.2}  # the data decide: ΔBIC 81
    assert rank([unstable, stable], points)[0]["hypothesis"].label == "Millerite X"


def test_a_discrete_particles_surface_energy_is_not_compared_with_the_library():
    """Energies above the library are for periodic phases: a crystal gets one, a finite cluster of its atoms
    (whose surface raises its energy per atom) gets none; both get their energy per atom."""
    from types import SimpleNamespace

    from scatterfit.solve.checks import energetics
    from scatterfit.structure.builders import nanoparticle

    class PerAtom:  # a potential of −1 eV per atom (the structures' energies are not what is tested)
        def energy(self, s):
            return torch.tensor(-1.0 * len(s))

    def refined(kind, structure):
        state = SimpleNamespace(structure=structure)
        result = SimpleNamespace(state=SimpleNamespace(phase_states=lambda: {"p": state}))
        return Hypothesis(kind, kind, "Cu", {}, [], result=result)

    (fcc,) = [c for c in candidates("Cu") if c.label == "fcc Cu"]
    crystal = refined("crystal", fcc.structure())
    particle = refined("nanoparticle", nanoparticle("Cu", "icosahedron", 3, nn_distance=2.55))
    energetics([crystal, particle], PerAtom(), candidates("Cu"))
    assert crystal.energy_above_library == pytest.approx(0.0) and crystal.library_reference is not None
    assert particle.energy_per_atom == pytest.approx(-1.0)
    assert particle.energy_above_library is None


def test_a_checkpointed_hypothesis_of_an_earlier_version_unpickles_with_the_new_fields_defaulted():
    import pickle

    h = Hypothesis("crystal", "fcc X", "X", {}, ["lattice"], rw={"d": 0.1})
    state = dict(h.__dict__)
    del state["anneal"], state["options"]  # fields a later version added
    old = Hypothesis.__new__(Hypothesis)
    old.__dict__.update(state)
    again = pickle.loads(pickle.dumps(old))
    assert again.anneal == 0 and again.options == {} and again.rw == {"d": 0.1} and again.label == "fcc X"

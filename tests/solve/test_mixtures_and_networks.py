"""What a solve reads before it refines: lists of candidate compounds, the two-phase screen, the coordination a
glass's first peak shows and the restraints derived from it, the size below which an envelope is no particle;
and a simulated two-phase mixture solved from the two compounds alone."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.scattering.pdf import pdf
from scatterfit.solve.ionic import network_restraints
from scatterfit.solve.screen import _rw_beside
from scatterfit.solve.triage import first_shell_area, triage
from scatterfit.structure.library import candidates, compounds

sys.path.insert(0, str(Path(__file__).parent))


def test_a_list_of_compounds_is_told_from_a_formula_and_from_elements():
    assert compounds("ZnS + Ni") == ["ZnS", "Ni"]
    assert compounds("TiO2, BaCO3") == ["TiO2", "BaCO3"]  # commas between compounds
    assert compounds("Fe + Ni") == ["Fe", "Ni"]  # "+" lists phases even of elements
    assert compounds("Ti O") is None and compounds("Si,Ni") is None and compounds("TiO2") is None
    with pytest.raises(ScatterfitError, match="empty compound"):
        compounds("ZnS +")
    listed = {c.label for c in candidates("ZnS + Ni")}
    assert listed == {c.label for c in candidates("ZnS")} | {c.label for c in candidates("Ni")}
    assert "zinc blende ZnS" in listed and "fcc Ni" in listed
    assert not any(c.formula.count("Ni") and c.formula.count("Zn") for c in candidates("ZnS + Ni"))  # no ternaries


def test_the_two_phase_screen_is_least_squares_with_both_parts_positive():
    rng = np.random.default_rng(0)
    fixed, model = rng.standard_normal(80), rng.standard_normal((4, 80))
    y = 2.0 * fixed + 0.7 * model[2] + 0.01 * rng.standard_normal(80)
    rw = _rw_beside(model, fixed, y)
    for k in range(4):  # where both parts come out positive, the unconstrained least squares
        coef, *_ = np.linalg.lstsq(np.stack([fixed, model[k]], 1), y, rcond=None)
        if (coef >= 0).all():
            expected = np.linalg.norm(y - np.stack([fixed, model[k]], 1) @ coef) / np.linalg.norm(y)
            assert rw[k] == pytest.approx(expected, rel=1e-9)
    assert int(np.argmin(rw)) == 2 and rw[2] < 0.01
    upside_down = -fixed + model[0]  # the fixed phase would need a negative part: the candidate alone
    alone = np.linalg.norm(upside_down - (model[0] @ upside_down) / (model[0] @ model[0]) * model[0])
    assert _rw_beside(model[:1], fixed, upside_down)[0] == pytest.approx(alone / np.linalg.norm(upside_down))


@pytest.mark.parametrize("label, radiation, cation_cn", [("fluorite CaF2", "neutron", 8), ("rutile TiO2", "xray", 6),
                                                         ("zinc blende ZnS", "neutron", 4)])
def test_the_first_peak_area_gives_the_cation_coordination(label, radiation, cation_cn):
    """A crystal's G(r) (sharp peaks, high Qmax) on its absolute scale: the first peak's area, read with the
    radiation's weights, gives the cation's coordination, and the anion's follows from the formula."""
    from ase.data import atomic_numbers

    from scatterfit.scattering.formfactors import length_at_zero
    from scatterfit.structure.library import parse_composition

    (c,) = [c for c in candidates(label.split()[-1]) if c.label == label]
    s = c.structure().with_uiso(0.002)
    r = torch.arange(0.5, 8.0, 0.005, dtype=torch.float64)
    g = pdf(s, r, radiation=radiation).numpy()
    counts = parse_composition(c.formula)
    rho = float(s.occupancy.sum() / s.volume)
    data = Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 40.0})
    first = triage(data).first_peak
    area = first_shell_area(data, first, rho)
    lengths = {e: length_at_zero(atomic_numbers[e], radiation) for e in counts}
    found = network_restraints(counts, first, area, lengths)
    cation = next(e for e in counts if e not in ("F", "O", "S"))
    assert found["found"] == pytest.approx(cation_cn, rel=0.08)
    (cat, an) = found["coordination"]
    assert cat["target"] == cation_cn and cat["pair"].startswith(cation)
    anion_cn = cation_cn * counts[cation] / (sum(counts.values()) - counts[cation])
    assert an["target"] == anion_cn
    assert bool(found["cation_cores"]) == (cation_cn <= 4)
    if cation_cn <= 4:
        assert found["cation_cores"][f"{cation}-{cation}"] == pytest.approx(math.sqrt(3) * first, abs=1e-3)


def test_no_network_restraints_without_a_binary_ionic_formula():
    assert network_restraints({"Ar": 1}, 3.7, 12.0, {"Ar": 1.9}) == {}
    assert network_restraints({"Na": 2, "Si": 1, "O": 3}, 1.6, 2.0, {"Na": 3.6, "Si": 4.1, "O": 5.8}) == {}


def test_an_envelope_of_a_few_dozen_atoms_is_no_particle():
    """The envelope check of solve: a refined 10 Å particle of a crystal (about 40 atoms) is not supported; the
    same crystal in a 30 Å envelope is judged by its gain only."""
    from scatterfit.solve.hypotheses import check_gain, crystal_hypothesis, nanoparticle_hypothesis, refine_hypothesis

    (c,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    s = c.structure().with_uiso(0.005)
    r = torch.arange(1.0, 20.0, 0.02, dtype=torch.float64)
    results = {}
    for diameter in (10.0, 30.0):
        data = Dataset(r.numpy(), pdf(s, r, qmax=25.0, qdamp=0.03, spdiameter=diameter).numpy(), None, "gr",
                       "angstrom", metadata={"qmax": 25.0})
        crystal = refine_hypothesis(crystal_hypothesis(s, c.label, c.formula, ""), {"d": data})
        particle = check_gain(refine_hypothesis(nanoparticle_hypothesis(crystal, 20.0), {"d": data}))
        results[diameter] = particle
    assert "envelope holds about" in (results[10.0].error or "")
    assert results[30.0].error is None, results[30.0].error


def test_a_particle_whose_crystal_damps_its_signal_at_the_qdamp_bound_need_only_match_it():
    """A 20 Å Ni particle's G(r) with 1 % noise to 50 Å (the signal ends at 20 Å, the rest is noise): the crystal
    refines qdamp onto its bound to damp the peaks as the envelope does (damped_as_particle), so the particle
    needs no MIN_GAIN over it; and beyond the 30 Å fit range both predict nothing (held-out Rw about 1, where
    the particle's exact zero used to lose to the crystal's 1e-5 tail), so the held-out check does not judge.
    A bulk crystal's qdamp stays inside its bound."""
    from scatterfit.solve.hypotheses import (
        BOUNDS,
        HOLDOUT_SILENT,
        check_gain,
        check_holdout,
        crystal_hypothesis,
        damped_as_particle,
        holdout_rw,
        nanoparticle_hypothesis,
        refine_hypothesis,
        supersede_damped_crystals,
    )

    (c,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    s = c.structure().with_uiso(0.005)
    r = torch.arange(1.0, 50.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qmax=25.0, qdamp=0.03, spdiameter=20.0).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    data = {"d": Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})}
    crystal = refine_hypothesis(crystal_hypothesis(s, c.label, c.formula, ""), data)
    assert crystal.result.parameters()["qdamp"] == pytest.approx(BOUNDS["qdamp"][1], rel=1e-3)
    assert damped_as_particle(crystal)
    assert holdout_rw(crystal, data) >= HOLDOUT_SILENT
    particle = check_holdout(check_gain(refine_hypothesis(nanoparticle_hypothesis(crystal, 20.0), data)), data)
    assert particle.error is None, particle.error
    assert particle.rw["d"] <= crystal.rw["d"]
    assert particle.result.parameters()["spdiameter"] < 40.0  # 28 Å: qdamp (free) and the diameter trade off
    supersede_damped_crystals([crystal, particle])
    assert crystal.error.startswith("superseded by fcc Ni particle") and particle.error is None
    bulk = {"d": Dataset(r.numpy(), pdf(s, r, qmax=25.0, qdamp=0.03).numpy(), None, "gr", "angstrom",
                         metadata={"qmax": 25.0})}
    assert not damped_as_particle(refine_hypothesis(crystal_hypothesis(s, c.label, c.formula, ""), bulk))


@pytest.mark.parametrize("crystal_rw, particle_rw, damped, judged", [
    (0.99995, 1.0, False, False), (0.6, 0.7, False, True), (0.7, 0.6, False, False), (0.874, 0.902, True, False)])
def test_the_held_out_check_judges_only_where_the_crystal_predicts_something(monkeypatch, crystal_rw, particle_rw,
                                                                           damped, judged):
    """check_holdout: a particle that predicts the G(r) beyond the fit range worse than its crystal is unsupported,
    unless the crystal predicts nothing there either (held-out Rw ≥ HOLDOUT_SILENT: measured CdSe-1, whose signal
    ends at 14 Å, gave the wurtzite crystal 0.99995 and its particle's exact zeros 1.000), or the crystal's qdamp is
    on its bound (measured CdSe-4: the crystal's tail is that of a resolution no instrument has)."""
    import scatterfit.solve.hypotheses as hypotheses

    monkeypatch.setattr(hypotheses, "damped_as_particle", lambda h: damped)

    crystal = hypotheses.Hypothesis("crystal", "c", "Ni", {}, [], {}, "")
    particle = hypotheses.Hypothesis("nanoparticle", "p", "Ni", {}, [], {}, "", parents=[crystal])
    monkeypatch.setattr(hypotheses, "holdout_rw", lambda h, *_: crystal_rw if h is crystal else particle_rw)
    assert (hypotheses.check_holdout(particle, {}).error is not None) == judged


def test_a_simulated_two_phase_mixture_is_found_from_its_two_compounds():
    """Seed 3 of the blind mixture draws (tests/solve/test_blind_mixtures.py): CsCl-type NaCl and fcc Cu, given
    as "NaCl + Cu": the mixture of the two true types first."""
    from test_blind_mixtures import check

    right, line = check(3)
    assert right, line


def test_a_network_box_replays_as_a_refine_config(tmp_path):
    """The replay config of a glass box with network restraints (what write_solution writes): the scale held at
    1, both coordination restraints at their weight, the melt-and-quench with the data off, then L-BFGS."""
    from scatterfit.config.builders import build_datasets, build_loss, build_strategy
    from scatterfit.config.schema import load_config
    from scatterfit.loss import DataTerm
    from scatterfit.report.solution import _config_text
    from scatterfit.solve.hypotheses import (
        AMORPHOUS_ANNEAL,
        AMORPHOUS_NETWORK_STEPS,
        ANNEAL_COORDINATION,
        RESTRAINT_WEIGHTS,
        amorphous_hypothesis,
    )
    from scatterfit.structure.files import write_structure

    network = network_restraints({"Si": 1, "O": 2}, 1.61, 2.15, {"Si": 4.149, "O": 5.803})
    h = amorphous_hypothesis("SiO2", 0.0664, 1.61, 10.0, "given", refine_density=False, network=network)
    (phase, box) = next(iter(h.structures.items()))
    write_structure(box, tmp_path / "box.xyz")
    r = np.arange(0.5, 12.0, 0.01)
    np.savetxt(tmp_path / "d.gr", np.stack([r, np.sin(r)], 1))
    data = Dataset(r, np.sin(r), None, "gr", "angstrom", radiation="neutron",
                   metadata={"qmax": 30.0, "absolute": True})
    text = _config_text(h, {phase: "box.xyz"}, {"d": data}, {"d": tmp_path / "d.gr"}, "h01")
    (tmp_path / "h01.toml").write_text(text)  # the dataset's Qmax is written with it
    cfg = load_config(tmp_path / "h01.toml")
    loss = build_loss(cfg, build_datasets(cfg))
    (data_term,) = [t for t in loss.terms if isinstance(t, DataTerm)]
    assert data_term.fit_scale is False
    names = {t.name: t for t in loss.terms}
    assert {"coordination:Si-O", "coordination:O-Si", "min_distance"} <= set(names)
    assert names["coordination:Si-O"].weight == RESTRAINT_WEIGHTS["coordination"]
    anneal, fit = build_strategy(cfg)
    assert (anneal.optimizer, anneal.steps, fit.optimizer, fit.steps) == ("anneal", AMORPHOUS_ANNEAL, "lbfgs",
                                                                           AMORPHOUS_NETWORK_STEPS)
    assert anneal.weights == {"d": 0.0, "coordination:Si-O": ANNEAL_COORDINATION,
                              "coordination:O-Si": ANNEAL_COORDINATION}
    assert anneal.energy_scale == float(len(box)) and anneal.free == ["positions"]


def test_a_silica_box_melts_on_bks_and_replays_with_it(tmp_path):
    """SiO2's elements are exactly BKS's (energy/registry.classical_potential; an element set no classical
    potential covers gets none): the box's loss has the BKS energy at BOX_ENERGY_WEIGHT; it melts and quenches on
    BKS alone (physical temperatures: weight 1, eV), relaxes with the coordination restraints on, then fits; the
    replay config builds the same energy term and stages."""
    from scatterfit.config.builders import build_datasets, build_loss, build_strategy
    from scatterfit.config.schema import load_config
    from scatterfit.energy.registry import classical_potential
    from scatterfit.loss import EnergyTerm
    from scatterfit.optim.anneal import energy_scale
    from scatterfit.report.solution import _config_text
    from scatterfit.solve.hypotheses import (
        AMORPHOUS_ANNEAL,
        AMORPHOUS_NETWORK_STEPS,
        BOX_ENERGY_WEIGHT,
        NETWORK_RELAX,
        amorphous_hypothesis,
        hypothesis_loss,
    )
    from scatterfit.structure.files import write_structure

    assert classical_potential(["O", "Si"]) == ("bks", {}) and classical_potential(["Si", "O", "Al"]) is None
    assert classical_potential(["C"]) == ("tersoff", {"element": "C"}) and classical_potential(["Ge"]) is None
    network = network_restraints({"Si": 1, "O": 2}, 1.61, 2.15, {"Si": 4.149, "O": 5.803})
    h = amorphous_hypothesis("SiO2", 0.0664, 1.61, 10.0, "given", refine_density=False, network=network,
                             energy=classical_potential(["Si", "O"]))
    (phase, box) = next(iter(h.structures.items()))
    r = np.arange(0.5, 12.0, 0.01)
    data = Dataset(r, np.sin(r), None, "gr", "angstrom", radiation="neutron",
                   metadata={"qmax": 30.0, "absolute": True})
    (energy,) = [t for t in hypothesis_loss(h, {"d": data}).terms if isinstance(t, EnergyTerm)]
    assert (energy.model.name, energy.weight) == ("bks", BOX_ENERGY_WEIGHT)

    write_structure(box, tmp_path / "box.xyz")
    np.savetxt(tmp_path / "d.gr", np.stack([r, np.sin(r)], 1))
    text = _config_text(h, {phase: "box.xyz"}, {"d": data}, {"d": tmp_path / "d.gr"}, "h01")
    (tmp_path / "h01.toml").write_text(text)  # the dataset's Qmax is written with it
    cfg = load_config(tmp_path / "h01.toml")
    loss = build_loss(cfg, build_datasets(cfg))
    (replayed,) = [t for t in loss.terms if isinstance(t, EnergyTerm)]
    assert (replayed.model.name, replayed.weight) == ("bks", BOX_ENERGY_WEIGHT)
    melt, relax, fit = build_strategy(cfg)
    off = {"coordination:Si-O": 0.0, "coordination:O-Si": 0.0}
    assert (melt.optimizer, melt.steps, melt.weights) == ("anneal", AMORPHOUS_ANNEAL, {"d": 0.0, "energy": 1.0, **off})
    assert energy_scale(loss, len(box), melt.weights, melt.energy_scale) == len(box)  # the energy in eV
    on = {k: NETWORK_RELAX[1] for k in off}
    assert (relax.optimizer, relax.steps, relax.weights) == ("lbfgs", NETWORK_RELAX[0], {"d": 0.0, "energy": 1.0, **on})
    assert (fit.optimizer, fit.steps, fit.weights) == ("lbfgs", AMORPHOUS_NETWORK_STEPS, None)


def test_a_refined_mixture_takes_a_third_phase():
    """mixture_with: the refined two-phase mixture's phases and values (qdamp, each phase's delta2) with the third
    phase's own, the free groups of all three and their fractions; refined, it must improve on the mixture
    (check_gain: its parent is the mixture) and finds the third phase's share."""
    from test_blind_mixtures import three_phase_draw

    from scatterfit.solve.hypotheses import (
        check_gain,
        crystal_hypothesis,
        mixture_hypothesis,
        mixture_with,
        refine_hypothesis,
    )

    _, truth, data = three_phase_draw()
    short = data.x <= 15.0  # a shorter G(r) refines faster and tells the three apart as well
    data = data.with_(x=data.x[short], y=data.y[short])
    types = {c.label: c for f in ("ZnS", "MgO", "CsCl") for c in candidates(f)}

    def crystal(label):
        c = types[label]
        return crystal_hypothesis(c.structure(), label, c.formula, "test")

    two = refine_hypothesis(mixture_hypothesis(crystal("zinc blende ZnS"), crystal("rock salt MgO")), {"d": data})
    assert two.error is None
    three = mixture_with(two, crystal("cesium chloride CsCl"))
    p = two.result.parameters()
    assert list(three.structures) == ["zinc_blende_ZnS", "rock_salt_MgO", "cesium_chloride_CsCl"]
    assert three.values["qdamp"] == p["qdamp"] and three.values["rock_salt_MgO.delta2"] == p["rock_salt_MgO.delta2"]
    assert three.values["cesium_chloride_CsCl.delta2"] == 2.0 and three.free[-1] == "fraction"
    assert three.parents == [two] and not three.warm and three.formula == "ZnS + MgO + CsCl"
    refined = check_gain(refine_hypothesis(three, {"d": data}))
    assert refined.error is None and refined.rw["d"] < 0.5 * two.rw["d"]
    share = refined.result.parameters()["fraction[cesium_chloride_CsCl]"]
    assert share == pytest.approx(truth["cesium chloride CsCl"], abs=0.02)


def test_a_particle_whose_envelope_grows_to_its_bound_is_no_particle_but_may_mend_its_crystal():
    """Bulk Ni's G(r) (to 30 Å): the envelope particle refines its diameter onto the 2000 Å bound — the data show
    no size, so it is not supported. When its crystal had stopped in a worse minimum (measured CdSe-bulk: 0.384
    against the particle's 0.156), the crystal is refined again from the particle's values, without the envelope,
    and reaches the particle's Rw."""
    import copy

    from scatterfit.solve.hypotheses import (
        check_bulk,
        crystal_hypothesis,
        nanoparticle_hypothesis,
        refine_hypothesis,
    )

    (c,) = [c for c in candidates("Ni") if c.label == "fcc Ni"]
    s = c.structure().with_uiso(0.005)
    r = torch.arange(1.0, 30.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qmax=25.0, qdamp=0.03).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    data = {"d": Dataset(r.numpy(), g, None, "gr", "angstrom", metadata={"qmax": 25.0})}
    crystal = refine_hypothesis(crystal_hypothesis(s, c.label, c.formula, ""), data)
    particle = refine_hypothesis(nanoparticle_hypothesis(crystal, 100.0), data)
    assert particle.result.parameters()["spdiameter"] == pytest.approx(2000.0)
    assert check_bulk(copy.copy(particle)) is None  # as good as its crystal: nothing to mend
    marked = copy.copy(particle)
    check_bulk(marked)
    assert marked.error.startswith("not supported: its envelope grew to the bound")
    stuck = copy.copy(crystal)
    stuck.rw = {"d": 3 * crystal.rw["d"]}  # as if the crystal had stopped in a worse minimum
    particle.parents = [stuck]
    again = check_bulk(particle)
    assert (again.kind, again.label, again.warm) == ("crystal", "fcc Ni (refined again)", True)
    assert "spdiameter" not in again.free and "spdiameter" not in again.values
    again = refine_hypothesis(again, data)
    assert again.error is None and again.rw["d"] == pytest.approx(particle.rw["d"], rel=0.02)

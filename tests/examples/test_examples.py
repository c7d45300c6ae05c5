"""End-to-end runs of the example configs on measured data (slow; `make test-all`)."""

import json
from pathlib import Path

import pytest

from conftest import cmi_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pdffit2_ni():
    from scatterfit.io import load_dataset
    from scatterfit.testing import pdffit2_nickel_reference

    return pdffit2_nickel_reference(load_dataset(cmi_file("pdf/ch03NiModelling/data/Ni.gr")))


@pytest.mark.parametrize("config", ["nickel.toml", "nickel_energy.toml"])
def test_nickel_examples_match_pdffit2(config, tmp_path, pdffit2_ni):
    from scatterfit.commands.refine import run_refine

    run_refine(EXAMPLES / config, out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    rw = summary["terms"]["Ni"]["rw"]
    assert rw <= 0.045 and rw <= pdffit2_ni["rw"] + 1e-3
    assert abs(summary["parameters"]["a"] - pdffit2_ni["a"]) <= 0.002
    if "energy" in summary["terms"]:
        # CHGNet's fcc Ni minimum is 3.505 Å: at the data's 3.525 Å the energy is within 5 meV/atom of it
        assert summary["terms"]["energy"]["value"] < 0.005


def test_platinum_nanoparticle_search_on_measured_data(tmp_path):
    """Knowing only "Pt": the swarm picks shape and size, gradients refine the particle, then the positions.
    Reference: PDFfit2 with an spdiameter envelope reaches Rw = 0.102 on these data and range."""
    from scatterfit.commands.refine import run_refine

    cmi_file("pdf/ch03NiModelling/data/Pt-nanoparticles.gr")
    result = run_refine(EXAMPLES / "pt_nanoparticle.toml", out=tmp_path)
    assert result.refined.terms["Pt"].breakdown["rw"] <= 0.10
    assert result.best["shape"] == "truncated_octahedron" and len(result.refined.structure) == 2406
    assert _closest_contact(result.refined.structure) >= 2.54  # README: no Pt–Pt contact below 2.55 Å


def _closest_contact(structure) -> float:
    from scatterfit.structure.neighbours import neighbours, pair_distances

    return float(pair_distances(structure, neighbours(structure, 4.0)).min())


def test_platinum_nanoparticle_without_the_restraint_fits_better_with_impossible_contacts(tmp_path):
    """The README's contrast: without the minimum-distance restraint the same search fits better (Rw 0.079) but
    leaves Pt–Pt contacts at 2.27 Å, far below any Pt–Pt bond."""
    from scatterfit.commands.refine import run_refine

    cmi_file("pdf/ch03NiModelling/data/Pt-nanoparticles.gr")
    result = run_refine(EXAMPLES / "pt_nanoparticle_unrestrained.toml", out=tmp_path)
    assert result.refined.terms["Pt"].breakdown["rw"] <= 0.085
    assert _closest_contact(result.refined.structure) < 2.45


def test_liquid_argon_from_a_random_box(tmp_path):
    from conftest import shared_file
    from scatterfit.commands.refine import run_refine

    shared_file("argon_liquid_85K_yarnell1973_SQ.sq")
    run_refine(EXAMPLES / "argon_liquid.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    shell = summary["chemistry"]["first_shell"]
    assert summary["terms"]["Ar"]["rw"] < 0.035
    assert 3.6 < shell["peak"] < 3.8  # Yarnell et al.: first peak of g(r) at 3.68 Å
    assert 11.5 < shell["coordination"] < 13.5
    assert summary["terms"]["energy"]["energy_per_atom_eV"] < -0.05


def test_silica_glass_staged_refinement_reaches_a_chemically_sound_network(tmp_path):
    """The issue's target, ≥ 95 % four-fold Si, reached by melt-and-quench then the data (README: 99.1 %,
    Rw 0.0992, derived G(r) 0.0912, Si–O 1.635 Å, O–Si–O 109.5°, Si–O–Si 144.9°)."""
    from conftest import shared_file
    from scatterfit.commands.refine import run_refine

    shared_file("SiO2_glass_NIMROD_neutron_FQ.mint01")
    run_refine(EXAMPLES / "silica_glass.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    chem = summary["chemistry"]
    four = chem["coordination"]["Si"]["O"].get("4", 0) / 216
    assert summary["terms"]["SiO2"]["rw"] < 0.101
    assert summary["terms"]["SiO2"]["rw_derived_gr"] < 0.095
    assert four >= 0.95
    assert 1.59 < chem["bonds"]["O-Si"]["mean"] < 1.65
    assert 108 < chem["angles"]["O-Si-O"]["mean"] < 111
    assert 140 < chem["angles"]["Si-O-Si"]["mean"] < 152


def test_silica_glass_from_scattering_alone_fits_but_is_no_network(tmp_path):
    """The README's contrast: the data alone fit better (Rw 0.040) with 5 % four-fold Si and contacts down to
    0.5 Å."""
    from conftest import shared_file
    from scatterfit.commands.refine import run_refine

    shared_file("SiO2_glass_NIMROD_neutron_FQ.mint01")
    result = run_refine(EXAMPLES / "silica_glass_scattering_only.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    four = summary["chemistry"]["coordination"]["Si"]["O"].get("4", 0) / 216
    assert summary["terms"]["SiO2"]["rw"] < 0.06
    assert four < 0.3
    assert _closest_contact(result.structure) < 1.0


def test_multimodal_degeneracy_saxs_alone_is_ambiguous_saxs_plus_pdf_is_not(tmp_path):
    """Simulated Au147 icosahedron: with SAXS alone the best candidates of different shape families and atom
    counts fit within 10 % of each other; adding the PDF leaves the icosahedron alone, far ahead."""
    from scatterfit.commands.refine import run_refine

    alone = run_refine(EXAMPLES / "multimodal_saxs_only.toml", out=tmp_path / "saxs")
    losses = [entry["loss"] for entry in alone.top]
    assert len({(e["candidate"]["shape"], e["n_atoms"]) for e in alone.top}) == len(alone.top) >= 3
    assert max(losses) <= 1.1 * min(losses)
    both = run_refine(EXAMPLES / "multimodal_saxs_pdf.toml", out=tmp_path / "both")
    assert both.best == {"shape": "icosahedron", "size": 3} and len(both.refined.structure) == 147
    assert both.top[1]["loss"] >= 3 * both.top[0]["loss"]
    assert both.refined.terms["PDF"].breakdown["rw"] < 0.06


def _c60_reference_structure():
    """The structure the diffpy team generated C60.iq from (C60.stru beside it: PDFfit format, fractional
    coordinates in a 100 Å cubic cell)."""
    import numpy as np
    import torch

    from scatterfit.structure import Structure

    lines = cmi_file("core/intensityfit/C60.stru").read_text().splitlines()
    pos = np.array([[float(v) for v in line.split()[1:4]] for line in lines if line.startswith("C ")]) * 100.0
    return Structure(torch.tensor(pos - pos.mean(0)), torch.full((len(pos),), 6)).with_uiso(0.005)


def _single_thread_run(config, out):
    """run_refine with one torch and one numba thread, as the CLI runs it (so the numbers are the README's)."""
    import numba
    import torch

    from scatterfit.commands.refine import run_refine

    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        return run_refine(config, out=out)
    finally:
        torch.set_num_threads(threads)
        numba.set_num_threads(numba_threads)


def test_c60_cage_from_random_symmetric_starts(tmp_path):
    """The swarm picks an icosahedral group among the seven polyhedral ones and the cage follows: every C
    three-coordinated, 90 bonds all in 1.38–1.48 Å, no three-membered ring, and a fit as good as that of the
    generator's own structure refined with the same loss (README: Rw 0.1238 both)."""
    import sys

    from scatterfit.config import load_config
    from scatterfit.config.builders import build_datasets, build_loss
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    cmi_file("core/intensityfit/C60.iq")
    result = _single_thread_run(EXAMPLES / "c60.toml", tmp_path)
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from c60_starts import checks

    found = checks(result.refined.structure)
    assert result.best["group"] in ("I", "Ih")
    from scatterfit.structure.symmetry import detect_point_group

    pos = result.refined.structure.positions.detach().numpy()
    numbers = result.refined.structure.numbers.numpy()
    assert detect_point_group(pos - pos.mean(0), numbers, tol=0.01, groups=("Ih",)) == "Ih"  # README: Ih
    assert found["three"] == 60 and found["bonds"] == 90 and found["triangles"] == 0 and found["squares"] == 0
    assert found["in_range"] == 1.0
    rw = result.refined.terms["C60"].breakdown["rw"]

    cfg = load_config(EXAMPLES / "c60.toml")
    loss = build_loss(cfg, build_datasets(cfg))
    param = Parametrisation(_c60_reference_structure(), free=["positions", "background", "qdamp", "biso"],
                            values={"qdamp": 0.05, "background_order": 7}, bounds={"positions": 0.3})
    reference = refine(loss, param, [Stage("lbfgs", steps=300, weights={"cn_soft": 0.0, "cn_sharp": 0.3})])
    assert rw <= reference.terms["C60"].breakdown["rw"] + 1e-3


def test_keggin_cage_from_random_symmetric_starts(tmp_path):
    """Reached (README): the swarm settles on T, the cage appears with the group kept (12 six-coordinated W,
    12 terminal, 24 bridging and 4 central O), and freeing every atom near it fits the data as well as the
    textbook Keggin refined with the same loss."""
    import sys

    from conftest import shared_file
    from scatterfit.config import load_config
    from scatterfit.config.builders import build_datasets, build_loss
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    shared_file("alpha_Keggin_W12O40_DanMAX_xray_PDF.gr")
    result = _single_thread_run(EXAMPLES / "keggin.toml", tmp_path)
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from keggin_reference import keggin_topology, textbook_keggin

    topology = keggin_topology(result.refined.structure)
    assert topology["W-O"] == [6] * 12
    assert topology["O by W count"] == [0, 12, 24, 4]
    rw = result.refined.terms["Keggin"].breakdown["rw"]

    cfg = load_config(EXAMPLES / "keggin.toml")
    loss = build_loss(cfg, build_datasets(cfg))
    x = result.best["extra"]
    param = Parametrisation(textbook_keggin(None if x == "none" else x).with_uiso(0.005), free=["positions", "biso"],
                            values={"qdamp": 0.02}, bounds={"positions": 10.0})
    reference = refine(loss, param, [Stage("lbfgs", free=["biso"], steps=50), Stage("lbfgs", steps=300)])
    assert rw <= reference.terms["Keggin"].breakdown["rw"] + 0.01


def test_keggin_from_scattering_alone_fits_but_is_no_keggin(tmp_path):
    """The README's contrast: with the restraints switched off the fit is about as good (Rw 0.151) but every W
    ends five-coordinated and the four central O bind no W."""
    import sys

    from conftest import shared_file

    shared_file("alpha_Keggin_W12O40_DanMAX_xray_PDF.gr")
    result = _single_thread_run(EXAMPLES / "keggin_scattering_only.toml", tmp_path)
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from keggin_reference import keggin_topology

    topology = keggin_topology(result.refined.structure)
    assert result.refined.terms["Keggin"].breakdown["rw"] < 0.17
    assert topology["W-O"] != [6] * 12
    assert topology["O by W count"][3] == 0


def test_c60_from_random_starts_without_symmetry_overfits_a_wrong_network(tmp_path):
    """The README's contrast: random starts without symmetry fit the noise (Rw 0.115–0.118, below the true
    cage's 0.1238) with a network that is not C60."""
    import sys

    cmi_file("core/intensityfit/C60.iq")
    result = _single_thread_run(EXAMPLES / "c60_free_start.toml", tmp_path)
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from c60_starts import checks

    found = checks(result.structure)
    assert result.terms["C60"].breakdown["rw"] < 0.1238
    assert not (found["three"] == 60 and found["triangles"] == 0 and found["squares"] == 0)


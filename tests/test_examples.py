"""End-to-end runs of the example configs on measured data (slow; `make test-all`)."""

import json
from pathlib import Path

import pytest

from conftest import cmi_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
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
    assert summary["chemistry"]["coordination"]["Ni"]["total"] == {"12": 4}
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


def test_c60_cage_from_random_atoms(tmp_path):
    """What is reached (README, benchmarks/c60_starts.py): Rw at the noise level of the simulated data and most C
    three-coordinated (54/60 from this start), but not the cage: three-membered rings remain and the bond lengths
    spread beyond 1.38–1.48 Å."""
    from scatterfit.commands.refine import run_refine

    import torch

    cmi_file("core/intensityfit/C60.iq")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI: basin hopping amplifies floating-point order into different hops
    try:
        run_refine(EXAMPLES / "c60.toml", out=tmp_path)
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((tmp_path / "summary.json").read_text())
    chem = summary["chemistry"]
    assert chem["coordination"]["C"]["C"].get("3", 0) >= 50
    assert 1.40 < chem["bonds"]["C-C"]["mean"] < 1.48
    assert summary["terms"]["C60"]["rw"] < 0.12  # the data's counting noise alone gives Rw ≈ 0.11


def test_keggin_search_on_measured_data_and_the_textbook_reference(tmp_path):
    """What is reached (README): the search does not recover the cage (Rw ≈ 0.20, W mostly four- or
    five-coordinated), while the same loss from a textbook Keggin is far lower: the loss ranks the right
    structure first and the global search is what falls short."""
    import sys

    from conftest import shared_file

    from scatterfit.commands.refine import build_datasets, build_loss, run_refine
    from scatterfit.config import load_config
    from scatterfit.optim import Stage, refine
    from scatterfit.structure.parametrisation import Parametrisation

    import torch

    shared_file("alpha_Keggin_W12O40_DanMAX_xray_PDF.gr")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI (see the C60 test)
    try:
        result = run_refine(EXAMPLES / "keggin.toml", out=tmp_path)
    finally:
        torch.set_num_threads(threads)
    rw = result.refined.terms["Keggin"].breakdown["rw"]
    coordination = json.loads((tmp_path / "summary.json").read_text())["chemistry"]["coordination"]["W"]["O"]
    mean_cn = sum(int(k) * v for k, v in coordination.items()) / 12
    assert rw < 0.20 and mean_cn > 4.4  # reached: Rw 0.198, mean W–O coordination 4.58

    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from keggin_reference import keggin_checks, textbook_keggin

    cfg = load_config(EXAMPLES / "keggin.toml")
    loss = build_loss(cfg, build_datasets(cfg))
    param = Parametrisation(textbook_keggin("P").with_uiso(0.005), free=["positions", "biso"],
                            values={"qdamp": 0.02}, bounds={"positions": 10.0})
    reference = refine(loss, param, [Stage("lbfgs", free=["biso"], steps=50), Stage("lbfgs", steps=300)],
                       progress=False)
    assert keggin_checks(reference.structure)["W six-coordinated"] == 12
    assert reference.loss < 0.5 * result.refined.loss

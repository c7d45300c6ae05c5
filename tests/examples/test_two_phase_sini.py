"""The measured two-phase PDF (Si + Ni, examples/sini_two_phase.toml) against PDFfit2 1.5.1 run live from the same
start: the same Rw within 1 %, the same parameters within their esds, the same atom and mass fractions."""

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_two_phase_sini_matches_pdffit2(tmp_path):
    pytest.importorskip("diffpy.pdffit2")
    from conftest import cmi_file
    from scatterfit.commands.refine import run_refine
    from scatterfit.io import load_dataset
    from scatterfit.testing import pdffit2_phases_reference

    folder = "pdf/ch05Fit2Phase/data/"
    ref = pdffit2_phases_reference(load_dataset(cmi_file(folder + "sini.gr")),
                                   {"Si": cmi_file(folder + "Si_Fd-3m.cif"), "Ni": cmi_file(folder + "Ni_Fm-3m.cif")},
                                   qmax=25.0, rmin=1.5, rmax=30.0, qdamp=0.05, delta1=1.5)
    run_refine(EXAMPLES / "sini_two_phase.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    ours, p, esd = summary["terms"]["sini"], summary["parameters"], summary["uncertainties"]["esd_unscaled"]
    assert abs(ours["rw"] - ref["rw"]) < 0.01 * ref["rw"]
    for phase in ("Si", "Ni"):
        v = ref["values"]
        for name, mine in (("a", f"{phase}.a"), ("uiso", f"{phase}.Uiso_{phase}"), ("delta1", f"{phase}.delta1")):
            tolerance = max(ref["esd"][f"{phase}.{name}"], esd[mine])
            assert abs(p[mine] - v[f"{phase}.{name}"]) < tolerance, (mine, p[mine], v[f"{phase}.{name}"])
        # PDFgui's phase scale and fractions
        assert summary["phases"][phase]["scale"] == pytest.approx(v[f"{phase}.scale"], abs=ref["esd"][f"{phase}.scale"])
        assert summary["phases"][phase]["atom_fraction"] == pytest.approx(ref["fractions"]["atom"][phase], abs=2e-3)
        assert summary["phases"][phase]["mass_fraction"] == pytest.approx(ref["fractions"]["mass"][phase], abs=3e-3)
    assert abs(p["qdamp"] - ref["values"]["qdamp"]) < ref["esd"]["qdamp"]

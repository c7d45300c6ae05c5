"""A measured nanoparticle PDF with the envelope model (examples/cdse_envelope.toml: wurtzite CdSe × a spherical
envelope, the smallest particles of the diffpy.cmi book's chapter 8) against PDFfit2 1.5.1 run live with the same
model and start."""

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow  # about 20 s
def test_cdse_envelope_example_reaches_pdffit2s_minimum(tmp_path):
    pytest.importorskip("diffpy.pdffit2")
    from conftest import cmi_file
    from scatterfit.commands.refine import run_refine
    from scatterfit.io import load_dataset
    from scatterfit.testing import pdffit2_envelope_reference

    folder = "pdf/ch08NPRefinement/data/"
    ref = pdffit2_envelope_reference(load_dataset(cmi_file(folder + "CdSe-1.gr")),
                                     cmi_file(folder + "CdSe-Wurtzite.cif"))
    run_refine(EXAMPLES / "cdse_envelope.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    p, esd = summary["parameters"], summary["uncertainties"]["esd_unscaled"]
    assert summary["terms"]["cdse"]["rw"] <= ref["rw"] + 0.001
    for ours, theirs in (("a", "a"), ("c", "c"), ("spdiameter", "spdiameter")):
        assert abs(p[ours] - ref[theirs][0]) < 2 * max(esd[ours], ref[theirs][1]), ours
    assert abs(p["delta2"] - ref["delta2"][0]) < 0.1 * ref["delta2"][0]

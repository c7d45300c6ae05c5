"""A measured tetragonal crystal under its space group (examples/bazn2as2.toml) against PDFfit2 1.5.1 run live with
the same constraints (written as PDFfit2 equations by testing.pdffit2_symmetric_refinement) from the same start."""

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow  # about 100 s (PDFfit2: 3 s)
def test_bazn2as2_under_i4mmm_matches_pdffit2(tmp_path):
    pytest.importorskip("diffpy.pdffit2")
    from conftest import cmi_file
    from scatterfit.commands.refine import run_refine
    from scatterfit.io import load_dataset
    from scatterfit.structure import read_structure
    from scatterfit.testing import pdffit2_symmetric_refinement

    folder = "pdf/ch06RefineCrystalStructureGen/data/"
    ref = pdffit2_symmetric_refinement(load_dataset(cmi_file(folder + "BaZn2As2_K-Mn-doped_300K.gr")),
                                       read_structure(cmi_file(folder + "BaZn2As2.cif")), qmax=25.0, qdamp=0.03842,
                                       qbroad=0.01707, delta1=1.6)
    run_refine(EXAMPLES / "bazn2as2.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    p, esd = summary["parameters"], summary["uncertainties"]["esd_unscaled"]
    assert abs(summary["terms"]["bza"]["rw"] - ref["rw"]) < 0.01 * ref["rw"]
    assert summary["space_group"]["refined"]["number"] == 139  # the symmetry is kept
    assert abs(p["a"] - ref["lattice"][0]) < esd["a"] and abs(p["c"] - ref["lattice"][2]) < esd["c"]
    for label, value in ref["uiso"].items():
        element = label.split("#")[0]
        assert abs(p[f"Uiso_{element}"] - value) < ref["esd"]["uiso"][label], element
    assert abs(p["delta1"] - ref["delta1"]) < ref["esd"]["delta1"]

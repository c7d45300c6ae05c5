"""The measured Rietveld example (fast enough for the default run: about 6 s)."""

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_lbco_rietveld_on_measured_neutron_pattern_agrees_with_cryspy(tmp_path):
    """The measured HRPT pattern of La0.5Ba0.5CoO3 refined from its starting CIF (examples/lbco_rietveld.toml).
    Reference: cryspy 0.18 (EasyDiffraction's engine) refining the same data from the EasyDiffraction tutorial's
    start, benchmarks/rietveld_lbco.py: Rwp 0.0721, a 3.89087 Å, zero 0.6226°, U 0.0816, V −0.1161, W 0.1205,
    Y 0.0844, Biso(O) 1.391 Å² (cryspy's background: six interpolated points; ours: Chebyshev of order 5)."""
    from conftest import shared_file
    from scatterfit.commands.refine import run_refine

    shared_file("LBCO_HRPT_neutron_powder/hrpt.xye")
    run_refine(EXAMPLES / "lbco_rietveld.toml", out=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    term, p = summary["terms"]["hrpt"], summary["parameters"]
    assert term["rw"] < 0.0725 and term["rp"] < 0.06 and term["r_bragg"] < 0.05
    assert term["chi2_per_point"] < 1.35
    assert abs(p["a"] - 3.89087) < 3e-4
    assert abs(p["zero"] - 0.6226) < 0.01
    for name, ref in (("U", 0.0816), ("V", -0.1161), ("W", 0.1205), ("Y", 0.0844)):
        assert abs(p[name] - ref) < 0.05 * abs(ref), name
    assert abs(p["Biso[O#2]"] - 1.391) < 0.1
    assert summary["uncertainties"]["esd"]["a"] < 1e-3
    assert (tmp_path / "refined.cif").is_file() and (tmp_path / "fit_hrpt.png").is_file()

"""Rietveld refinement of the measured La0.5Ba0.5CoO3 HRPT neutron pattern (../shared/data) by scatterfit and by
cryspy (the engine behind EasyDiffraction) from the same start, with the same free parameters: the cell, one
Biso per site, zero shift, U, V, W, Y, scale and background (cryspy: 6 interpolated points; scatterfit: a
Chebyshev series of order 5). Prints a table of Rwp, a, Biso, widths and wall time, and their ratios.

    python benchmarks/rietveld_lbco.py
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "LBCO_HRPT_neutron_powder"


def cryspy_rcif(tth, y, sigma) -> str:
    meas = "\n".join(f"{t:.3f} {a:.3f} {s:.3f}" for t, a, s in zip(tth, y, sigma))
    return f"""global_
data_lbco
_cell_length_a 3.88()
_cell_length_b 3.88
_cell_length_c 3.88
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_space_group_name_H-M_alt "P m -3 m"
_space_group_IT_coordinate_system_code 1
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_adp_type
_atom_site_B_iso_or_equiv
_atom_site_occupancy
La La 0 0 0 Biso 0.5() 0.5
Ba Ba 0 0 0 Biso 0.5() 0.5
Co Co 0.5 0.5 0.5 Biso 0.5() 1.0
O O 0 0.5 0.5 Biso 0.5() 1.0

data_hrpt
_setup_wavelength 1.494
_setup_field 0.0
_setup_offset_2theta 0.6()
_setup_radiation neutrons
_pd_instr_resolution_u 0.1()
_pd_instr_resolution_v -0.1()
_pd_instr_resolution_w 0.1()
_pd_instr_resolution_x 0.0
_pd_instr_resolution_y 0.1()
_range_2theta_min {tth[0]}
_range_2theta_max {tth[-1]}
loop_
_phase_label
_phase_scale
_phase_igsize
lbco 10.0() 0.0
loop_
_pd_background_2theta
_pd_background_intensity
10 170()
30 170()
50 170()
80 170()
110 170()
165 170()
loop_
_pd_meas_2theta
_pd_meas_intensity
_pd_meas_intensity_sigma
{meas}
"""


def run_cryspy(tth, y, sigma) -> dict:
    import cryspy

    obj = cryspy.str_to_globaln(cryspy_rcif(tth, y, sigma))
    t0 = time.perf_counter()
    cryspy.rhochi_rietveld_refinement(obj)
    wall = time.perf_counter() - t0
    from cryspy.procedure_rhochi.rhochi_by_dictionary import rhochi_calc_chi_sq_by_dictionary

    crystal = obj.crystal_lbco
    pd = obj.pd_hrpt
    out = {}
    rhochi_calc_chi_sq_by_dictionary(obj.get_dictionary(), dict_in_out=out)
    calc = out["pd_hrpt"]["signal_plus"] + out["pd_hrpt"]["signal_minus"] + out["pd_hrpt"]["signal_background"]
    w = 1.0 / sigma**2
    rwp = float(np.sqrt((w * (y - calc) ** 2).sum() / (w * y**2).sum()))
    sites = {a.label: a.b_iso_or_equiv for a in crystal.atom_site.items}
    return {"Rwp": rwp, "a": crystal.cell.length_a, "Biso A": sites["La"], "Biso Co": sites["Co"],
            "Biso O": sites["O"], "zero": pd.setup.offset_ttheta, "U": pd.pd_instr_resolution.u,
            "V": pd.pd_instr_resolution.v, "W": pd.pd_instr_resolution.w, "Y": pd.pd_instr_resolution.y,
            "time_s": wall}


def run_scatterfit(config: Path | None = None, out: Path | None = None) -> dict:
    import json
    import tempfile

    out = out or Path(tempfile.mkdtemp()) / "lbco"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(config or ROOT / "examples" /
                                                                      "lbco_rietveld.toml"),
                    "--out", str(out)], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    p = summary["parameters"]
    return {"Rwp": summary["terms"]["hrpt"]["rw"], "a": p["a"], "Biso A": p["Biso[Ba/La#0]"],
            "Biso Co": p["Biso[Co#1]"], "Biso O": p["Biso[O#2]"], "zero": p["zero"], "U": p["U"], "V": p["V"],
            "W": p["W"], "Y": p["Y"], "time_s": wall, "refine_s": summary["wall_time_s"]}


def five_thousand_points(out: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A 5,000-point pattern of the cubic perovskite: the refined model of the measured pattern (its fit CSV in
    ``out``) on a 2θ grid of 5,000 points over the same range, with Poisson noise of the measured counts' size;
    written as .xye beside a copy of the example config that reads it. Returns (config, 2θ, counts, σ)."""
    fit = np.loadtxt(out / "fit_hrpt.csv", delimiter=",", skiprows=1)
    tth = np.linspace(fit[0, 0], fit[-1, 0], 5000)
    model = np.interp(tth, fit[:, 0], fit[:, 2])
    y = np.random.default_rng(0).poisson(np.clip(model, 1.0, None)).astype(float)
    sigma = np.sqrt(np.clip(y, 1.0, None))
    folder = out.parent
    np.savetxt(folder / "lbco5000.xye", np.column_stack([tth, y, sigma]), fmt="%.5f")
    text = (ROOT / "examples" / "lbco_rietveld.toml").read_text()
    text = text.replace('"../../shared/data/LBCO_HRPT_neutron_powder/hrpt.xye"', f'"{folder / "lbco5000.xye"}"')
    text = text.replace('"../../shared/data/', f'"{ROOT.parent / "shared" / "data"}/')
    config = folder / "lbco5000.toml"
    config.write_text(text)
    return config, tth, y, sigma


def main() -> None:
    data = np.loadtxt(DATA / "hrpt.xye", comments="#")
    tth, y, sigma = data[:, 0], data[:, 1], data[:, 2]
    ours = run_scatterfit()
    with warnings.catch_warnings():  # cryspy warns of negative widths it meets on the way
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = run_cryspy(tth, y, sigma)
    print(f"{'quantity':<10}{'scatterfit':>14}{'cryspy':>14}{'ratio':>10}")
    for key in theirs:
        ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
        print(f"{key:<10}{ours[key]:>14.5f}{theirs[key]:>14.5f}{ratio:>10.3f}")
    print("scatterfit time_s is the whole command (start-up, refinement, uncertainties, report), refine_s the "
          "refinement; cryspy's time is the fit only")
    import tempfile

    out = Path(tempfile.mkdtemp()) / "lbco"
    run_scatterfit(out=out)
    config, tth, y, sigma = five_thousand_points(out)
    ours = run_scatterfit(config, out.parent / "lbco5000")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = run_cryspy(tth, y, sigma)
    print("\n5,000-point pattern of the same perovskite (the refined model + Poisson noise), same start:")
    print(f"{'quantity':<10}{'scatterfit':>14}{'cryspy':>14}{'ratio':>10}")
    for key in ("Rwp", "a", "time_s"):
        print(f"{key:<10}{ours[key]:>14.5f}{theirs[key]:>14.5f}{ours[key] / theirs[key]:>10.3f}")
    print(f"scatterfit refinement alone: {ours['refine_s']:.2f} s (target: under 10 s on one core)")


if __name__ == "__main__":
    main()

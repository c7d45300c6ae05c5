"""Panalytical .xrdml and GSAS .gsa/.fxye powder files: written here in each format from one known pattern and
read back (values, units, wavelengths), and broken files refused with one line."""

import numpy as np
import pytest

from scatterfit import ScatterfitError
from scatterfit.io import load_dataset

TTH = np.round(np.arange(10.0, 12.0, 0.02), 4)
COUNTS = np.round(100 + 50 * np.exp(-((TTH - 11.0) / 0.1) ** 2))


def _xrdml(listed: bool, intensities: bool) -> str:
    axis = (f"<listPositions>{' '.join(map(str, TTH))}</listPositions>" if listed else
            f"<startPosition>{TTH[0]}</startPosition><endPosition>{TTH[-1]}</endPosition>")
    values = (f'<intensities unit="counts/s">{" ".join(str(c / 2.0) for c in COUNTS)}</intensities>' if intensities
              else f'<counts unit="counts">{" ".join(str(int(c)) for c in COUNTS)}</counts>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5">
 <xrdMeasurement measurementType="Scan">
  <usedWavelength intended="K-Alpha 1">
   <kAlpha1 unit="Angstrom">1.5405980</kAlpha1><kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
   <kBeta unit="Angstrom">1.3922500</kBeta><ratioKAlpha2KAlpha1>0.5000</ratioKAlpha2KAlpha1>
  </usedWavelength>
  <scan><dataPoints>
   <positions axis="2Theta" unit="deg">{axis}</positions>
   <positions axis="Omega" unit="deg"><startPosition>5</startPosition><endPosition>6</endPosition></positions>
   <commonCountingTime unit="seconds">2.0</commonCountingTime>
   {values}
  </dataPoints></scan>
 </xrdMeasurement>
</xrdMeasurements>
"""


@pytest.mark.parametrize("listed,intensities", [(False, False), (True, True)])
def test_xrdml_reads_positions_counts_and_wavelengths(tmp_path, listed, intensities):
    path = tmp_path / "scan.xrdml"
    path.write_text(_xrdml(listed, intensities))
    d = load_dataset(path)
    assert d.kind == "xrd" and d.x_unit == "degrees"
    np.testing.assert_allclose(d.x, TTH, atol=1e-9)
    np.testing.assert_allclose(d.y, COUNTS)
    np.testing.assert_allclose(d.sigma, np.sqrt(COUNTS))
    assert d.metadata["wavelength"] == 1.540598 and d.metadata["powder"]["wavelength2"] == 1.544426
    assert d.metadata["powder"]["ratio"] == 0.5


def test_gsas_const_esd_std_and_fxye(tmp_path):
    n = len(TTH)
    sig = np.sqrt(COUNTS)
    esd = "".join(f"{c:8.1f}{s:8.2f}" for c, s in zip(COUNTS, sig))
    records = "\n".join(esd[i:i + 80] for i in range(0, len(esd), 80))
    (tmp_path / "a.gsa").write_text(f"title line\nBANK 1 {n} {(2 * n + 9) // 10} CONST {TTH[0] * 100:.2f} 2.00 0 0 "
                                    f"ESD\n{records}\n")
    std = "".join(f"{c:8.1f}" for c in COUNTS)
    (tmp_path / "b.gsa").write_text(f"title\nBANK 1 {n} {(n + 9) // 10} CONST {TTH[0] * 100:.2f} 2.00 0 0 STD\n"
                                    + "\n".join(std[i:i + 80] for i in range(0, len(std), 80)) + "\n")
    rows = "\n".join(f"{t * 100:.3f} {c:.1f} {s:.4f}" for t, c, s in zip(TTH, COUNTS, sig))
    (tmp_path / "c.fxye").write_text(f"title\nBANK 1 {n} {n} CONS {TTH[0] * 100} 2.0 0 0 FXYE\n{rows}\n")
    for name in ("a.gsa", "b.gsa", "c.fxye"):
        d = load_dataset(tmp_path / name)
        assert d.kind == "xrd" and d.x_unit == "degrees", name
        np.testing.assert_allclose(d.x, TTH, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(d.y, COUNTS, err_msg=name)
        np.testing.assert_allclose(d.sigma, sig, rtol=1e-3, err_msg=name)


def test_tof_fxye_is_read_in_microseconds(tmp_path):
    t = np.arange(20000.0, 20100.0, 10.0)
    rows = "\n".join(f"{x:.1f} 5.0 1.0" for x in t)
    (tmp_path / "tof.fxye").write_text(f"bank\nBANK 1 {len(t)} {len(t)} CONS 20000 10 0 0 FXYE\n{rows}\n")
    d = load_dataset(tmp_path / "tof.fxye", radiation="neutron")
    assert d.x_unit == "microseconds" and d.radiation == "neutron"
    np.testing.assert_allclose(d.x, t)


def test_broken_diffractometer_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.xrdml"
    bad.write_text("<xrdMeasurements><unclosed>")
    with pytest.raises(ScatterfitError, match="bad.xrdml: not a valid XRDML"):
        load_dataset(bad)
    empty = tmp_path / "empty.xrdml"
    empty.write_text("<xrdMeasurements></xrdMeasurements>")
    with pytest.raises(ScatterfitError, match="no <dataPoints>"):
        load_dataset(empty)
    short = tmp_path / "short.gsa"
    short.write_text("title\nBANK 1 50 5 CONST 1000 2 0 0 STD\n   100.0   200.0\n")
    with pytest.raises(ScatterfitError, match="says 50 points"):
        load_dataset(short)
    none = tmp_path / "none.gsa"
    none.write_text("just a title\n1 2 3\n")
    with pytest.raises(ScatterfitError, match="no BANK record"):
        load_dataset(none)


def test_xrdml_doublet_reaches_the_powder_model(tmp_path):
    from scatterfit.scattering.models import make_forward_model

    path = tmp_path / "scan.xrdml"
    path.write_text(_xrdml(False, False))
    setup = make_forward_model("powder", load_dataset(path)).setup
    assert (setup.geometry, setup.wavelength, setup.wavelength2, setup.ratio) == ("cw", 1.540598, 1.544426, 0.5)


def test_low_angle_scan_with_a_wavelength_is_2theta_and_header_keys_stay_out_of_the_model(tmp_path):
    """A synchrotron 2θ scan that ends below 40° is read as 2θ once a wavelength comes with it (not as Q), and a
    header's "polarisation" (a beam's polarisation fraction in PDF software) does not set the monochromator K."""
    from scatterfit.scattering.models import make_forward_model

    path = tmp_path / "sync.xye"
    rows = "\n".join(f"{t:.3f} {c:.1f} {np.sqrt(c):.3f}" for t, c in zip(TTH, COUNTS))
    path.write_text(f"# polarisation = 0.99\n{rows}\n")
    assert load_dataset(path).x_unit == "inv_angstrom"  # no wavelength: Q is the reading without evidence
    data = load_dataset(path, wavelength=0.2072)
    assert data.x_unit == "degrees" and data.metadata["polarisation"] == 0.99
    setup = make_forward_model("powder", data).setup
    assert setup.wavelength == 0.2072 and setup.polarisation == 1.0


@pytest.mark.parametrize("column,unit,factor", [("2th_deg", "degrees", 1.0), ("q_nm^-1", "inv_angstrom", 0.1),
                                                ("q_A^-1", "inv_angstrom", 1.0)])
def test_pyfai_column_names_set_the_x_unit(tmp_path, column, unit, factor):
    """pyFAI names its x column: a 2θ scan ending below 40° stays 2θ, and Q in nm⁻¹ is converted to Å⁻¹."""
    path = tmp_path / "pyfai.xy"
    rows = "\n".join(f"{t:.4f} {c:.1f}" for t, c in zip(TTH, COUNTS))
    path.write_text(f"# == pyFAI calibration ==\n# Wavelength: 1.0e-10 m\n#  {column:>12}  I\n{rows}\n")
    d = load_dataset(path)
    assert d.x_unit == unit
    np.testing.assert_allclose(d.x, TTH * factor)


def _pdcif(style: str) -> str:
    head = "data_pattern\n_diffrn_radiation_wavelength 1.5406\n_diffrn_radiation_probe x-ray\n"
    if style == "range":  # counts with su in parentheses, 2θ from the range
        rows = "\n".join(f"{int(c)}({int(round(np.sqrt(c)))})" for c in COUNTS)
        return (head + f"_pd_meas_2theta_range_min {TTH[0]}\n_pd_meas_2theta_range_max {TTH[-1]}\n"
                f"_pd_meas_2theta_range_inc 0.02\nloop_\n_pd_meas_counts_total\n{rows}\n")
    if style == "scan":  # a 2θ column and intensities with their su column
        rows = "\n".join(f"{t} {c / 2.0:.1f} {np.sqrt(c) / 2.0:.4f}" for t, c in zip(TTH, COUNTS))
        return head + f"loop_\n_pd_meas_2theta_scan\n_pd_meas_intensity_total\n_pd_meas_intensity_total_su\n{rows}\n"
    rows = "\n".join(f"{1000 + 10 * k:.1f} {c:.1f} {1 / c:.6g}" for k, c in enumerate(COUNTS))  # time of flight
    return ("data_tof\n_diffrn_radiation_probe neutron\nloop_\n_pd_meas_time_of_flight\n_pd_proc_intensity_total\n"
            f"_pd_proc_ls_weight\n{rows}\n")


@pytest.mark.parametrize("style", ["range", "scan", "tof"])
def test_pdcif_powder_blocks(tmp_path, style):
    path = tmp_path / "pattern.cif"
    path.write_text(_pdcif(style))
    d = load_dataset(path)
    assert d.kind == "xrd" and len(d.x) == len(COUNTS)
    if style == "tof":
        assert d.x_unit == "microseconds" and d.radiation == "neutron"
        np.testing.assert_allclose(d.sigma, np.sqrt(COUNTS), rtol=1e-5)  # from the weights 1/σ²
        return
    assert d.x_unit == "degrees" and d.radiation == "xray" and d.metadata["wavelength"] == 1.5406
    np.testing.assert_allclose(d.x, TTH, atol=1e-9)
    scale = 1.0 if style == "range" else 0.5
    np.testing.assert_allclose(d.y, scale * COUNTS)
    expected = np.round(np.sqrt(COUNTS)) if style == "range" else np.sqrt(COUNTS) / 2.0
    np.testing.assert_allclose(d.sigma, expected, atol=1e-4)


def test_a_structure_cif_given_as_data_is_one_line(tmp_path):
    path = tmp_path / "ni.cif"
    path.write_text("data_ni\n_cell_length_a 3.52\nloop_\n_atom_site_label\n_atom_site_fract_x\nNi 0\n")
    with pytest.raises(ScatterfitError, match="no powder data loop.*goes in \\[structure\\]"):
        load_dataset(path)

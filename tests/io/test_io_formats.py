"""Every PDF file format the README claims, laid out as the programs write them (headers generated here, in the
layout of real PDFgetX2, PDFgetN and PDFgui output), and the encodings and separators users send."""

import numpy as np
import pytest

from scatterfit.io import load_dataset

R = np.round(np.arange(0.01, 3.0, 0.01), 4)
G = np.sin(3 * R) * R
DG = 0.02 + 0.001 * R

PDFGETX2_HEADER = """History written:       Wed Jul 01 00:37:52 2025
Produced by user
####### Get_XPDF #######

##### General_Setting
title=Ni at 300K with MAR345 Image Plate at 6-ID-DAPS Synchrotron
quiet=0    debug=0    autosave_isa=1    savefilenamebase=Ni_2-8.chi
iqfilesurfix=.iq    sqfilesurfix=.sq    fqfilesurfix=.fq    grfilesurfix=.gr

##### DataFileFormat
datatype=1    (0:SPEC, 1:CHI, 2:nxm column, 3:unknown)
det#  used  xcol detcol deterrcol xmin  xmax  add_det  mul_det
  0    1    0    1    3    0.00000    35.0000    0.00000    1.00000

##### Experiment_Setup
temperature=300.000    containermut=0.0200000    filtermut=0.0200000
## X-Ray   radiationtype=3
lambda=0.126514    energy=98.0010    polartype=2    polardegree=0.960000

##### Sample_Setup information    num_atoms=2
#L symbol valence fractions z user_f1 user_f2 user_macoef
  Ni    0.00   0.750000    28   0.000000   0.000000   0.000000
  Pt    0.00   0.250000    78   0.000000   0.000000   0.000000
geometry=2    mut=0.10590000    numberdensity=0.109910

##### SqGr_Optimization Setup
ftmethod=0
## S(q)  qmin=1.000000    qmax=40.000000    qgrid=0.000000
## G(r)  rmin=0.000000    rmax=20.000000    rgrid=0.010000
optqmin=20.0000    optqmax=40.0000    optqgrid=0.00000
##### start data
#F Ni_2-8.chi.gr
#D Tue Feb  8 11:46:14 2005
#C
#S 1    G(r)
#D
#L r    G(r)    d_r    d_Gr
"""

PDFGETN_HEADER = """History written: Mon Apr 30 17:19:28 2007
produced by bozin
##### Run Information     runCorrection=T
prep=gsas     machine=gppd
in beam: radius=0.454     height=4.392
temp=300     runTitle=Ni in CCR with Heat Shields 0of1

##### Vanadium     runCorrection=T
run=32385     background=32387

##### Sample Material     numElements=1     NormLaue=0.00000
Element relAtomNum atomMass atomCoherCS atomIncoherCS atomAbsorpCS
  Ni        1.0000   58.693     13.3000        5.2000      4.49000
density=2.934     effDensity=3.2444

##### Banks=6  deltaQ=0.02  matchRef=0  matchScal=T  matchOffset=T
bank   angle   blendQmin   blendQmax       (0.0 means no info)
  1    145.0        2.59    37.00
  2    125.0        2.42    34.41

##### Program Specific Information
numRpoints=2000     maxR=20.0     numDensity=0.0   intMaxR=1.5
## Damp     Qmin=0.95     Qmax=27.00     startDampQ=27.00    QAveMin=0.6
##### start data
#O0 rg_int sig_rg_int low_int sig_low_int rmax rhofit
#S 1 - PDF from PDFgetN
#P0    3.63025    7.56024    0.15089    0.23482    1.50  0.0744
#L r G(r) dr dG(r)
"""

PDFGUI_FGR_HEADER = """History written: Tue Dec  1 12:00:00 2026
produced by user
##### PDFgui fit
stype=N  neutron scattering
qmax=26.00
qdamp=0.0603
qbroad=0
dscale=1
fitrmin=0.01
fitrmax=2.99
# metadata
temperature=300
##### start data
#L r(A) G(r) d_r d_Gr Gdiff
"""


def _rows(columns) -> str:
    return "".join(" ".join(f"{v:.6e}" for v in row) + "\n" for row in zip(*columns))


def test_pdfgetx2_file_as_written(tmp_path):
    p = tmp_path / "ni.gr"
    body = _rows([R, G, -0.0138 * R, DG])
    # PDFgetX2 pads the tail of the file with zero columns: read the first four, say what was ignored
    body += "".join(f"{r:.6e} {0.0:.6e} {0.0:.6e} {0.02:.6e} 0.0 0.0\n" for r in np.arange(3.0, 3.05, 0.01))
    p.write_text(PDFGETX2_HEADER + body)
    d = load_dataset(p)
    assert d.kind == "gr" and d.radiation == "xray"
    assert d.metadata["qmax"] == 40.0 and d.metadata["qmin"] == 1.0
    assert d.metadata["wavelength"] == pytest.approx(0.126514)
    assert d.metadata["composition"] == {"Ni": 0.75, "Pt": 0.25}
    np.testing.assert_allclose(d.x[: len(R)], R, atol=1e-9)
    np.testing.assert_allclose(d.y[: len(R)], G, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(d.sigma[: len(R)], DG, rtol=1e-6)  # the dG column, not the (negative) dr column
    assert any("extra columns are ignored" in w for w in d.metadata["warnings"])


def test_pdfgetn_file_as_written(tmp_path):
    p = tmp_path / "ni_neutron.gr"
    p.write_text(PDFGETN_HEADER + "".join(f"  {r:.3f}  {g:9.3f}   0.0  {s:9.4f}\n" for r, g, s in zip(R, G, DG)))
    d = load_dataset(p)
    assert d.radiation == "neutron"
    assert d.metadata["qmax"] == 27.0 and d.metadata["qmin"] == 0.95
    assert d.metadata["composition"] == {"Ni": 1.0}
    np.testing.assert_allclose(d.sigma, DG, atol=6e-5)  # written with 4 decimals
    assert len(d) == len(R)


def test_pdfgui_fit_export(tmp_path):
    p = tmp_path / "fit.fgr"
    gcalc, gdiff = G * 0.9, G * 0.1
    p.write_text(PDFGUI_FGR_HEADER + "".join(f"{r:g} {gc:g} 0.0 {0.01:g} {gd:g}\n"
                                              for r, gc, gd in zip(R, gcalc, gdiff)))
    d = load_dataset(p)
    assert d.kind == "gr" and d.radiation == "neutron" and d.metadata["qmax"] == 26.0
    assert d.metadata["qdamp"] == pytest.approx(0.0603)
    np.testing.assert_allclose(d.y, gcalc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.metadata["gdiff"], gdiff, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le"])
def test_unicode_encodings_are_read(tmp_path, encoding):
    p = tmp_path / "x.gr"
    text = "# r (Å) G(r)\n" + _rows([R, G])
    p.write_bytes(text.encode(encoding))
    d = load_dataset(p)
    np.testing.assert_allclose(d.y, G, rtol=1e-6, atol=1e-9)


def test_decimal_commas(tmp_path):
    p = tmp_path / "comma.dat"
    p.write_text("".join(f"{q:.3f}\t{v:.4f}\n".replace(".", ",") for q, v in zip(R + 1, G)))
    d = load_dataset(p)
    np.testing.assert_allclose(d.x, R + 1, atol=1e-9)
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("1,5;2,25\n2,5;3,0\n")
    np.testing.assert_allclose(load_dataset(semicolons).y, [2.25, 3.0])
    csv = tmp_path / "plain.csv"  # commas as column separators stay columns
    csv.write_text("1,5\n2,6\n")
    np.testing.assert_allclose(load_dataset(csv).y, [5, 6])


TTH = np.round(np.linspace(10.0, 80.0, 351), 3)
INTENSITY = np.round(100 + 1000 * np.exp(-0.5 * ((TTH - 44.5) / 0.2) ** 2), 2)


@pytest.mark.parametrize("name, text", [
    ("scan.csv", "2theta,intensity\n" + "".join(f"{a},{b}\n" for a, b in zip(TTH, INTENSITY))),
    ("scan.chi", "scan.chi\n2-Theta Angle (Degrees)\nIntensity\n       351\n"  # Fit2D's four header lines
     + "".join(f"  {a:.6e}  {b:.6e}\n" for a, b in zip(TTH, INTENSITY))),
    ("scan.dat", "Two_Theta  Counts\n" + "".join(f"{a} {b}\n" for a, b in zip(TTH, INTENSITY))),
])
def test_a_scan_whose_column_title_says_2theta_is_a_powder_pattern_in_degrees(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    d = load_dataset(path)
    assert (d.kind, d.x_unit, len(d)) == ("xrd", "degrees", 351) and "warnings" not in d.metadata
    np.testing.assert_allclose(d.x, TTH)
    np.testing.assert_allclose(d.y, INTENSITY)


def test_a_q_column_in_inverse_nanometres_is_converted_to_inverse_angstroms(tmp_path):
    q = np.linspace(0.1, 5.0, 100)
    path = tmp_path / "saxs.dat"
    path.write_text("q (nm-1)   I   sigma\n" + "".join(f"{a} {1 / a} 0.01\n" for a in q))
    d = load_dataset(path)
    assert (d.kind, d.x_unit) == ("iq", "inv_angstrom") and d.metadata["x_converted"] == "Q from nm⁻¹ to Å⁻¹"
    np.testing.assert_allclose(d.x, q / 10)


def test_a_generic_scan_from_10_to_80_without_a_unit_is_read_as_2theta_and_says_so(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_text("".join(f"{a}\t{b}\r\n" for a, b in zip(TTH, INTENSITY)))
    d = load_dataset(path)
    assert (d.kind, d.x_unit) == ("xrd", "degrees")
    assert "read as 2θ in degrees" in d.metadata["warnings"][0] and "scan.txt" in d.metadata["warnings"][0]
    q = np.linspace(0.5, 25.0, 500)  # a total-scattering intensity in Q stays one
    path.write_text("".join(f"{a} {1 + np.sin(a) / a}\n" for a in q))
    assert (load_dataset(path).kind, load_dataset(path).x_unit) == ("iq", "inv_angstrom")

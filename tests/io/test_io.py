import numpy as np
import pytest

from conftest import cmi_file, shared_file
from scatterfit import ScatterfitError
from scatterfit.io import load_dataset


def test_xpdfsuite_gr_header():
    d = load_dataset(cmi_file("pdf/ch03NiModelling/data/Ni.gr"))
    assert d.kind == "gr" and d.radiation == "xray" and d.x_unit == "angstrom"
    assert d.metadata["wavelength"] == pytest.approx(0.1836)
    assert d.metadata["qmax"] == pytest.approx(25.0)
    assert len(d) == 6001 and d.x[0] == 0 and d.x[-1] == pytest.approx(60.0)


def test_intensity_with_sigma():
    d = load_dataset(cmi_file("core/intensityfit/C60.iq"))
    assert d.kind == "iq" and d.sigma is not None and len(d) == 380


def test_shared_measured_files():
    f = load_dataset(shared_file("SiO2_glass_NIMROD_neutron_FQ.mint01"), radiation="neutron")
    assert f.kind == "fq" and f.radiation == "neutron" and f.x[-1] < 60
    assert np.abs(f.y[-5:]).sum() > 0  # trailing zero padding removed
    k = load_dataset(shared_file("alpha_Keggin_W12O40_DanMAX_xray_PDF.gr"))
    assert k.kind == "gr" and k.x[-1] == pytest.approx(30.0, abs=0.1)
    a = load_dataset(shared_file("argon_liquid_85K_yarnell1973_SQ.sq"), radiation="neutron")
    assert a.kind == "sq" and 0.5 < float(np.median(a.y)) < 1.5


def test_pdfgetx2_keyvalue_four_columns(tmp_path):
    p = tmp_path / "x.gr"
    p.write_text("title=test\nqmax=30.0\nstype=N\n#L r G dr dG\n1.0 0.5 0 0.01\n1.1 0.6 0 0.01\n1.2 0.4 0 0.02\n")
    d = load_dataset(p)
    assert d.radiation == "neutron" and d.metadata["qmax"] == 30.0
    np.testing.assert_allclose(d.sigma, [0.01, 0.01, 0.02])


def test_rmcprofile_count_and_title(tmp_path):
    p = tmp_path / "x.fq"
    p.write_text("3\nsome title\n0.5 1.0\n0.6 1.1\n0.7 0.9\n")
    d = load_dataset(p)
    assert len(d) == 3 and d.metadata["title"] == "some title" and d.kind == "fq"


def test_user_overrides_header():
    d = load_dataset(cmi_file("pdf/ch03NiModelling/data/Ni.gr"), radiation="neutron", qmax=20.0)
    assert d.radiation == "neutron" and d.metadata["qmax"] == 20.0


@pytest.mark.parametrize("content, message", [
    ("", "no data"),
    ("# only header\n", "no data"),
    ("1 2\n2 abc\n", ":2: not a number"),
    ("1 2\n2 nan\n", ":2: NaN"),
    ("1 2 3\n2 3\n", ":2: 2 columns"),
    ("1\n2\n", "two columns"),
    ("1 2\n3 4\n2 5\n", ":3: x values are not monotonic"),
])
def test_broken_files_one_clear_error(tmp_path, content, message):
    p = tmp_path / "bad.dat"
    p.write_text(content)
    with pytest.raises(ScatterfitError, match=message) as info:
        load_dataset(p)
    assert "bad.dat" in str(info.value) and "\n" not in str(info.value)


def test_binary_and_missing(tmp_path):
    p = tmp_path / "bin.gr"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ScatterfitError, match="binary"):
        load_dataset(p)
    with pytest.raises(ScatterfitError, match="not found"):
        load_dataset(tmp_path / "nothing.gr")

import numpy as np
import pytest
from ase.build import bulk
from ase.cluster import Icosahedron

from scatterfit.cli import main


@pytest.fixture
def files(tmp_path):
    Icosahedron("Au", 3).write(str(tmp_path / "au.xyz"))
    bulk("Ni", "fcc", a=3.52, cubic=True).write(str(tmp_path / "ni.cif"))
    return tmp_path


def _api_pattern(structure, kind, radiation, x):
    """What the command must write, from the API called directly with the same settings."""
    import torch

    from scatterfit import scattering as sc

    x = torch.as_tensor(x)
    if kind in ("iq", "saxs"):
        return sc.debye_intensity(structure, x, radiation=radiation).numpy()
    i = sc.debye_intensity(structure, x, radiation=radiation)
    s = sc.structure_factor(i, structure, x, radiation=radiation)
    return (s if kind == "sq" else sc.reduced_structure_factor(s, x)).numpy()


@pytest.mark.parametrize("kind", ["iq", "sq", "fq", "gr", "saxs"])
@pytest.mark.parametrize("radiation", ["xray", "neutron"])
def test_simulate_cluster_kinds(files, kind, radiation):
    from scatterfit.structure import read_structure

    out = files / f"{kind}.csv"
    assert main(["simulate", str(files / "au.xyz"), "--kind", kind, f"--{radiation}", "--out", str(out), "--plot",
                 str(files / f"{kind}.png")]) == 0
    x, y = np.loadtxt(out, delimiter=",", unpack=True)
    assert np.isfinite(y).all()
    assert (files / f"{kind}.png").stat().st_size > 1000
    if kind == "saxs":
        assert x[0] == pytest.approx(0.005) and x[-1] == pytest.approx(0.5)
    if kind != "gr":
        expected = _api_pattern(read_structure(files / "au.xyz"), kind, radiation, x)
        np.testing.assert_allclose(y, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())
    else:
        assert x[0] == pytest.approx(0.01) and 2.7 < x[np.argmax(y)] < 3.1  # Au–Au neighbours of an icosahedron


def test_simulate_crystal_gr_neutron(files):
    out = files / "ni.csv"
    assert main(["simulate", str(files / "ni.cif"), "--kind", "gr", "--neutron", "--qmax", "25", "--out",
                 str(out)]) == 0
    r, g = np.loadtxt(out, delimiter=",", unpack=True)
    assert r.shape == (3000,)
    import torch

    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure import read_structure

    expected = pdf(read_structure(files / "ni.cif"), torch.as_tensor(r), qmax=25.0, radiation="neutron")
    np.testing.assert_allclose(g, expected.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("args, message", [
    (["--rmin", "5", "--rmax", "1"], "rmax"),
    (["--qmax", "0"], "qmax"),
])
def test_bad_settings_one_line(files, capsys, args, message):
    assert main(["simulate", str(files / "au.xyz"), "--out", str(files / "x.csv"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_bad_files_one_line(files, capsys):
    (files / "bad.xyz").write_text("3\nnot a number\nXx 0 0 0\n")
    for path in (files / "bad.xyz", files / "missing.cif"):
        assert main(["simulate", str(path), "--out", str(files / "x.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path.name) in err[0]
    (files / "empty.xyz").write_text("0\n\n")
    assert main(["simulate", str(files / "empty.xyz"), "--out", str(files / "x.csv")]) == 2

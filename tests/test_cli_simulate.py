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


@pytest.mark.parametrize("kind", ["iq", "sq", "fq", "gr", "saxs"])
def test_simulate_cluster_kinds(files, kind):
    out = files / f"{kind}.csv"
    assert main(["simulate", str(files / "au.xyz"), "--kind", kind, "--out", str(out), "--plot",
                 str(files / f"{kind}.png")]) == 0
    data = np.loadtxt(out, delimiter=",")
    assert data.shape[1] == 2 and np.isfinite(data).all()
    assert (files / f"{kind}.png").stat().st_size > 1000


def test_simulate_crystal_gr_neutron(files):
    out = files / "ni.csv"
    assert main(["simulate", str(files / "ni.cif"), "--kind", "gr", "--neutron", "--qmax", "25", "--out",
                 str(out)]) == 0
    assert np.loadtxt(out, delimiter=",").shape == (3000, 2)


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

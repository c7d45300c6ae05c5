"""A core–shell particle through the config: a [[phases]] table with shell_of, refined against a simulated G(r) of
a CdS core in a ZnS shell; the core's diameter and the shell's wall come back, and a sphere of ZnS beside the
core (two particles, no shell) fits worse. A shell_of naming no phase is one line naming the key."""

import json

import numpy as np
import pytest
import torch

from scatterfit import ScatterfitError
from scatterfit.commands.refine import run_refine
from scatterfit.config import load_config
from scatterfit.datasets import cmi_example
from scatterfit.scattering.mixture import PhaseMixture
from scatterfit.scattering.models import PDFModel
from scatterfit.structure.cif import read_cif
from scatterfit.structure.phases import MixtureParametrisation

TRUTH = {"CdS.spdiameter": 26.0, "ZnS.shell_thickness": 8.0}


def _write(tmp_path):
    """The G(r) of diffpy.cmi's CdS and ZnS (wurtzite) CIFs as core and shell, 1 % noise."""
    structures = {n: read_cif(cmi_example(f"pdf/nanoparticle-fit/{n}.cif")).with_uiso(0.01) for n in ("CdS", "ZnS")}
    par = MixtureParametrisation(structures, free=[], values={"qdamp": 0.04, **TRUTH}, shells={"ZnS": "CdS"},
                                 fractions={"CdS": 0.3, "ZnS": 0.7})
    r = torch.arange(1.5, 40.0, 0.05, dtype=torch.float64)
    g = PhaseMixture({"CdS": PDFModel(25.0), "ZnS": PDFModel(25.0)})(par.state(par.initial_vector()), r).numpy()
    noise = np.random.default_rng(3).normal(0.0, 0.01 * np.abs(g).max(), g.shape)
    np.savetxt(tmp_path / "cs.gr", np.column_stack([r.numpy(), g + noise]))
    return float(np.sqrt((noise**2).sum() / ((g + noise) ** 2).sum()))  # the Rw of the truth itself


def _config(tmp_path, shell: bool) -> str:
    second = ('shell_of = "CdS"', '"ZnS.shell_thickness"') if shell else ("", '"ZnS.spdiameter"')
    values = '"ZnS.shell_thickness" = 5.0' if shell else '"ZnS.spdiameter" = 45.0'
    path = tmp_path / ("cs.toml" if shell else "two.toml")
    path.write_text(f"""[[phases]]
name = "CdS"
cmi = "pdf/nanoparticle-fit/CdS.cif"
uiso = 0.01
[[phases]]
name = "ZnS"
cmi = "pdf/nanoparticle-fit/ZnS.cif"
uiso = 0.01
{second[0]}
[[datasets]]
name = "cs"
file = "cs.gr"
qmax = 25.0
[[terms]]
dataset = "cs"
[parameters]
free = ["lattice", "fraction", "CdS.spdiameter", {second[1]}]
values = {{ qdamp = 0.04, "CdS.spdiameter" = 34.0, {values} }}
[[strategy]]
optimizer = "lm"
steps = 60
[output]
dir = "out"
""")
    return str(path)


def test_core_shell_refines_the_core_diameter_and_the_shell_wall(tmp_path):
    rw_truth = _write(tmp_path)
    run_refine(_config(tmp_path, shell=True), out=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    values = summary["parameters"]
    assert values["CdS.spdiameter"] == pytest.approx(TRUTH["CdS.spdiameter"], abs=1.0)
    assert values["ZnS.shell_thickness"] == pytest.approx(TRUTH["ZnS.shell_thickness"], abs=0.7)
    assert values["ZnS.spdiameter"] == pytest.approx(values["CdS.spdiameter"])
    assert values["fraction[CdS]"] == pytest.approx(0.3, abs=0.03)
    rw_shell = summary["terms"]["cs"]["rw"]
    assert rw_shell < 1.02 * rw_truth
    run_refine(_config(tmp_path, shell=False), out=tmp_path / "two")
    rw_two = json.loads((tmp_path / "two" / "summary.json").read_text())["terms"]["cs"]["rw"]
    assert rw_two > 1.5 * rw_shell


def test_shell_of_must_name_another_phase(tmp_path):
    _write(tmp_path)
    path = tmp_path / "cs.toml"
    path.write_text(open(_config(tmp_path, shell=True)).read().replace('shell_of = "CdS"', 'shell_of = "PbS"'))
    with pytest.raises(ScatterfitError, match=r"\[\[phases\]\]\[1\]\.shell_of: 'PbS' must name another phase"):
        load_config(path)

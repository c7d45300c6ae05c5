"""Several phases through the config: [[phases]] tables, per-phase parameter names, phase fractions recovered from
a simulated two-phase Bragg pattern, and each mistake one line naming the key."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.commands.refine import run_refine
from scatterfit.config import load_config
from scatterfit.config.builders import build_datasets, build_loss, build_model_structure, build_parametrisation
from scatterfit.scattering.mixture import PhaseMixture
from scatterfit.scattering.models import PowderModel
from scatterfit.scattering.powder import PowderSetup
from scatterfit.structure.phases import MixtureParametrisation


def _mixture_pattern(tmp_path, mass_fraction_si: float) -> None:
    """A Cu Kα pattern of NaCl + Si with the given Si mass fraction, Poisson noise, written with the two CIFs."""
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.640, cubic=True)).with_uiso(0.012)
    si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True)).with_uiso(0.006)
    m_si, m_nacl = 28.0855, (22.98977 + 35.453) / 2
    c_si = (mass_fraction_si / m_si) / (mass_fraction_si / m_si + (1 - mass_fraction_si) / m_nacl)
    par = MixtureParametrisation({"NaCl": nacl, "Si": si}, free=[], fractions={"NaCl": 1 - c_si, "Si": c_si})
    state = par.state(par.initial_vector())
    setup = PowderSetup(wavelength=1.5406)
    for st in state.phases.values():
        st.params.update({"W": 0.01, "Y": 0.02})
    tth = torch.arange(20.0, 100.0, 0.02, dtype=torch.float64)
    model = PhaseMixture({"NaCl": PowderModel(setup), "Si": PowderModel(setup)})
    y = model(state, tth).numpy()
    y = 2e4 * y / y.max() + 40.0
    y = np.random.default_rng(1).poisson(y).astype(float)
    np.savetxt(tmp_path / "mix.xye", np.column_stack([tth.numpy(), y, np.sqrt(np.clip(y, 1, None))]))
    for name, group, a, site in (("nacl", "F m -3 m", 5.640, "Na Na 0 0 0\nCl Cl 0.5 0.5 0.5"),
                                 ("si", "F d -3 m", 5.431, "Si Si 0 0 0")):
        (tmp_path / f"{name}.cif").write_text(
            f"data_{name}\n_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n_cell_angle_alpha 90\n"
            f"_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M '{group}'\n"
            f"loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
            f"_atom_site_fract_z\n{site}\n")


def _config(tmp_path, phases: str = None, parameters: str = None, terms: str = "") -> str:
    phases = phases if phases is not None else """[[phases]]
name = "NaCl"
file = "nacl.cif"
uiso = 0.012
[[phases]]
name = "Si"
file = "si.cif"
uiso = 0.006
"""
    parameters = parameters or 'free = ["lattice", "fraction", "W", "Y", "background"]'
    path = tmp_path / "mix.toml"
    path.write_text(f"""{phases}
[[datasets]]
name = "lab"
file = "mix.xye"
wavelength = 1.5406
[[terms]]
dataset = "lab"
{terms}
[parameters]
{parameters}
[[strategy]]
optimizer = "lbfgs"
steps = 200
[output]
dir = "out"
""")
    return str(path)


def test_two_phase_bragg_mixture_recovers_its_weight_fractions(tmp_path):
    _mixture_pattern(tmp_path, mass_fraction_si=0.3)
    run_refine(_config(tmp_path), out=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    phases = summary["phases"]
    assert set(phases) == {"NaCl", "Si"}
    esd = summary["uncertainties"]["esd"]
    assert abs(phases["Si"]["mass_fraction"] - 0.3) < max(4 * esd["mass_fraction[Si]"], 0.005)
    assert phases["Si"]["mass_fraction"] + phases["NaCl"]["mass_fraction"] == pytest.approx(1.0)
    assert phases["Si"]["space_group"]["number"] == 227 and phases["NaCl"]["space_group"]["number"] == 225
    term = summary["terms"]["lab"]
    assert term["chi2_per_point"] < 1.1 and term["r_bragg[Si]"] < 0.03 and term["r_bragg[NaCl]"] < 0.03
    assert abs(summary["parameters"]["Si.a"] - 5.431) < 1e-3
    assert abs(summary["parameters"]["NaCl.a"] - 5.640) < 1e-3
    for name in ("refined_NaCl.cif", "refined_Si.cif", "fit_lab.png"):
        assert (tmp_path / "out" / name).is_file()
    # no correlation warnings: the phases' atom and mass fractions are one parameter seen four times, and the
    # cubic cells have one length each
    assert summary["uncertainties"]["high_correlations"] == []


@pytest.mark.parametrize("phases, parameters, terms, message", [
    ('[[phases]]\nname = "A"\nbulk = { name = "Si", crystalstructure = "diamond", a = 5.43 }\n', None, "",
     "one phase: write it as \\[structure\\]"),
    ('[structure]\nfile = "si.cif"\n[[phases]]\nname = "A"\nfile = "si.cif"\n[[phases]]\nname = "B"\nfile = '
     '"nacl.cif"\n', None, "", "not both"),
    ('[[phases]]\nname = "A.B"\nfile = "si.cif"\n[[phases]]\nname = "C"\nfile = "nacl.cif"\n', None, "",
     "without '.'"),
    ('[[phases]]\nname = "A"\nfile = "si.cif"\n[[phases]]\nname = "A"\nfile = "nacl.cif"\n', None, "", "unique"),
    ('[[phases]]\nname = "A"\n[[phases]]\nname = "B"\nfile = "nacl.cif"\n', None, "",
     "\\[\\[phases\\]\\]\\[0\\]: needs exactly one of"),
    (None, None, 'phases = ["Cu"]', "\\[\\[terms\\]\\]\\[0\\].phases"),
    (None, 'free = ["Cu.lattice"]', "", "\\[parameters\\].*no phase 'Cu'"),
    (None, 'free = ["Si.W"]', "", "\\[parameters\\].*'W' is not a phase parameter"),
])
def test_phase_config_mistakes_name_the_key(tmp_path, phases, parameters, terms, message):
    _mixture_pattern(tmp_path, mass_fraction_si=0.3)
    path = _config(tmp_path, phases, parameters, terms)
    with pytest.raises(ScatterfitError, match=message):
        cfg = load_config(path)
        build_parametrisation(cfg, build_model_structure(cfg), build_loss(cfg, build_datasets(cfg)))

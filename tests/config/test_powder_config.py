"""A powder pattern through the config: the instrument's settings in [[datasets]], its parameters in
[parameters], and each mistake one line naming the key."""

import numpy as np
import pytest
import torch

from scatterfit import ScatterfitError, Structure
from scatterfit.commands.refine import run_refine
from scatterfit.scattering.powder import PowderSetup, powder_pattern

CIF = """data_nacl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_B_iso_or_equiv
Na 0 0 0 1.0
Cl 0.5 0.5 0.5 0.8
"""


def _write(tmp_path, dataset_extra: str = 'wavelength = 1.5406\nwavelength2 = 1.5444', parameters: str = "",
           true_w: float = 0.01) -> str:
    from ase.build import bulk

    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.652, cubic=True)).with_uiso(1.0 / (8 * np.pi**2))
    tth = torch.arange(20.0, 90.0, 0.02, dtype=torch.float64)
    setup = PowderSetup(wavelength=1.5406, wavelength2=1.5444)
    y = 1e-3 * powder_pattern(s, tth, setup, {"zero": 0.05, "W": true_w, "Y": 0.03}).numpy() + 50.0
    y = np.random.default_rng(0).poisson(y).astype(float)
    np.savetxt(tmp_path / "nacl.xye", np.column_stack([tth.numpy(), y, np.sqrt(np.clip(y, 1, None))]))
    (tmp_path / "nacl.cif").write_text(CIF)
    config = tmp_path / "fit.toml"
    config.write_text(f"""[structure]
file = "nacl.cif"
[[datasets]]
name = "lab"
file = "nacl.xye"
{dataset_extra}
[[terms]]
dataset = "lab"
[parameters]
free = ["lattice", "zero", "W", "Y", "background"]
values = {{ background_order = 2 }}
{parameters}
[[strategy]]
optimizer = "lbfgs"
steps = 150
[output]
dir = "out"
""")
    return config


def test_laboratory_doublet_refinement_recovers_cell_and_zero(tmp_path):
    result = run_refine(_write(tmp_path))
    p = result.parameters()
    assert abs(p["a"] - 5.652) < 2e-3 and abs(p["zero"] - 0.05) < 0.01
    assert result.terms["lab"].breakdown["chi2_per_point"] < 1.3


def test_broad_peaks_start_from_the_width_read_off_the_data(tmp_path):
    """Peaks 6× broader than the default start (W 0.36 deg² against 0.01): the starting W is read off the
    strongest peak's width (within a factor 2), and the refinement finds the cell and the width. (On this clean
    simulation the default start gets there too; the estimate is a better start, not a rescue.)"""
    from scatterfit.config.builders import build_datasets, build_loss
    from scatterfit.config.schema import load_config

    config = _write(tmp_path, true_w=0.36)
    cfg = load_config(config)
    model = build_loss(cfg, build_datasets(cfg)).terms[0].model
    start_w = model.parameters({})["W"][0]
    assert 0.36 / 2 < start_w < 0.36 * 2
    p = run_refine(config).parameters()
    assert abs(p["a"] - 5.652) < 3e-3 and abs(p["W"] - 0.36) < 0.05


@pytest.mark.parametrize("extra,parameters,message", [
    ("", "", r"\[\[terms\]\]\[0\]\.model: .*wavelength"),
    ("wavelength = 1.5406", 'bounds = { zero = [1.0, 2.0] }', "start of 'zero'"),
    ("wavelength = 1.5406\npreferred_orientation = [0, 0, 0]", "", "preferred_orientation"),
])
def test_powder_config_mistakes_are_one_line(tmp_path, extra, parameters, message):
    with pytest.raises(ScatterfitError, match=message):
        run_refine(_write(tmp_path, extra, parameters))

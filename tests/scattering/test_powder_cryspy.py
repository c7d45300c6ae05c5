"""The powder model against cryspy 0.18 (the Rietveld engine behind EasyDiffraction), run live: the same
perovskite (La/Ba disordered on the A site), wavelength and profile parameters.

cryspy evaluates the Lorentz factor and the peak widths at every point of the grid, where Rietveld programs such
as FullProf and GSAS (and scatterfit) evaluate them at each peak's position; the two agree to first order, and
the difference is a slight skew of each peak. The tests therefore check (1) the peak positions and integrated
intensities reflection by reflection, (2) scatterfit's peaks laid out in cryspy's convention against cryspy's
pattern within 1e-4 of its maximum, and (3) the two patterns as each program computes them, within 5e-3 of the
maximum, the size of that convention difference. Intensities are compared up to one overall factor (cryspy's
lengths are in 10⁻¹² cm, its scale has a factor 1/2), which is checked to be the same for every reflection.

Neutrons only: X-ray |F|² depend on the form-factor and dispersion tables (cryspy's and xraydb's Waasmaier–Kirfel
f0 with Chantler f′, f″ differ by 1–4 % in |F|² at Mo Kα, more near an absorption edge), so they cannot agree
to 1e-3; scatterfit's X-ray pattern is checked against xraydb's f0, f′ and f″ written out by hand in
test_powder_saxs.py. The Kα1/Kα2 doublet is radiation-blind: it is checked with two neutron lines.
"""

import math

import numpy as np
import pytest
import torch

from scatterfit import Structure
from scatterfit.scattering.powder import PowderSetup, powder_pattern, powder_peaks
from scatterfit.scattering.profiles import pseudo_voigt, tch_width

cryspy = pytest.importorskip("cryspy")

A, WAVELENGTH = 3.89, 1.494
BISO = {"La": 0.5, "Ba": 0.5, "Co": 0.3, "O": 1.2}
CW = {"zero": 0.3, "U": 0.08, "V": -0.1, "W": 0.12, "X": 0.0, "Y": 0.08}


def _structure() -> Structure:
    sites = [("La", (0, 0, 0), 0.5), ("Ba", (0, 0, 0), 0.5), ("Co", (0.5, 0.5, 0.5), 1.0),
             ("O", (0, 0.5, 0.5), 1.0), ("O", (0.5, 0, 0.5), 1.0), ("O", (0.5, 0.5, 0), 1.0)]
    from ase.data import atomic_numbers

    cell = torch.eye(3, dtype=torch.float64) * A
    frac = torch.tensor([p for _, p, _ in sites], dtype=torch.float64)
    return Structure(frac @ cell, [atomic_numbers[e] for e, _, _ in sites], cell=cell, pbc=True,
                     occupancy=torch.tensor([o for *_, o in sites], dtype=torch.float64),
                     biso=torch.tensor([BISO[e] for e, _, _ in sites], dtype=torch.float64))


CRYSTAL = f"""data_lbco
_cell_length_a {A}
_cell_length_b {A}
_cell_length_c {A}
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
La La 0 0 0 Biso {BISO['La']} 0.5
Ba Ba 0 0 0 Biso {BISO['Ba']} 0.5
Co Co 0.5 0.5 0.5 Biso {BISO['Co']} 1.0
O O 0 0.5 0.5 Biso {BISO['O']} 1.0
"""


def _run_cryspy(experiment: str, key: str) -> dict:
    from cryspy.procedure_rhochi.rhochi_by_dictionary import rhochi_calc_chi_sq_by_dictionary

    obj = cryspy.str_to_globaln("global_\n" + CRYSTAL + "\n" + experiment)
    out = {}
    rhochi_calc_chi_sq_by_dictionary(obj.get_dictionary(), dict_in_out=out, flag_use_precalculated_data=False,
                                     flag_calc_analytical_derivatives=False)
    return out[key]


def _cw_experiment(tth: np.ndarray, radiation: str, wavelength: float) -> str:
    meas = "\n".join(f"{t:.4f} 100.0 10.0" for t in tth)
    return f"""data_pnd
_setup_wavelength {wavelength}
_setup_field 0.0
_setup_offset_2theta {CW['zero']}
_setup_radiation {radiation}
_pd_instr_resolution_u {CW['U']}
_pd_instr_resolution_v {CW['V']}
_pd_instr_resolution_w {CW['W']}
_pd_instr_resolution_x {CW['X']}
_pd_instr_resolution_y {CW['Y']}
_range_2theta_min {tth[0]}
_range_2theta_max {tth[-1]}
loop_
_phase_label
_phase_scale
_phase_igsize
lbco 1.0 0.0
loop_
_pd_background_2theta
_pd_background_intensity
0 0
180 0
loop_
_pd_meas_2theta
_pd_meas_intensity
_pd_meas_intensity_sigma
{meas}
"""


def _cryspy_cw(tth: np.ndarray, radiation: str, wavelength: float) -> tuple[np.ndarray, dict]:
    out = _run_cryspy(_cw_experiment(tth, radiation, wavelength), "pd_pnd")
    return out["signal_plus"] + out["signal_minus"], out["dict_in_out_lbco"]


def _one_factor(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float((ours * theirs).sum() / (ours * ours).sum())


def _cryspy_convention(peaks, tth: torch.Tensor, wavelength: float) -> np.ndarray:
    """scatterfit's peaks (positions, intensities) with the Lorentz factor and the TCH widths evaluated at every
    grid point, as cryspy does."""
    def lorentz(theta):
        return 1 / (torch.sin(theta) ** 2 * torch.cos(theta))

    theta_k = torch.asin(peaks.q * wavelength / (4 * math.pi))
    theta = torch.deg2rad(tth - CW["zero"]) / 2
    h_gauss = torch.sqrt(CW["U"] * torch.tan(theta) ** 2 + CW["V"] * torch.tan(theta) + CW["W"])
    fwhm, eta = tch_width(h_gauss, CW["X"] * torch.tan(theta) + CW["Y"] / torch.cos(theta))
    profile = pseudo_voigt(tth[:, None] - peaks.position[None, :], fwhm[:, None], eta[:, None])
    return (lorentz(theta)[:, None] * profile * (peaks.intensity / lorentz(theta_k))[None, :]).sum(1).numpy()


def test_constant_wavelength_neutron_pattern_matches_cryspy():
    radiation = "neutron"
    tth = np.arange(10.0, 150.0, 0.05)
    theirs, reflections = _cryspy_cw(tth, "neutrons", WAVELENGTH)
    x = torch.tensor(tth, dtype=torch.float64)
    setup = PowderSetup(radiation=radiation, wavelength=WAVELENGTH, polarisation=1.0)
    peaks = powder_peaks(_structure(), x, setup, CW, parts=True)

    # (1) peak by peak (cryspy lists coincident reflections such as 300 and 221 apart): 2θ + zero, and
    # |F|² m LP up to one factor, once scatterfit's element-pair parts are rescaled to cryspy's scattering lengths
    # (its b(O) is 5.803 fm, periodictable's 5.8037 fm: in F = b_A + b_Co − 3 b_O the terms partly cancel, which
    # moves some intensities by 0.2 %)
    from cryspy.A_functions_base.function_1_scat_length_neutron import get_scat_length_neutron

    from scatterfit.scattering.formfactors import neutron_length

    def length_ratio(symbol: str) -> float:
        from ase.data import atomic_numbers

        return 10 * float(get_scat_length_neutron(symbol).real) / neutron_length(atomic_numbers[symbol])

    rescaled = sum(v * length_ratio(pair.split("-")[0]) * length_ratio(pair.split("-")[1])
                   for pair, v in peaks.parts.items())
    their_tth = np.degrees(reflections["ttheta_hkl"])
    their_int = reflections["iint_plus_with_factors"] + reflections["iint_minus_with_factors"]
    their_tth, group = np.unique(np.round(their_tth, 8), return_inverse=True)
    their_int = np.bincount(group.ravel(), weights=their_int)
    ours_tth, ours_int = peaks.position.numpy(), rescaled.numpy()
    order = np.argsort(ours_tth)
    ours_tth, ours_int = ours_tth[order], ours_int[order]
    inside = (their_tth > tth[0]) & (their_tth < tth[-1])
    match = [int(np.argmin(np.abs(ours_tth - t))) for t in their_tth[inside]]
    np.testing.assert_allclose(ours_tth[match], their_tth[inside], atol=1e-8)
    ratio = their_int[inside] / ours_int[match]
    strong = their_int[inside] > 1e-3 * their_int.max()
    assert np.abs(ratio[strong] / ratio[strong].mean() - 1).max() < 1e-4

    # (2) the same peaks in cryspy's convention give cryspy's pattern
    emulated = _cryspy_convention(peaks, x, WAVELENGTH)
    k = _one_factor(emulated, theirs)
    assert np.abs(k * emulated - theirs).max() < 1e-4 * theirs.max()

    # (3) each program's own convention: equal within the size of the convention difference
    ours = powder_pattern(_structure(), x, setup, CW).numpy()
    k = _one_factor(ours, theirs)
    assert np.abs(k * ours - theirs).max() < 5e-3 * theirs.max()


def test_doublet_is_the_sum_of_two_cryspy_patterns():
    """A Kα1/Kα2-like doublet (Cu's wavelengths): scatterfit's equals cryspy's λ1 pattern plus half its λ2
    pattern."""
    l1, l2 = 1.540593, 1.544427
    tth = np.round(np.arange(15.0, 120.0, 0.02), 4)
    x = torch.tensor(tth, dtype=torch.float64)
    setup = PowderSetup(radiation="neutron", wavelength=l1, wavelength2=l2, ratio=0.5)
    doublet = powder_pattern(_structure(), x, setup, CW).numpy()
    single = powder_pattern(_structure(), x, PowderSetup(radiation="neutron", wavelength=l1), CW).numpy()
    theirs_1, _ = _cryspy_cw(tth, "neutrons", l1)
    theirs_2, _ = _cryspy_cw(tth, "neutrons", l2)
    theirs = theirs_1 + 0.5 * theirs_2
    k = _one_factor(doublet, theirs)
    assert np.abs(k * doublet - theirs).max() < 5e-3 * theirs.max()
    assert np.abs(k * single - theirs).max() > 5e-2 * theirs.max()  # the second line is visible


def _tof_experiment(times: np.ndarray, tof: dict) -> str:
    meas = "\n".join(f"{t:.3f} 100.0 10.0" for t in times)
    shape = "Gauss"
    if "gamma0" in tof:
        shape = "pseudo-Voigt\n" + "\n".join(f"_tof_profile_gamma{k} {tof[f'gamma{k}']}" for k in range(3))
    return f"""data_tofexp
_tof_parameters_zero {tof['zero']}
_tof_parameters_dtt1 {tof['difc']}
_tof_parameters_dtt2 {tof['difa']}
_tof_parameters_2theta_bank 145.0
_tof_profile_peak_shape {shape}
_tof_profile_alpha0 {tof['alpha0']}
_tof_profile_alpha1 {tof['alpha1']}
_tof_profile_beta0 {tof['beta0']}
_tof_profile_beta1 {tof['beta1']}
_tof_profile_sigma0 {tof['sig0']}
_tof_profile_sigma1 {tof['sig1']}
_tof_profile_sigma2 {tof['sig2']}
_range_time_min {times[0]}
_range_time_max {times[-1]}
loop_
_phase_label
_phase_scale
lbco 1.0
loop_
_tof_backgroundpoint_time
_tof_backgroundpoint_intensity
{times[0]} 0.0
{times[-1]} 0.0
loop_
_tof_meas_time
_tof_meas_intensity_plus
_tof_meas_intensity_plus_sigma
_tof_meas_intensity_minus
_tof_meas_intensity_minus_sigma
{chr(10).join(line + ' 100.0 10.0' for line in meas.splitlines())}
"""


def test_time_of_flight_pattern_matches_cryspy():
    """Back-to-back exponentials ⊗ Gaussian at t = zero + difc·d + difa·d², intensities |F|² m d⁴."""
    tof = {"zero": 5.0, "difc": 6200.0, "difa": -1.5, "alpha0": 0.0, "alpha1": 0.6, "beta0": 0.04,
           "beta1": 0.006, "sig0": 4.0, "sig1": 40.0, "sig2": 1.0}
    times = np.arange(6000.0, 19000.0, 2.0)
    out = _run_cryspy(_tof_experiment(times, tof), "tof_tofexp")
    theirs = out["signal_plus"] + out["signal_minus"]
    ours = powder_pattern(_structure(), torch.tensor(times, dtype=torch.float64),
                          PowderSetup(geometry="tof", radiation="neutron", bank_angle=145.0), tof).numpy()
    k = _one_factor(ours, theirs)
    assert np.abs(k * ours - theirs).max() < 1e-3 * theirs.max()


def test_time_of_flight_pseudo_voigt_matches_cryspy():
    """Back-to-back exponentials ⊗ pseudo-Voigt (the Lorentzian part through e^z E1(z) of complex z), Lorentzian
    FWHM γ = gamma0 + gamma1 d + gamma2 d² combined with the Gaussian by TCH; and clearly unlike the Gaussian
    profile of the same σ."""
    tof = {"zero": 5.0, "difc": 6200.0, "difa": -1.5, "alpha0": 0.0, "alpha1": 0.6, "beta0": 0.04,
           "beta1": 0.006, "sig0": 4.0, "sig1": 40.0, "sig2": 1.0, "gamma0": 2.0, "gamma1": 8.0, "gamma2": 3.0}
    times = np.arange(6000.0, 19000.0, 2.0)
    out = _run_cryspy(_tof_experiment(times, tof), "tof_tofexp")
    theirs = out["signal_plus"] + out["signal_minus"]
    setup = PowderSetup(geometry="tof", radiation="neutron", bank_angle=145.0)
    x = torch.tensor(times, dtype=torch.float64)
    ours = powder_pattern(_structure(), x, setup, tof).numpy()
    gaussian = powder_pattern(_structure(), x, setup, {**tof, "gamma0": 0.0, "gamma1": 0.0, "gamma2": 0.0}).numpy()
    k = _one_factor(ours, theirs)
    assert np.abs(k * ours - theirs).max() < 1e-3 * theirs.max()
    k = _one_factor(gaussian, theirs)
    assert np.abs(k * gaussian - theirs).max() > 2e-2 * theirs.max()


def test_anisotropic_displacements_match_cryspy(tmp_path, monkeypatch):
    """Anisotropic U on the oxygen site (4/mmm: U11 along the Co–O bond, U22 = U33 across it): the peaks'
    |F|² m LP reflection by reflection as cryspy gives them (one factor for all, within 1e-4), and different from
    the isotropic U_eq's."""
    from scatterfit.structure import read_structure

    aniso = "loop_\n_atom_site_aniso_label\n_atom_site_aniso_U_11\n_atom_site_aniso_U_22\n_atom_site_aniso_U_33\n" \
            "_atom_site_aniso_U_12\n_atom_site_aniso_U_13\n_atom_site_aniso_U_23\nO 0.004 0.025 0.025 0 0 0\n"
    crystal = CRYSTAL.replace(f"O O 0 0.5 0.5 Biso {BISO['O']} 1.0", "O O 0 0.5 0.5 Uani 0.018 1.0") + aniso
    monkeypatch.setitem(globals(), "CRYSTAL", crystal)
    tth = np.arange(10.0, 150.0, 0.05)
    _, reflections = _cryspy_cw(tth, "neutrons", WAVELENGTH)
    (tmp_path / "lbco.cif").write_text(crystal.replace("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M"))
    structure = read_structure(tmp_path / "lbco.cif")
    assert structure.uaniso is not None and len(structure) == 6
    setup = PowderSetup(radiation="neutron", wavelength=WAVELENGTH, polarisation=1.0)
    x = torch.tensor(tth, dtype=torch.float64)

    from ase.data import atomic_numbers
    from cryspy.A_functions_base.function_1_scat_length_neutron import get_scat_length_neutron

    from scatterfit.scattering.formfactors import neutron_length

    def length_ratio(symbol: str) -> float:  # cryspy's scattering lengths (see the test above)
        return 10 * float(get_scat_length_neutron(symbol).real) / neutron_length(atomic_numbers[symbol])

    def per_reflection(s):
        peaks = powder_peaks(s, x, setup, CW, parts=True)
        rescaled = sum(v * length_ratio(pair.split("-")[0]) * length_ratio(pair.split("-")[1])
                       for pair, v in peaks.parts.items()).numpy()
        order = np.argsort(peaks.position.numpy())
        return peaks.position.numpy()[order], rescaled[order]

    their_tth = np.degrees(reflections["ttheta_hkl"])
    their_int = reflections["iint_plus_with_factors"] + reflections["iint_minus_with_factors"]
    their_tth, group = np.unique(np.round(their_tth, 8), return_inverse=True)
    their_int = np.bincount(group.ravel(), weights=their_int)
    inside = (their_tth > tth[0]) & (their_tth < tth[-1])
    ratios = {}
    for name, s in (("anisotropic", structure), ("isotropic", structure.with_(uaniso=None))):
        ours_tth, ours_int = per_reflection(s)
        match = [int(np.argmin(np.abs(ours_tth - t))) for t in their_tth[inside]]
        strong = their_int[inside] > 1e-3 * their_int.max()
        ratio = (their_int[inside] / ours_int[match])[strong]
        ratios[name] = np.abs(ratio / ratio.mean() - 1).max()
    assert ratios["anisotropic"] < 1e-4
    assert ratios["isotropic"] > 10 * ratios["anisotropic"]

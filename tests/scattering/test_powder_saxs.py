import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError, Structure
from scatterfit.scattering.debye import debye_partials
from scatterfit.scattering.formfactors import ScatteringFactors
from scatterfit.scattering.powder import PowderSetup, merge_peaks, powder_pattern, reflections
from scatterfit.scattering.saxs import radius_of_gyration, saxs_intensity


def _f(z, q):
    return float(ScatteringFactors.build([z]).real(torch.tensor([q], dtype=torch.float64))[0, 0])


def test_fcc_structure_factors_and_extinctions():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True)).with_(biso=torch.zeros(4, dtype=torch.float64))
    refl = reflections(s, 6.0)
    for hkl, q, f2 in zip(refl.hkl.tolist(), refl.q.tolist(), refl.f2.tolist()):
        mixed = len({int(h) % 2 for h in hkl}) > 1
        expected = 0.0 if mixed else (4 * _f(28, q)) ** 2
        assert f2 == pytest.approx(expected, abs=1e-6 * 16 * 28**2)


def test_rocksalt_structure_factors():
    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True)).with_(biso=torch.zeros(8, dtype=torch.float64))
    refl = reflections(s, 5.0)
    for hkl, q, f2 in zip(refl.hkl.tolist(), refl.q.tolist(), refl.f2.tolist()):
        par = {int(h) % 2 for h in hkl}
        if len(par) > 1:
            expected = 0.0
        elif par == {0}:
            expected = (4 * (_f(11, q) + _f(17, q))) ** 2
        else:
            expected = (4 * (_f(11, q) - _f(17, q))) ** 2
        assert f2 == pytest.approx(expected, abs=1e-6 * 16 * 28**2)


def test_bragg_q_pattern_matches_debye_of_large_crystallite():
    """Peak positions and relative integrated intensities (|F|²·m/Q²) of Ni crystallites' Debye patterns
    (Debye–Waller diffuse level removed, windows split at the midpoints between reflections) converge to the
    Bragg model: the deviation is a Laue-tail leakage that falls as 1/L (measured 9.7 % at 8³ cells, 5.8 % at 14³,
    4.0 % at 18³ cells), so we assert both the 14³ level and the 1/L trend."""
    a = 3.52
    cryst = bulk("Ni", "fcc", a=a, cubic=True)
    s = Structure.from_ase(cryst)
    q = torch.arange(2.0, 6.6, 0.002, dtype=torch.float64)
    bragg = powder_pattern(s, q, PowderSetup(geometry="q"), {"fwhm_q": 0.02, "eta": 0.0})
    peaks = [2 * math.pi * math.sqrt(p) / a for p in (3, 4, 8, 11, 12)]
    edges = [2.6] + [(x + y) / 2 for x, y in zip(peaks[:-1], peaks[1:])]
    deviation = {}
    for n in (8, 14):
        cluster = Structure.from_ase(cryst.repeat((n, n, n))).with_(cell=None, pbc=(False, False, False))
        parts = debye_partials(cluster, q)
        two_m = float(cluster.biso[0]) * q**2 / (8 * math.pi**2)
        deb = parts["Ni-Ni"] + parts["self"] * torch.exp(-two_m)
        areas_b, areas_d = [], []
        for k, qc in enumerate(peaks[:4]):
            m = (q >= edges[k]) & (q < edges[k + 1])
            areas_b.append(float(bragg[m].sum()))
            areas_d.append(float(deb[m].sum()))
            assert abs(float(q[m][deb[m].argmax()]) - qc) < 0.01
        ratio = (np.array(areas_d) / areas_d[0]) / (np.array(areas_b) / areas_b[0])
        deviation[n] = float(np.abs(ratio - 1).max())
    assert deviation[14] < 0.065
    assert deviation[14] < 1.2 * deviation[8] * 8 / 14


def test_tth_pattern_peak_positions_and_setup_errors():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True))
    tth = torch.arange(30, 110, 0.01, dtype=torch.float64)
    y = powder_pattern(s, tth, PowderSetup(wavelength=1.5406), {"W": 0.005})
    expected_111 = 2 * math.degrees(math.asin(1.5406 * math.sqrt(3) / (2 * 3.524)))
    assert abs(float(tth[y.argmax()]) - expected_111) < 0.02
    with pytest.raises(ScatterfitError, match="wavelength"):
        PowderSetup(geometry="cw")
    with pytest.raises(ScatterfitError, match="difc"):
        powder_pattern(s, torch.arange(5000.0, 9000.0, 5.0, dtype=torch.float64), PowderSetup(geometry="tof"))
    with pytest.raises(ScatterfitError, match="preferred_orientation"):
        PowderSetup(wavelength=1.5, preferred_orientation=(0, 0, 0))


def test_saxs_guinier_radius():
    from ase.cluster import Octahedron

    s = Structure.from_ase(Octahedron("Au", 9, cutoff=2))
    rg = float(radius_of_gyration(s))
    q = torch.linspace(0.005, 0.6 / rg, 30, dtype=torch.float64)
    i = saxs_intensity(s, q)
    slope = np.polyfit(q.numpy() ** 2, np.log(i.numpy()), 1)[0]
    assert math.sqrt(-3 * slope) == pytest.approx(rg, rel=0.02)


def test_powder_partials_sum_to_total():
    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    tth = torch.arange(20, 80, 0.05, dtype=torch.float64)
    setup = PowderSetup(wavelength=1.5406, wavelength2=1.5444, preferred_orientation=(1, 1, 1))
    parts = powder_pattern(s, tth, setup, {"march": 0.8}, partials=True)
    assert set(parts) == {"Na-Na", "Na-Cl", "Cl-Cl"}
    total = powder_pattern(s, tth, setup, {"march": 0.8})
    assert torch.allclose(sum(parts.values()), total, rtol=1e-10, atol=1e-8 * float(total.max()))


def test_powder_profile_is_the_documented_formula():
    """Caglioti width, pseudo-Voigt mixing, Lorentz–polarisation factor, zero shift, sample displacement and the
    anomalous scattering at the wavelength's energy against the formula of the docstring written out independently
    in numpy with xraydb's f0, f′ and f″ (a one-atom simple cubic cell, every hkl enumerated by hand)."""
    import xraydb

    a, wavelength = 3.1, 1.5406
    u, v, w, eta, zero, mono, shift = 0.02, -0.01, 0.015, 0.35, 0.04, 26.6, -0.03
    s = Structure(torch.zeros(1, 3, dtype=torch.float64), [29], cell=torch.eye(3, dtype=torch.float64) * a,
                  pbc=True).with_uiso(0.0)
    tth = torch.arange(20.0, 100.0, 0.02, dtype=torch.float64)
    p = math.cos(math.radians(mono)) ** 2
    setup = PowderSetup(wavelength=wavelength, profile="caglioti", polarisation=p)
    y = powder_pattern(s, tth, setup, {"U": u, "V": v, "W": w, "eta": eta, "zero": zero,
                                       "displacement": shift}).numpy()

    x = tth.numpy()
    expected = np.zeros_like(x)
    energy = 12398.419843 / wavelength  # the anomalous terms at the tube's energy (Cu Kα is below the Cu K edge)
    f1, f2_anomalous = float(xraydb.f1_chantler("Cu", energy)), float(xraydb.f2_chantler("Cu", energy))
    assert f1 < -1.0  # large enough that leaving it out would fail this test
    n = 6
    for h in range(-n, n + 1):
        for k in range(-n, n + 1):
            for m in range(-n, n + 1):
                if h == k == m == 0:
                    continue
                q = 2 * math.pi * math.sqrt(h * h + k * k + m * m) / a
                sin_t = q * wavelength / (4 * math.pi)
                if sin_t >= math.sin(math.radians(104.98 / 2)):  # the model lists peaks to 5° past the grid
                    continue
                theta = math.asin(sin_t)
                f2 = abs(float(xraydb.f0("Cu", q / (4 * math.pi))[0]) + f1 + 1j * f2_anomalous) ** 2
                lp = (1 + p * math.cos(2 * theta) ** 2) / ((1 + p) * math.sin(theta) ** 2 * math.cos(theta))
                fwhm = math.sqrt(u * math.tan(theta) ** 2 + v * math.tan(theta) + w)
                d = x - math.degrees(2 * theta) - zero - shift * math.cos(theta)
                sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
                gauss = np.exp(-0.5 * (d / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
                lorentz = (fwhm / 2) / (math.pi * (d**2 + (fwhm / 2) ** 2))
                expected += f2 * lp * (eta * lorentz + (1 - eta) * gauss)
    np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9 * expected.max())


def test_powder_gradients_against_finite_differences():
    from scatterfit.testing import FD_TOL

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.positions += np.random.default_rng(0).normal(0, 0.05, atoms.positions.shape)
    s = Structure.from_ase(atoms)
    tth = torch.arange(25.0, 60.0, 0.1, dtype=torch.float64)
    params = torch.tensor([0.01, 0.02, 0.02, 0.8], dtype=torch.float64, requires_grad=True)  # W, Y, zero, march
    setup = PowderSetup(wavelength=1.5406, wavelength2=1.5444, preferred_orientation=(0, 0, 1))

    def pattern(positions, cell, p):
        return 1e-8 * powder_pattern(s.with_(positions=positions, cell=cell), tth, setup,  # to O(1) derivatives
                                     {"W": p[0], "Y": p[1], "zero": p[2], "march": p[3]})

    positions, cell = s.positions.detach().clone(), s.cell.detach().clone()
    # the structure factors sum large terms: positions need a wider step against round-off; the narrow peaks'
    # positions (cell, zero) a smaller one against truncation
    assert torch.autograd.gradcheck(lambda x: pattern(x, cell, params.detach()), (positions.requires_grad_(True),),
                                    eps=1e-4, **FD_TOL)
    assert torch.autograd.gradcheck(lambda c, p: pattern(positions.detach(), c, p),
                                    (cell.requires_grad_(True), params), **FD_TOL)


def test_reflections_merged_by_q_keep_every_multiplicity_and_exact_gradients():
    """Merging equal-|Q| reflections (11,512 → 165 peaks for fcc Ni to 25 Å⁻¹) changes no intensity, and the
    merged pattern's gradient with respect to the cell equals that of every reflection summed one by one
    (each peak sits at the intensity-weighted mean |Q| of its members)."""
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True))
    refl = reflections(s, 25.0)
    q_peak, merged = merge_peaks(refl.q, {"total": refl.f2})
    assert refl.q.numel() > 10_000 and q_peak.numel() < 200
    torch.testing.assert_close(merged["total"].sum(), refl.f2.sum(), rtol=1e-12, atol=0)
    first = refl.q < float(refl.q.min()) * (1 + 1e-9)  # the six {100}
    assert int(first.sum()) == 6

    from scatterfit.scattering.profiles import pseudo_voigt

    q = torch.arange(1.0, 12.0, 0.01, dtype=torch.float64)
    cell = (s.cell * torch.tensor([1.0, 1.01, 0.99], dtype=torch.float64)[:, None]).requires_grad_(True)
    strained = s.with_(cell=cell, positions=s.positions @ torch.linalg.inv(s.cell) @ cell)
    merged_pattern = powder_pattern(strained, q, PowderSetup(geometry="q"), {"fwhm_q": 0.05, "eta": 0.3})
    (grad_merged,) = torch.autograd.grad(merged_pattern.sum(), cell, retain_graph=True)
    every = reflections(strained, 12.3)
    one_by_one = (pseudo_voigt(q[:, None] - every.q[None, :], torch.tensor(0.05, dtype=torch.float64), 0.3)
                  * (every.f2 / every.q**2)[None, :]).sum(1)
    (grad_every,) = torch.autograd.grad(one_by_one.sum(), cell)
    torch.testing.assert_close(merged_pattern.detach(), one_by_one.detach(), rtol=1e-10,
                               atol=1e-10 * float(one_by_one.max()))
    torch.testing.assert_close(grad_merged, grad_every, rtol=1e-8, atol=1e-8 * float(grad_every.abs().max()))


def test_time_of_flight_pseudo_voigt_gradients_against_finite_differences():
    """The TOF profile with a Lorentzian part: derivatives in the cell, difc, the exponentials' α and β, the
    Gaussian σ² and the Lorentzian γ (through e^z E1(z), whose derivative is written by hand)."""
    from scatterfit.testing import FD_TOL

    s = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    times = torch.arange(5000.0, 9000.0, 4.0, dtype=torch.float64)
    setup = PowderSetup(geometry="tof", radiation="neutron", bank_angle=145.0)
    names = ("difc", "alpha1", "beta0", "sig1", "gamma0", "gamma1")
    params = torch.tensor([3000.0, 0.6, 0.04, 40.0, 3.0, 5.0], dtype=torch.float64, requires_grad=True)

    def pattern(cell, p):
        return 1e-3 * powder_pattern(s.with_(cell=cell), times, setup, dict(zip(names, p)))

    assert torch.autograd.gradcheck(pattern, (s.cell.detach().clone().requires_grad_(True), params), **FD_TOL)

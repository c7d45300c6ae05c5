import math

import numpy as np
import pytest
import torch
import xraydb

from scatterfit import ScatterfitError
from scatterfit.scattering.formfactors import ScatteringFactors, neutron_length


def test_xray_f0_matches_xraydb_with_q_over_4pi():
    q = torch.linspace(0, 25, 51, dtype=torch.float64)
    fac = ScatteringFactors.build([28, 8], [0, -2], "xray")
    f = fac.real(q).numpy()
    np.testing.assert_allclose(f[0], xraydb.f0("Ni", q.numpy() / (4 * math.pi)), rtol=1e-12)
    np.testing.assert_allclose(f[1], xraydb.f0("O2-", q.numpy() / (4 * math.pi)), rtol=1e-12)
    assert abs(f[0, 0] - 28) < 0.01  # f0(0) = number of electrons


def test_xray_f0_matches_the_international_tables():
    """Independent of xraydb's Waasmaier–Kirfel table: the Cromer–Mann coefficients of International Tables for
    Crystallography Vol. C, Table 6.1.1.4 (a1..a4, b1..b4, c), accurate to about 0.01 electron below
    sinθ/λ = 2 Å⁻¹."""
    itc = {6: ([2.31, 1.02, 1.5886, 0.865], [20.8439, 10.2075, 0.5687, 51.6512], 0.2156),
           8: ([3.0485, 2.2868, 1.5463, 0.867], [13.2771, 5.7011, 0.3239, 32.9089], 0.2508),
           14: ([6.2915, 3.0353, 1.9891, 1.541], [2.4386, 32.3337, 0.6785, 81.6937], 1.1407),
           28: ([12.8376, 7.292, 4.4438, 2.38], [3.8785, 0.2565, 12.1763, 66.3421], 1.0341)}
    s = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 1.5])  # sinθ/λ, Å⁻¹
    q = torch.tensor(4 * math.pi * s, dtype=torch.float64)
    ours = ScatteringFactors.build(list(itc), radiation="xray").real(q).numpy()
    for k, (a, b, c) in enumerate(itc.values()):
        reference = sum(ai * np.exp(-bi * s**2) for ai, bi in zip(a, b)) + c
        np.testing.assert_allclose(ours[k], reference, atol=0.015)


def test_anomalous_terms_near_the_international_tables():
    """Chantler's f′, f″ at Cu Kα1 (8047.8 eV) beside the Cromer–Liberman values of International Tables Vol. C,
    Table 4.2.6.8 (Ni: −3.003, 0.509; Fe: −1.134, 3.197): the two calculations agree to about 0.1 electron."""
    fac = ScatteringFactors.build([28, 26], radiation="xray", energy_ev=8047.8)
    np.testing.assert_allclose(fac.f_prime.numpy(), [-3.003, -1.134], atol=0.1)
    np.testing.assert_allclose(fac.f_second.numpy(), [0.509, 3.197], atol=0.05)


def test_neutron_lengths_and_isotopes():
    """Coherent lengths (fm) of V. F. Sears, Neutron News 3, 26 (1992) (the NIST table): Ni 10.3, Si 4.1491,
    O 5.803, ⁵⁸Ni 14.4, ²H 6.671."""
    fac = ScatteringFactors.build([28, 14, 8], radiation="neutron")
    np.testing.assert_allclose(fac.real(torch.tensor([0.0, 10.0], dtype=torch.float64))[:, 0].numpy(),
                               [10.3, 4.1491, 5.803], rtol=1e-3)
    assert neutron_length(28, 58) == pytest.approx(14.4)
    assert neutron_length(1, 2) == pytest.approx(6.671, rel=1e-3)


def test_anomalous_terms_from_chantler():
    fac = ScatteringFactors.build([28], radiation="xray", energy_ev=8300.0)
    assert float(fac.f_prime[0]) == pytest.approx(xraydb.f1_chantler("Ni", 8300.0))
    assert float(fac.f_second[0]) == pytest.approx(xraydb.f2_chantler("Ni", 8300.0))


def test_unknown_radiation():
    with pytest.raises(ScatterfitError, match="radiation"):
        ScatteringFactors.build([6], radiation="electrons")


def test_the_bundled_waasmaier_kirfel_table_is_xraydbs():
    """The JSON table read at start-up holds every ion of xraydb's Waasmaier–Kirfel table with the same numbers."""
    from scatterfit.scattering.formfactors import _waasmaier_rows, waasmaier_rows_from_xraydb

    bundled, reference = _waasmaier_rows(), waasmaier_rows_from_xraydb()
    assert len(reference) > 200
    assert bundled == reference


@pytest.mark.parametrize("radiation", ["xray", "neutron"])
def test_an_elements_length_at_zero_is_the_structures(radiation):
    """One element's forward-scattering length (solve's network restraints) equals what the PDF's normalisation
    uses for a structure of it (ScatteringTypes.factors(...).at_zero)."""
    from scatterfit.scattering.formfactors import length_at_zero, scattering_types
    from scatterfit.structure import Structure

    for z in (8, 14, 26, 79):
        s = Structure(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([z]))
        at_zero = float(scattering_types(s).factors(radiation).at_zero()[0])
        assert length_at_zero(z, radiation) == pytest.approx(at_zero, rel=1e-12)

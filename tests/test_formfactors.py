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


def test_neutron_lengths_and_isotopes():
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

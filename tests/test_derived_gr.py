"""The derived G(r) of reciprocal-space fits: data and model through one transform."""

import numpy as np
import pytest
import torch

from scatterfit.analysis.derived_gr import derived_gr, reduced_fq
from scatterfit.errors import ScatterfitError
from scatterfit.scattering.transforms import pdf_from_fq


def test_the_three_pattern_forms_reduce_to_the_same_fq():
    q = np.linspace(0.5, 20, 400)
    s = 1 + np.sin(2.5 * q) / (2.5 * q) * np.exp(-0.01 * q**2)
    f = reduced_fq(q, s, "sq")
    assert np.allclose(reduced_fq(q, 3.7 * (s - 1), "interference"), 3.7 * f)
    assert np.allclose(reduced_fq(q, f, "fq"), f)
    with pytest.raises(ScatterfitError, match="unknown pattern form"):
        reduced_fq(q, s, "gr")


def test_derived_gr_is_the_lorch_transform_and_its_rw_measures_the_misfit():
    q = np.linspace(0.5, 25, 1000)
    s = 1 + np.sin(2.5 * q) / (2.5 * q) * np.exp(-0.005 * q**2)
    same = derived_gr(q, s, s, "sq")
    assert same["rw"] == 0.0
    expected = pdf_from_fq(torch.as_tensor(q * (s - 1)), torch.as_tensor(q), torch.as_tensor(same["r"]),
                           lorch=True).numpy()
    assert np.allclose(same["g_obs"], expected)
    # the G(r) of sin(Qd)/(Qd) peaks at d
    assert same["r"][np.argmax(same["g_obs"])] == pytest.approx(2.5, abs=0.05)
    shifted = derived_gr(q, s, 1 + np.sin(2.6 * q) / (2.6 * q) * np.exp(-0.005 * q**2), "sq")
    assert 0.3 < shifted["rw"] < 2.0

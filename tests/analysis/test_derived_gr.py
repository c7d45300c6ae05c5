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


def test_debye_gr_model_reuses_its_sine_table_and_matches_the_direct_transform():
    import pickle

    from scatterfit.scattering.debye import debye_intensity
    from scatterfit.scattering.models import DebyeModel
    from scatterfit.scattering.transforms import pdf_from_fq, reduced_structure_factor, structure_factor
    from scatterfit.structure.parametrisation import State
    from scatterfit.testing import random_cluster

    c = random_cluster(20, numbers=(74, 8), seed=3)
    model = DebyeModel(kind="gr", qmin=0.7, qmax=18.0, qstep=0.02, lorch=True)
    r = torch.arange(1.0, 12.0, 0.01, dtype=torch.float64)
    state = State(c, {"qdamp": torch.tensor(0.03, dtype=torch.float64)})
    g1 = model(state, r)
    g2 = model(state, r[:500])  # a range-ramp prefix: a second table
    assert len(model._tables) == 2
    q = torch.arange(0.7, 18.0 + 1e-9, 0.02, dtype=torch.float64)
    f = reduced_structure_factor(structure_factor(debye_intensity(c, q), c, q), q)
    direct = pdf_from_fq(f, q, r, lorch=True, qdamp=0.03)
    torch.testing.assert_close(g1, direct, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g2, direct[:500], rtol=1e-12, atol=1e-12)
    assert pickle.loads(pickle.dumps(model))._tables == {}

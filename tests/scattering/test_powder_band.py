"""The banded pseudo-Voigt of powder patterns against the dense formula: equal to double precision, with and
without a Lorentzian part, its gradients included; a Gaussian pattern stores only its peaks' neighbourhoods."""

import torch

from scatterfit.scattering.powder import BandedProfile, banded_pseudo_voigt
from scatterfit.scattering.profiles import pseudo_voigt


def _dense(x, centre, fwhm, eta):
    return pseudo_voigt(x[:, None] - centre[None, :], fwhm[None, :], eta)


def test_the_band_equals_the_dense_profile_and_its_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(5.0, 150.0, 0.01, dtype=torch.float64)
    centre = (4.0 + 150 * torch.rand(300, generator=g, dtype=torch.float64)).requires_grad_()  # some off the grid
    fwhm = (0.02 + 0.3 * torch.rand(300, generator=g, dtype=torch.float64)).requires_grad_()
    weights = torch.rand(300, generator=g, dtype=torch.float64)
    for eta in (torch.tensor(0.0, dtype=torch.float64), torch.rand(300, generator=g, dtype=torch.float64),
                torch.tensor(0.0, dtype=torch.float64, requires_grad=True)):
        banded = banded_pseudo_voigt(x, centre, fwhm, eta)
        dense = _dense(x, centre, fwhm, eta)
        ours, theirs = banded.apply(weights), dense @ weights
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-12 * float(theirs.max()))
        assert torch.allclose(banded.full(), dense, rtol=0, atol=1e-12 * float(dense.max()))
        assert torch.allclose(banded.column_sums(), dense.sum(0), rtol=1e-12)
        target = torch.sin(x)
        grads = torch.autograd.grad((ours * target).sum(), [centre, fwhm])
        expected = torch.autograd.grad((theirs * target).sum(), [centre, fwhm])
        for a, b in zip(grads, expected):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()))
        assert (banded.dense is None) == (not eta.requires_grad and not bool((eta != 0).any()))
    gaussian = banded_pseudo_voigt(x, centre, fwhm, 0.0)
    assert len(gaussian.values) < 0.02 * len(x) * len(centre)  # the peaks' neighbourhoods only


def test_concatenated_bands_keep_their_peaks_apart():
    x = torch.linspace(0.0, 10.0, 1001, dtype=torch.float64)
    first = banded_pseudo_voigt(x, torch.tensor([2.0, 5.0], dtype=torch.float64), torch.tensor(0.1), 0.0)
    second = banded_pseudo_voigt(x, torch.tensor([7.0], dtype=torch.float64), torch.tensor(0.2), 0.5)
    both = BandedProfile.concat([first, second])
    assert both.m == 3 and torch.allclose(both.full(), torch.cat([first.full(), second.full()], 1))

"""The analytic small-angle form factors (scattering/shapes.py) against the Debye equation of atoms filling the
same shapes (an independent route, orientations averaged exactly), the Guinier radii, a brute-force size
average and finite differences."""

import math

import pytest
import torch

from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.shapes import (
    SHAPES,
    form_factor,
    guinier_radius,
    polydisperse_intensity,
)
from scatterfit.structure import Structure
from scatterfit.testing import filled_shape


def _filled(shape: str, radius: float, aspect: float, spacing: float = 1.5) -> Structure:
    """Unit scatterers on a cubic grid inside the shape (scatterfit.testing.filled_shape)."""
    xyz = filled_shape(shape, radius, aspect, spacing)
    return Structure(positions=torch.as_tensor(xyz), numbers=torch.full((len(xyz),), 6), cell=None)


@pytest.mark.parametrize("shape,aspect", [("sphere", 1.0), ("spheroid", 2.5), ("spheroid", 0.4),
                                          ("cylinder", 3.0), ("cylinder", 0.3)])
def test_form_factors_equal_the_debye_equation_of_the_filled_shape(shape, aspect):
    q = torch.linspace(0.005, 0.25, 60, dtype=torch.float64)
    radius = 12.0
    atoms = _filled(shape, radius, aspect)
    debye = debye_intensity(atoms, q, radiation="unit", method="fast")
    debye = debye / len(atoms) ** 2  # P(0) = 1
    # the grid's surface is stepped: compare at the size with the grid's radius of gyration (same aspect)
    xyz = atoms.positions
    if shape == "cylinder":  # the grid's planes and the disc's area give its length and radius
        spacing = 1.5
        planes = len(torch.unique(xyz[:, 2]))
        disc = int((xyz[:, 2] == 0).sum())
        effective = math.sqrt(disc * spacing**2 / math.pi)
        aspect = planes * spacing / (2 * effective)
    else:
        rg = float(torch.sqrt(((xyz - xyz.mean(0)) ** 2).sum(1).mean()))
        effective = radius * rg / guinier_radius(shape, radius, aspect)
    assert effective == pytest.approx(radius, rel=0.05)
    analytic = form_factor(shape, q, torch.tensor(effective, dtype=torch.float64), aspect)
    big = analytic > 1e-3
    assert float(((debye - analytic).abs() / analytic)[big].max()) < 0.05
    assert float((debye - analytic).abs().max()) < 5e-3


@pytest.mark.parametrize("shape,aspect", [("sphere", 1.0), ("spheroid", 3.0), ("spheroid", 0.3),
                                          ("cylinder", 5.0), ("cylinder", 0.2)])
def test_low_q_slope_gives_the_guinier_radius(shape, aspect):
    q = torch.tensor([1e-3, 2e-3], dtype=torch.float64)
    p = form_factor(shape, q, torch.tensor(20.0, dtype=torch.float64), aspect)
    rg = math.sqrt(-3 * math.log(float(p[1] / p[0])) / float(q[1] ** 2 - q[0] ** 2))
    assert rg == pytest.approx(guinier_radius(shape, 20.0, aspect), rel=1e-3)


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.2, 0.35])
def test_size_average_equals_a_brute_force_integral(sigma):
    q = torch.linspace(0.002, 0.5, 200, dtype=torch.float64)
    radii = torch.exp(torch.linspace(0.0, 8.0, 40001, dtype=torch.float64))
    number = torch.exp(-torch.log(radii / 30.0) ** 2 / (2 * sigma**2))  # per d ln R
    weight = number * radii**6
    reference = (weight[:, None] * form_factor("sphere", q, radii)).sum(0) / weight.sum()
    ours = polydisperse_intensity("sphere", q, 30.0, 1.0, sigma)
    assert float(((ours - reference).abs() / reference).max()) < 1e-3


@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_equal_finite_differences(shape):
    q = torch.linspace(0.005, 0.4, 40, dtype=torch.float64)
    x = torch.tensor([25.0, 0.15, 2.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: polydisperse_intensity(shape, q, v[0], v[2], v[1]), (x,))

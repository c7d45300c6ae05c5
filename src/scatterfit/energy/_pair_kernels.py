"""Compiled (numba) CPU kernels of radial pair energies: E = Σ_p c_i c_j φ(r_p) over a pair list, with its exact
gradients with respect to the positions, the cell and the per-atom weights c (occupancies, or charges times
occupancies), in one pass over the pairs and without per-pair tensors or an autograd graph. They compute exactly
what the torch expressions of pair.py and coulomb.py compute (tested against them); the torch path stays in use
on other devices and dtypes.

Arrays: pos [N, 3] float64 Å, cell [3, 3] float64 Å (rows are the cell vectors; zeros for a finite structure),
c [N] float64, pairs i, j [P] int32 with integer cell shifts s [P, 3] int8 (r_ij = x_j − x_i + s·cell; the
Neighbours list's own arrays, not copied), params [P, k] float64 per pair (the functional form's own, see the forms
below; k = 0 for DSF).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

LENNARD_JONES, MORSE, BUCKINGHAM, DSF = 0, 1, 2, 3
"""The functional forms (params per pair):
LENNARD_JONES (ε, σ): 4ε[(σ/r)¹² − (σ/r)⁶];  MORSE (D, α, r0): D[(1 − e^{−α(r − r0)})² − 1];
BUCKINGHAM (A, ρ, C, W, σ_w): A e^{−r/ρ} − C/r⁶ + W (σ_w/r)²⁴ — each times the C² switch from r_on to r_cut;
DSF (no params; α and R = r_cut given): erfc(αr)/r − erfc(αR)/R + F_R (r − R) for r < R, else 0, with
F_R = erfc(αR)/R² + 2α/√π e^{−α²R²}/R (Fennell & Gezelter 2006, without the Coulomb constant)."""
FORMS = {"lennard-jones": LENNARD_JONES, "morse": MORSE, "buckingham": BUCKINGHAM, "dsf": DSF}
"""The forms by name (a PairPotential's ``form``)."""


@numba.njit(**_OPTS)
def _phi(form, r, p, alpha, dsf):
    """(φ(r), dφ/dr) of one pair; ``dsf`` = (erfc(αR)/R, F_R) of the DSF form."""
    if form == LENNARD_JONES:
        q = p[1] / r
        q2 = q * q
        x6 = q2 * q2 * q2
        return 4.0 * p[0] * (x6 * x6 - x6), 4.0 * p[0] * (-12.0 * x6 * x6 + 6.0 * x6) / r
    if form == MORSE:
        e = math.exp(-p[1] * (r - p[2]))
        return p[0] * ((1.0 - e) ** 2 - 1.0), 2.0 * p[0] * (1.0 - e) * p[1] * e
    if form == BUCKINGHAM:
        e = p[0] * math.exp(-r / p[1])
        inv2 = 1.0 / (r * r)
        c6 = p[2] * inv2 * inv2 * inv2
        q2 = p[4] * p[4] * inv2
        q4 = q2 * q2
        q12 = q4 * q4 * q4
        w = p[3] * q12 * q12
        return e - c6 + w, -e / p[1] + 6.0 * c6 / r - 24.0 * w / r
    erfc_r = math.erfc(alpha * r)
    gauss = 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * r) ** 2)
    return erfc_r / r - dsf[0] + dsf[1] * (r - dsf[2]), -erfc_r / (r * r) - gauss / r + dsf[1]


@numba.njit(**_OPTS)
def pair_energy(form, pos, cell, c, i, j, s, params, r_on, r_cut, alpha, switch):
    """(E, dE/dpos [N, 3], dE/dcell [3, 3], dE/dc [N]) of Σ_p c_i c_j φ(r_p) S(r_p) over the pairs with
    r_p < r_cut; S is the quintic switch from r_on to r_cut when ``switch``, else 1."""
    n = pos.shape[0]
    erfc_c = math.erfc(alpha * r_cut)
    dsf = (erfc_c / r_cut, erfc_c / r_cut**2 + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * r_cut) ** 2)
           / r_cut, r_cut)
    gpos = np.zeros((n, 3))
    gcell = np.zeros((3, 3))
    gc = np.zeros(n)
    energy = 0.0
    width = r_cut - r_on
    for p in range(i.shape[0]):
        a = i[p]
        b = j[p]
        s0, s1, s2 = s[p, 0], s[p, 1], s[p, 2]
        dx = pos[b, 0] - pos[a, 0] + s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
        dy = pos[b, 1] - pos[a, 1] + s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
        dz = pos[b, 2] - pos[a, 2] + s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
        r = math.sqrt(max(dx * dx + dy * dy + dz * dz, 1e-20))
        if r >= r_cut:
            continue
        value, slope = _phi(form, r, params[p], alpha, dsf)
        if switch and r > r_on:
            x = (r - r_on) / width
            sw = 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x * x)
            slope = slope * sw - value * 30.0 * x * x * (1.0 - x) ** 2 / width
            value = value * sw
        weight = c[a] * c[b]
        energy += weight * value
        gc[a] += c[b] * value
        gc[b] += c[a] * value
        f = weight * slope / r
        fx, fy, fz = f * dx, f * dy, f * dz
        gpos[b, 0] += fx
        gpos[b, 1] += fy
        gpos[b, 2] += fz
        gpos[a, 0] -= fx
        gpos[a, 1] -= fy
        gpos[a, 2] -= fz
        for k in range(3):
            sk = s[p, k]
            if sk != 0.0:
                gcell[k, 0] += sk * fx
                gcell[k, 1] += sk * fy
                gcell[k, 2] += sk * fz
    return energy, gpos, gcell, gc


class PairEnergy(torch.autograd.Function):
    """E = Σ_p c_i c_j φ(r_p) S(r_p) by :func:`pair_energy`, differentiable in positions [N, 3], cell [3, 3] (None
    for a finite structure) and c [N]; the pair list and the form's settings are constants. A backward that must
    itself be differentiable (create_graph: a Hessian, a force in a loss) recomputes the energy by ``reference``
    (positions, cell, c) → E, the torch expressions, and differentiates those."""

    @staticmethod
    def forward(ctx, positions, cell, c, pairs, form, params, r_on, r_cut, alpha, switch, reference):
        i, j, s = pairs
        box = np.zeros((3, 3)) if cell is None else cell.detach().numpy()
        energy, gpos, gcell, gc = pair_energy(form, positions.detach().numpy(), box, c.detach().numpy(), i, j, s,
                                              params, r_on, r_cut, alpha, switch)
        ctx.gradients = (torch.from_numpy(gpos), torch.from_numpy(gcell), torch.from_numpy(gc))
        ctx.save_for_backward(positions, cell, c)
        ctx.reference = reference
        return torch.tensor(energy, dtype=positions.dtype)

    @staticmethod
    def backward(ctx, grad):
        positions, cell, c = ctx.saved_tensors
        if torch.is_grad_enabled():  # a differentiable backward: through the torch expressions
            inputs = [x for x in (positions, cell, c) if x is not None and x.requires_grad]
            found = iter(torch.autograd.grad(ctx.reference(positions, cell, c), inputs, grad, create_graph=True))
            return tuple(next(found) if x is not None and x.requires_grad else None
                         for x in (positions, cell, c)) + (None,) * 8
        gpos, gcell, gc = ctx.gradients
        return (grad * gpos, None if cell is None else grad * gcell, grad * gc) + (None,) * 8


def compiled(structure) -> bool:
    """Whether :func:`radial_energy` can take ``structure`` (float64 on the CPU)."""
    return structure.positions.device.type == "cpu" and structure.dtype == torch.float64


def pair_arrays(nb) -> tuple:
    """(i, j [P], shifts [P, 3]) of a Neighbours list as numpy views (no copies), for :func:`radial_energy`."""
    return nb.i.numpy(), nb.j.numpy(), nb.shifts.numpy().reshape(-1, 3)


def radial_energy(structure, c: torch.Tensor, pairs: tuple, form: int, params: np.ndarray, r_on: float,
                  r_cut: float, reference, alpha: float = 0.0, switch: bool = True) -> torch.Tensor:
    """Σ_p c_i c_j φ(r_p) S(r_p), eV (a 0-d tensor differentiable in the structure's positions and cell and in
    ``c`` [N]); ``pairs`` from :func:`pair_arrays`, ``params`` [P, k] of the ``form``; ``reference``: the same sum by
    torch expressions, (positions, cell, c) → E, for a differentiable backward."""
    return PairEnergy.apply(structure.positions, structure.cell, c, pairs, form, params, float(r_on),
                            float(r_cut), float(alpha), bool(switch), reference)

"""Compiled (numba) CPU kernels of the pair histogram: the forward spreading and the analytic backward, fused
into one pass over the pairs with no per-pair arrays. They compute exactly what the torch block path in
histogram.py computes (tested against it); the torch path stays in use on other devices.

Arrays: pos [N, 3] float64 Å, occ [N] float64, types [N] int64, hist / grad [T' · n_nodes] float64 with the
node r_n = (n − 1)·dr; periodic pairs (i, j) [P] int32 with integer cell shifts s [P, 3] int8 and cell [3, 3].
"""

from __future__ import annotations

import math

import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, fastmath=False)


@numba.njit(**_OPTS)
def _pair_type(ti, tj, n_types):
    a = min(ti, tj)
    b = max(ti, tj)
    return a * n_types - (a * (a - 1)) // 2 + (b - a)


@numba.njit(**_OPTS)
def _spread(hist, base, t, amp):
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    hist[base] += amp * s * s * s / 6.0
    hist[base + 1] += amp * (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0
    hist[base + 2] += amp * (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0
    hist[base + 3] += amp * t3 / 6.0


@numba.njit(**_OPTS)
def _gather(g, base, t):
    """(Σ_m g[base+m] B_m(t), Σ_m g[base+m] B'_m(t))."""
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    val = (g[base] * s * s * s + g[base + 1] * (3.0 * t3 - 6.0 * t2 + 4.0)
           + g[base + 2] * (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) + g[base + 3] * t3) / 6.0
    der = (-0.5 * s * s * g[base] + 0.5 * (3.0 * t2 - 4.0 * t) * g[base + 1]
           + 0.5 * (-3.0 * t2 + 2.0 * t + 1.0) * g[base + 2] + 0.5 * t2 * g[base + 3])
    return val, der


@numba.njit(**_OPTS)
def _pair_forward(hist, r, w, pt, dr, n_nodes, inverse_r):
    x = r / dr + 1.0
    k0 = math.floor(x)
    amp = w / r if inverse_r else w
    _spread(hist, pt * n_nodes + int(k0) - 1, x - k0, amp)


@numba.njit(**_OPTS)
def _pair_backward(g, r, w, pt, dr, n_nodes, inverse_r):
    """(dL/dr, dL/dw) of one pair."""
    x = r / dr + 1.0
    k0 = math.floor(x)
    val, der = _gather(g, pt * n_nodes + int(k0) - 1, x - k0)
    if inverse_r:
        return w * (der / (dr * r) - val / (r * r)), val / r
    return w * der / dr, val


@numba.njit(**_OPTS)
def histogram_finite(pos, occ, types, n_types, dr, n_nodes, inverse_r):
    n_pt = n_types * (n_types + 1) // 2
    hist = np.zeros(n_pt * n_nodes)
    rmax = (n_nodes - 3) * dr
    n = pos.shape[0]
    for i in range(n):
        xi, yi, zi, oi, ti = pos[i, 0], pos[i, 1], pos[i, 2], occ[i], types[i]
        for j in range(i + 1, n):
            w = oi * occ[j]
            if w == 0.0:
                continue
            dx, dy, dz = pos[j, 0] - xi, pos[j, 1] - yi, pos[j, 2] - zi
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            if r >= rmax or r == 0.0:
                continue
            _pair_forward(hist, r, w, _pair_type(ti, types[j], n_types), dr, n_nodes, inverse_r)
    return hist


@numba.njit(**_OPTS)
def backward_finite(pos, occ, types, n_types, dr, n_nodes, inverse_r, g):
    gpos = np.zeros_like(pos)
    gocc = np.zeros_like(occ)
    rmax = (n_nodes - 3) * dr
    n = pos.shape[0]
    for i in range(n):
        xi, yi, zi, oi, ti = pos[i, 0], pos[i, 1], pos[i, 2], occ[i], types[i]
        for j in range(i + 1, n):
            oj = occ[j]
            dx, dy, dz = pos[j, 0] - xi, pos[j, 1] - yi, pos[j, 2] - zi
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            if r >= rmax or r == 0.0:
                continue
            dldr, dldw = _pair_backward(g, r, oi * oj, _pair_type(ti, types[j], n_types), dr, n_nodes, inverse_r)
            c = dldr / r
            gpos[j, 0] += c * dx
            gpos[j, 1] += c * dy
            gpos[j, 2] += c * dz
            gpos[i, 0] -= c * dx
            gpos[i, 1] -= c * dy
            gpos[i, 2] -= c * dz
            gocc[i] += dldw * oj
            gocc[j] += dldw * oi
    return gpos, gocc


@numba.njit(**_OPTS)
def _periodic_vector(pos, cell, i, j, s):
    s0, s1, s2 = float(s[0]), float(s[1]), float(s[2])
    dx = pos[j, 0] - pos[i, 0] + s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
    dy = pos[j, 1] - pos[i, 1] + s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
    dz = pos[j, 2] - pos[i, 2] + s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
    return dx, dy, dz


@numba.njit(**_OPTS)
def histogram_periodic(pos, cell, occ, types, n_types, pi, pj, ps, dr, n_nodes, inverse_r):
    n_pt = n_types * (n_types + 1) // 2
    hist = np.zeros(n_pt * n_nodes)
    rmax = (n_nodes - 3) * dr
    for p in range(pi.shape[0]):
        i, j = pi[p], pj[p]
        w = occ[i] * occ[j]
        if w == 0.0:
            continue
        dx, dy, dz = _periodic_vector(pos, cell, i, j, ps[p])
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        if r >= rmax or r == 0.0:
            continue
        _pair_forward(hist, r, w, _pair_type(types[i], types[j], n_types), dr, n_nodes, inverse_r)
    return hist


@numba.njit(**_OPTS)
def backward_periodic(pos, cell, occ, types, n_types, pi, pj, ps, dr, n_nodes, inverse_r, g):
    gpos = np.zeros_like(pos)
    gcell = np.zeros((3, 3))
    gocc = np.zeros_like(occ)
    rmax = (n_nodes - 3) * dr
    for p in range(pi.shape[0]):
        i, j = pi[p], pj[p]
        dx, dy, dz = _periodic_vector(pos, cell, i, j, ps[p])
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        if r >= rmax or r == 0.0:
            continue
        dldr, dldw = _pair_backward(g, r, occ[i] * occ[j], _pair_type(types[i], types[j], n_types), dr, n_nodes,
                                    inverse_r)
        c = dldr / r
        cx, cy, cz = c * dx, c * dy, c * dz
        gpos[j, 0] += cx
        gpos[j, 1] += cy
        gpos[j, 2] += cz
        gpos[i, 0] -= cx
        gpos[i, 1] -= cy
        gpos[i, 2] -= cz
        for a in range(3):
            sa = float(ps[p, a])
            gcell[a, 0] += sa * cx
            gcell[a, 1] += sa * cy
            gcell[a, 2] += sa * cz
        gocc[i] += dldw * occ[j]
        gocc[j] += dldw * occ[i]
    return gpos, gcell, gocc

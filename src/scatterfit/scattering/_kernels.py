"""Compiled (numba) CPU kernels of the pair histogram: the forward spreading and the analytic backward, as
passes over the pairs with no per-pair arrays (finite systems: row buffers of COLUMN_BLOCK entries per thread).
They compute exactly what the torch block path in histogram.py computes (tested against it); the torch path
stays in use on other devices.

Arrays: pos [N, 3] float64 Å (finite kernels take its columns px, py, pz [N] for a vectorised distance pass),
occ [N] float64, types [N] int64, hist / grad [T' · n_nodes] float64 with the node r_n = (n − 1)·dr; periodic
pairs (i, j) [P] int32 with integer cell shifts s [P, 3] int8 and cell [3, 3].
"""

from __future__ import annotations

import math

import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
VECTORISED = """The row loops that LLVM turns into SIMD code index slices (x[j0:j0 + m][k]), not x[j0 + k]: an index
that may be negative takes numba's wraparound branch, which kept the distance pass scalar (4.0 → 1.5 ns per pair
at 20,000 atoms). error_model="numpy" drops the zero-division branch for the same reason (every divisor here is
guarded)."""
from scatterfit.scattering.coincidence import R_COINCIDENT  # noqa: E402  (pairs left out of the histogram)


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
def _row_chunks(n, n_chunks):
    """Row boundaries [n_chunks + 1] splitting the pairs i < j of n atoms into equal shares."""
    bounds = np.empty(n_chunks + 1, dtype=np.int64)
    total = n * (n - 1) / 2.0
    bounds[0] = 0
    i = 0
    done = 0.0
    for c in range(1, n_chunks):
        while i < n and done < total * c / n_chunks:
            done += n - 1 - i
            i += 1
        bounds[c] = i
    bounds[n_chunks] = n
    return bounds


COLUMN_BLOCK = 1024  # pairs per pass of a row: the row buffers (≤ 11 × 8 kB) stay in the L1/L2 cache


@numba.njit(**_OPTS)
def _spread_prepass(px, py, pz, occ, xi, yi, zi, oi, j0, m, inv_dr, inverse_r, rmax, ib, w0, w1, w2, w3):
    """For the pairs of an atom at (xi, yi, zi) Å with occupancy oi and the atoms j0 + k, k < m, a loop LLVM
    vectorises: the first node ib = ⌊r/dr⌋ of each pair's four (−1: no entry: beyond rmax, zero weight or
    coincident atoms) and the amplitude-weighted spline weights w0…w3 on them, into row buffers [COLUMN_BLOCK]."""
    qx, qy, qz, qo = px[j0:j0 + m], py[j0:j0 + m], pz[j0:j0 + m], occ[j0:j0 + m]  # slices: see VECTORISED
    for k in range(m):
        dx = qx[k] - xi
        dy = qy[k] - yi
        dz = qz[k] - zi
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        x = r * inv_dr + 1.0
        k0 = math.floor(x)
        t = x - k0
        w = oi * qo[k] if r >= R_COINCIDENT else 0.0  # coincident atoms: no histogram entry, no gradient
        amp = w / max(r, R_COINCIDENT) if inverse_r else w
        ib[k] = int(k0) - 1 if (amp != 0.0 and r < rmax) else -1
        s = 1.0 - t
        t2 = t * t
        t3 = t2 * t
        a6 = amp / 6.0
        w0[k] = a6 * s * s * s
        w1[k] = a6 * (3.0 * t3 - 6.0 * t2 + 4.0)
        w2[k] = a6 * (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0)
        w3[k] = a6 * t3


@numba.njit(**_OPTS)
def _spread_row(hist, ti, types, j0, m, n_types, n_nodes, ib, w0, w1, w2, w3):
    """Adds the prepared spline weights of a row block onto the histogram (the scalar part)."""
    for k in range(m):
        b = ib[k]
        if b < 0:
            continue
        if n_types > 1:
            b += _pair_type(ti, types[j0 + k], n_types) * n_nodes
        hist[b] += w0[k]
        hist[b + 1] += w1[k]
        hist[b + 2] += w2[k]
        hist[b + 3] += w3[k]


@numba.njit(**_OPTS)
def _spline_coefficients(g):
    """[len(g) + 4, 4] the cubic in t of Σ_m g[b + m] B_m(t) for every first node b (rows c0…c3 of
    c0 + c1 t + c2 t² + c3 t³); the last four rows are zero (the row of pairs that take no part)."""
    c = np.zeros((g.shape[0] + 4, 4))
    for b in range(g.shape[0] - 3):
        g0, g1, g2, g3 = g[b], g[b + 1], g[b + 2], g[b + 3]
        c[b, 0] = (g0 + 4.0 * g1 + g2) / 6.0
        c[b, 1] = (g2 - g0) / 2.0
        c[b, 2] = (g0 - 2.0 * g1 + g2) / 2.0
        c[b, 3] = (3.0 * (g1 - g2) + g3 - g0) / 6.0
    return c


@numba.njit(**_OPTS)
def _gather_prepass(px, py, pz, occ, types, ti, n_types, n_nodes, xi, yi, zi, oi, j0, m, inv_dr, rmax, dead,
                    dxb, dyb, dzb, rb, ib, tb, wb):
    """For the pairs of an atom at (xi, yi, zi) Å (occupancy oi, type ti) and the atoms j0 + k, k < m, a loop LLVM
    vectorises: vectors dx, dy, dz, distance r, the row ib of the spline coefficients (_spline_coefficients; the
    zero row ``dead`` for pairs beyond rmax or coincident), the spline fraction t and the weight w = occ_i occ_j
    (0 for dead pairs) into the row buffers [COLUMN_BLOCK]."""
    qx, qy, qz, qo, qt = px[j0:j0 + m], py[j0:j0 + m], pz[j0:j0 + m], occ[j0:j0 + m], types[j0:j0 + m]
    for k in range(m):
        dx = qx[k] - xi
        dy = qy[k] - yi
        dz = qz[k] - zi
        dxb[k] = dx
        dyb[k] = dy
        dzb[k] = dz
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        rb[k] = r
        x = r * inv_dr + 1.0
        k0 = math.floor(x)
        tb[k] = x - k0
        live = r >= R_COINCIDENT and r < rmax  # coincident atoms: no histogram entry, no gradient
        pt = 0 if n_types == 1 else _pair_type(ti, qt[k], n_types)
        ib[k] = pt * n_nodes + int(k0) - 1 if live else dead
        wb[k] = oi * qo[k] if live else 0.0


@numba.njit(parallel=True, **_OPTS)
def histogram_finite(px, py, pz, occ, types, n_types, dr, n_nodes, inverse_r, n_chunks):
    """Positions as three contiguous coordinate arrays px, py, pz [N]; per row a vectorised pre-pass, then the
    scalar spreading onto the nodes."""
    n_pt = n_types * (n_types + 1) // 2
    local = np.zeros((n_chunks, n_pt * n_nodes))
    rmax = (n_nodes - 3) * dr
    inv_dr = 1.0 / dr
    n = px.shape[0]
    rows = _row_chunks(n, n_chunks)
    for c in numba.prange(n_chunks):
        hist = local[c]
        nb = COLUMN_BLOCK
        ib = np.empty(nb, dtype=np.int64)
        w0, w1, w2, w3 = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        for i in range(rows[c], rows[c + 1]):
            ti = types[i]
            for j0 in range(i + 1, n, nb):
                m = min(nb, n - j0)
                _spread_prepass(px, py, pz, occ, px[i], py[i], pz[i], occ[i], j0, m, inv_dr, inverse_r, rmax,
                                ib, w0, w1, w2, w3)
                _spread_row(hist, ti, types, j0, m, n_types, n_nodes, ib, w0, w1, w2, w3)
    return local.sum(axis=0)


@numba.njit(parallel=True, **_OPTS)
def backward_finite(px, py, pz, occ, types, n_types, dr, n_nodes, inverse_r, g, n_chunks):
    """Per row block: a vectorised pre-pass (distances, coefficient rows), then the pair forces from the cubic
    spline coefficients of g (one table per call), added to the coordinate-wise gradient arrays."""
    n = px.shape[0]
    coef = _spline_coefficients(g)
    dead = g.shape[0]
    gx_l, gy_l, gz_l = np.zeros((n_chunks, n)), np.zeros((n_chunks, n)), np.zeros((n_chunks, n))
    gocc_l = np.zeros((n_chunks, n))
    rmax = (n_nodes - 3) * dr
    inv_dr = 1.0 / dr
    rows = _row_chunks(n, n_chunks)
    for c in numba.prange(n_chunks):
        gx, gy, gz, gocc = gx_l[c], gy_l[c], gz_l[c], gocc_l[c]
        nb = COLUMN_BLOCK
        dxb, dyb, dzb, rb = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        tb, wb = np.empty(nb), np.empty(nb)
        ib = np.empty(nb, dtype=np.int64)
        for i in range(rows[c], rows[c + 1]):
            oi, ti = occ[i], types[i]
            sx = 0.0
            sy = 0.0
            sz = 0.0
            so = 0.0
            for j0 in range(i + 1, n, nb):
                m = min(nb, n - j0)
                _gather_prepass(px, py, pz, occ, types, ti, n_types, n_nodes, px[i], py[i], pz[i], oi, j0, m,
                                inv_dr, rmax, dead, dxb, dyb, dzb, rb, ib, tb, wb)
                sx, sy, sz, so = _row_forces(j0, m, oi, occ, inv_dr, inverse_r, dxb, dyb, dzb, rb, ib, tb, wb, coef,
                                             gx, gy, gz, gocc, sx, sy, sz, so)
            gx[i] -= sx
            gy[i] -= sy
            gz[i] -= sz
            gocc[i] += so
    gpos = np.empty((n, 3))
    gpos[:, 0] = gx_l.sum(axis=0)
    gpos[:, 1] = gy_l.sum(axis=0)
    gpos[:, 2] = gz_l.sum(axis=0)
    return gpos, gocc_l.sum(axis=0)


@numba.njit(**_OPTS)
def _row_forces(j0, m, oi, occ, inv_dr, inverse_r, dxb, dyb, dzb, rb, ib, tb, wb, coef, gx, gy, gz, gocc,
                sx, sy, sz, so):
    """Pair forces of a row block from the spline coefficients ``coef`` at the prepared rows ib (value Σ g B and
    slope Σ g B' per pair), added to the gradient arrays of atoms j0 + k; returns the running sums for atom i."""
    hx, hy, hz, ho, qo = gx[j0:j0 + m], gy[j0:j0 + m], gz[j0:j0 + m], gocc[j0:j0 + m], occ[j0:j0 + m]
    for k in range(m):
        b = ib[k]
        t = tb[k]
        c0, c1, c2, c3 = coef[b, 0], coef[b, 1], coef[b, 2], coef[b, 3]
        val = ((c3 * t + c2) * t + c1) * t + c0
        der = (3.0 * c3 * t + 2.0 * c2) * t + c1
        inv_r = 1.0 / max(rb[k], R_COINCIDENT)
        if inverse_r:
            dldr = wb[k] * (der * inv_dr - val * inv_r) * inv_r
            dldw = val * inv_r
        else:
            dldr = wb[k] * der * inv_dr
            dldw = val
        cb = dldr * inv_r
        cx, cy, cz = cb * dxb[k], cb * dyb[k], cb * dzb[k]
        hx[k] += cx
        hy[k] += cy
        hz[k] += cz
        ho[k] += dldw * oi
        sx += cx
        sy += cy
        sz += cz
        so += dldw * qo[k]
    return sx, sy, sz, so


@numba.njit(**_OPTS)
def _periodic_vector(pos, cell, i, j, s):
    s0, s1, s2 = float(s[0]), float(s[1]), float(s[2])
    dx = pos[j, 0] - pos[i, 0] + s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
    dy = pos[j, 1] - pos[i, 1] + s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
    dz = pos[j, 2] - pos[i, 2] + s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
    return dx, dy, dz


@numba.njit(parallel=True, **_OPTS)
def histogram_periodic(pos, cell, occ, types, n_types, pi, pj, ps, dr, n_nodes, inverse_r, n_chunks):
    n_pt = n_types * (n_types + 1) // 2
    local = np.zeros((n_chunks, n_pt * n_nodes))
    rmax = (n_nodes - 3) * dr
    n_pairs = pi.shape[0]
    for c in numba.prange(n_chunks):
        hist = local[c]
        for p in range(c * n_pairs // n_chunks, (c + 1) * n_pairs // n_chunks):
            i, j = pi[p], pj[p]
            w = occ[i] * occ[j]
            if w == 0.0:
                continue
            dx, dy, dz = _periodic_vector(pos, cell, i, j, ps[p])
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            if r >= rmax or r < R_COINCIDENT:
                continue
            _pair_forward(hist, r, w, _pair_type(types[i], types[j], n_types), dr, n_nodes, inverse_r)
    return local.sum(axis=0)


@numba.njit(parallel=True, **_OPTS)
def backward_periodic(pos, cell, occ, types, n_types, pi, pj, ps, dr, n_nodes, inverse_r, g, n_chunks):
    n = pos.shape[0]
    gpos_l = np.zeros((n_chunks, n, 3))
    gcell_l = np.zeros((n_chunks, 3, 3))
    gocc_l = np.zeros((n_chunks, n))
    rmax = (n_nodes - 3) * dr
    n_pairs = pi.shape[0]
    for c in numba.prange(n_chunks):
        gpos = gpos_l[c]
        gcell = gcell_l[c]
        gocc = gocc_l[c]
        for p in range(c * n_pairs // n_chunks, (c + 1) * n_pairs // n_chunks):
            i, j = pi[p], pj[p]
            dx, dy, dz = _periodic_vector(pos, cell, i, j, ps[p])
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            if r >= rmax or r < R_COINCIDENT:
                continue
            dldr, dldw = _pair_backward(g, r, occ[i] * occ[j], _pair_type(types[i], types[j], n_types), dr,
                                        n_nodes, inverse_r)
            cc = dldr / r
            cx, cy, cz = cc * dx, cc * dy, cc * dz
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
    return gpos_l.sum(axis=0), gcell_l.sum(axis=0), gocc_l.sum(axis=0)


# --- periodic pairs by cell lists: no pair list is stored (memory O(N + nodes)); the pairs are found again at
# every pass. The wrapped atoms are sorted by bin (bin index k0, k1, k2, the last fastest), so that the bins of one
# column (k0, k1) hold contiguous atoms. Every atom i is paired with contiguous runs of atoms j: for each column
# offset (o0, o1) the bins k2 + o2 over an interval of o2 (those that can hold pairs within the range), split where
# the run crosses the cell (another image). Every pair is seen once: only lexicographically positive bin offsets
# (o0, o1, o2), and for the zero offset j > i. A run's vectors, distances and spline fractions are computed by a
# loop LLVM vectorises (as the finite kernels' rows), then spread (forward) or gathered (backward) pair by pair.

BINS_PER_CUTOFF = 5  # bins of the first two directions at least cutoff / 8 wide (and the mean atomic spacing)
FINE_BINS_PER_CUTOFF = 32  # the run direction's bins (cutoff / 32, at least half the spacing): tighter run ends


@numba.njit(**_OPTS)
def _columns_plan(pos, cell, rcut):
    """Atoms wrapped into the cell, sorted by bin, and the column offsets to visit.

    Returns (order [N] the original index of each sorted atom, xs, ys, zs [N] sorted wrapped coordinates Å,
    wrap [N, 3] sorted integer shifts with wrapped = pos − wrap·cell, home [N, 3] each sorted atom's bin,
    units [N, 3] each sorted atom's fractional coordinates times n_bins, geometry [6] (see below), n_bins [3],
    start [B + 1] offsets of each bin's atoms in the sorted order (bins flat, k2 fastest), columns [C, 2] the
    lexicographically non-negative column offsets (o0, o1) within reach of ``rcut``)."""
    n = pos.shape[0]
    inv = np.linalg.inv(cell)
    volume = abs(np.linalg.det(cell))
    spacing = (volume / max(n, 1)) ** (1.0 / 3.0)
    n_bins = np.empty(3, dtype=np.int64)
    widths = np.empty(3)
    for a in range(3):
        b, c = cell[(a + 1) % 3], cell[(a + 2) % 3]
        cross = np.array([b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0]])
        widths[a] = volume / math.sqrt(cross[0] ** 2 + cross[1] ** 2 + cross[2] ** 2)
        width = max(rcut / FINE_BINS_PER_CUTOFF, 0.5 * spacing) if a == 2 else max(rcut / BINS_PER_CUTOFF, spacing)
        n_bins[a] = max(1, int(widths[a] / width))
    wrapped = np.empty((n, 3))
    wrap_all = np.empty((n, 3), dtype=np.int64)
    bins = np.empty((n, 3), dtype=np.int64)
    flat = np.empty(n, dtype=np.int64)
    for i in range(n):
        for a in range(3):
            f = pos[i, 0] * inv[0, a] + pos[i, 1] * inv[1, a] + pos[i, 2] * inv[2, a]
            w = math.floor(f)
            wrap_all[i, a] = w
            bins[i, a] = min(max(int((f - w) * n_bins[a]), 0), n_bins[a] - 1)
        for a in range(3):
            wrapped[i, a] = pos[i, a] - (wrap_all[i, 0] * cell[0, a] + wrap_all[i, 1] * cell[1, a]
                                         + wrap_all[i, 2] * cell[2, a])
        flat[i] = (bins[i, 0] * n_bins[1] + bins[i, 1]) * n_bins[2] + bins[i, 2]
    n_total = n_bins[0] * n_bins[1] * n_bins[2]
    start = np.zeros(n_total + 1, dtype=np.int64)
    for i in range(n):
        start[flat[i] + 1] += 1
    for b in range(n_total):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[flat[i]]] = i
        fill[flat[i]] += 1
    xs, ys, zs = np.empty(n), np.empty(n), np.empty(n)
    wrap = np.empty((n, 3), dtype=np.int64)
    home = np.empty((n, 3), dtype=np.int64)
    for s in range(n):
        i = order[s]
        xs[s], ys[s], zs[s] = wrapped[i, 0], wrapped[i, 1], wrapped[i, 2]
        for a in range(3):
            wrap[s, a] = wrap_all[i, a]
            home[s, a] = bins[i, a]
    # the geometry of the per-atom run bounds (_run_bounds), in bin units u_a = f_a · n_a
    geometry = np.empty(6)
    lengths = np.sqrt((cell ** 2).sum(axis=1))
    normal0, normal1 = inv[:, 0] / math.sqrt((inv[:, 0] ** 2).sum()), inv[:, 1] / math.sqrt((inv[:, 1] ** 2).sum())
    c_hat = cell[2] / lengths[2]
    geometry[0] = widths[0] / n_bins[0]  # spacing of the planes u0 = const. per unit, Å
    geometry[1] = widths[1] / n_bins[1]
    geometry[2] = (normal0 * normal1).sum()  # cosine of the angle between those planes' normals (both ⊥ c)
    geometry[3] = (cell[0] * c_hat).sum() / n_bins[0]  # Å along c per unit of u0, u1, u2
    geometry[4] = (cell[1] * c_hat).sum() / n_bins[1]
    geometry[5] = lengths[2] / n_bins[2]
    units = np.empty((n, 3))
    for s in range(n):
        for a in range(3):
            f = xs[s] * inv[0, a] + ys[s] * inv[1, a] + zs[s] * inv[2, a]
            units[s, a] = min(max(f * n_bins[a], 0.0), float(n_bins[a]))
    reach0 = int(math.ceil(rcut / geometry[0])) + 1
    reach1 = int(math.ceil(rcut / geometry[1])) + 1
    columns = np.zeros(((reach0 + 1) * (2 * reach1 + 1), 2), dtype=np.int64)
    k = 0
    for o0 in range(0, reach0 + 1):
        for o1 in range(-reach1, reach1 + 1):
            if o0 > 0 or o1 >= 0:
                columns[k, 0], columns[k, 1] = o0, o1
                k += 1
    return order, xs, ys, zs, wrap, home, units, geometry, n_bins, start, columns[:k]


@numba.njit(**_OPTS)
def _atom_chunks(n, n_chunks):
    bounds = np.empty(n_chunks + 1, dtype=np.int64)
    for c in range(n_chunks + 1):
        bounds[c] = c * n // n_chunks
    return bounds


@numba.njit(**_OPTS)
def _run_bounds(home_s, units_s, column, geometry, rcut):
    """The interval [lo, hi] of o2 whose bins (k0 + o0, k1 + o1, k2 + o2) can hold atoms within ``rcut`` of the
    atom at ``units_s`` [3] (hi < lo: none). The distance perpendicular to c is at least that to the half-planes
    bounding the column's u0 and u1 bands; along c the column's points lie within a range set by their u0, u1."""
    t0 = home_s[0] + column[0]
    t1 = home_s[1] + column[1]
    d0, d1, side0, side1 = 0.0, 0.0, 1.0, 1.0
    if units_s[0] < t0:
        d0 = (t0 - units_s[0]) * geometry[0]
    elif units_s[0] > t0 + 1:
        d0, side0 = (units_s[0] - t0 - 1) * geometry[0], -1.0
    if units_s[1] < t1:
        d1 = (t1 - units_s[1]) * geometry[1]
    elif units_s[1] > t1 + 1:
        d1, side1 = (units_s[1] - t1 - 1) * geometry[1], -1.0
    if d0 == 0.0 or d1 == 0.0:
        perp = d0 + d1
    else:
        cos = side0 * side1 * geometry[2]
        if d0 * cos >= d1:
            perp = d0
        elif d1 * cos >= d0:
            perp = d1
        else:
            perp = math.sqrt(max(d0 * d0 + d1 * d1 - 2.0 * cos * d0 * d1, 0.0) / (1.0 - cos * cos))
    if perp >= rcut:
        return 0, -1
    h = math.sqrt(rcut * rcut - perp * perp)
    e0 = t0 * geometry[3] + t1 * geometry[4]
    e_lo = e0 + min(geometry[3], 0.0) + min(geometry[4], 0.0)
    e_hi = e0 + max(geometry[3], 0.0) + max(geometry[4], 0.0)
    along = units_s[0] * geometry[3] + units_s[1] * geometry[4] + units_s[2] * geometry[5]
    lo = int(math.floor((along - h - e_hi) / geometry[5])) - home_s[2]
    hi = int(math.floor((along + h - e_lo) / geometry[5])) - home_s[2]
    if column[0] == 0 and column[1] == 0:
        lo = max(lo, 0)
    return lo, hi


@numba.njit(**_OPTS)
def _column_base(home_s, column, n_bins, cell):
    """(flat index of the column's first bin, shift vector x, y, z Å of its image) for an atom in bin
    ``home_s`` [3] and the column offset (o0, o1)."""
    t0 = home_s[0] + column[0]
    t1 = home_s[1] + column[1]
    m0 = t0 // n_bins[0]
    m1 = t1 // n_bins[1]
    base = ((t0 - m0 * n_bins[0]) * n_bins[1] + (t1 - m1 * n_bins[1])) * n_bins[2]
    return (base, m0, m1, m0 * cell[0, 0] + m1 * cell[1, 0], m0 * cell[0, 1] + m1 * cell[1, 1],
            m0 * cell[0, 2] + m1 * cell[1, 2])


@numba.njit(**_OPTS)
def _run(s, home_s, column, o2, hi, base, n_bins, start):
    """The run of bins o2 … (at most hi) within one image of the column: (first atom, end atom, image m2, next o2)."""
    t2 = home_s[2] + o2
    m2 = t2 // n_bins[2]
    b2 = t2 - m2 * n_bins[2]
    last = min(hi - o2, n_bins[2] - 1 - b2)
    j_lo = start[base + b2]
    if column[0] == 0 and column[1] == 0 and o2 == 0:
        j_lo = s + 1
    return j_lo, start[base + b2 + last + 1], m2, o2 + last + 1


@numba.njit(parallel=True, **_OPTS)
def histogram_cells(pos, cell, occ, types, n_types, dr, n_nodes, inverse_r, n_chunks):
    """The periodic histogram of histogram_periodic, every pair within (n_nodes − 3)·dr found by cell lists."""
    n_pt = n_types * (n_types + 1) // 2
    local = np.zeros((n_chunks, n_pt * n_nodes))
    rmax = (n_nodes - 3) * dr
    inv_dr = 1.0 / dr
    order, xs, ys, zs, wrap, home, units, geometry, n_bins, start, columns = _columns_plan(pos, cell, rmax)
    occs, typs = occ[order], types[order]
    atoms = _atom_chunks(xs.shape[0], n_chunks)
    for c in numba.prange(n_chunks):
        hist = local[c]
        nb = COLUMN_BLOCK
        ib = np.empty(nb, dtype=np.int64)
        w0, w1, w2, w3 = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        for s in range(atoms[c], atoms[c + 1]):
            oi, ti = occs[s], typs[s]
            if oi == 0.0:
                continue
            for q in range(columns.shape[0]):
                o2, hi = _run_bounds(home[s], units[s], columns[q], geometry, rmax)
                if hi < o2:
                    continue
                base, m0, m1, sx, sy, sz = _column_base(home[s], columns[q], n_bins, cell)
                while o2 <= hi:
                    j_lo, j_hi, m2, o2 = _run(s, home[s], columns[q], o2, hi, base, n_bins, start)
                    xi = xs[s] - sx - m2 * cell[2, 0]
                    yi = ys[s] - sy - m2 * cell[2, 1]
                    zi = zs[s] - sz - m2 * cell[2, 2]
                    for j0 in range(j_lo, j_hi, nb):
                        m = min(nb, j_hi - j0)
                        _spread_prepass(xs, ys, zs, occs, xi, yi, zi, oi, j0, m, inv_dr, inverse_r, rmax,
                                        ib, w0, w1, w2, w3)
                        _spread_row(hist, ti, typs, j0, m, n_types, n_nodes, ib, w0, w1, w2, w3)
    return local.sum(axis=0)


@numba.njit(parallel=True, **_OPTS)
def backward_cells(pos, cell, occ, types, n_types, dr, n_nodes, inverse_r, g, n_chunks):
    """The gradients of backward_periodic (positions [N, 3], cell [3, 3], occupancies [N]) by cell lists.

    The cell gradient: with wrapped positions x' = x − wrap·cell and a pair vector x'_j − x'_i + m·cell (m the
    run's image), dL/dcell = Σ_runs m ⊗ (Σ of the run's pair forces) − Σ_atoms wrap ⊗ dL/dx."""
    n = pos.shape[0]
    rmax = (n_nodes - 3) * dr
    inv_dr = 1.0 / dr
    order, xs, ys, zs, wrap, home, units, geometry, n_bins, start, columns = _columns_plan(pos, cell, rmax)
    occs, typs = occ[order], types[order]
    coef = _spline_coefficients(g)
    dead = g.shape[0]
    gx_l, gy_l, gz_l = np.zeros((n_chunks, n)), np.zeros((n_chunks, n)), np.zeros((n_chunks, n))
    gocc_l = np.zeros((n_chunks, n))
    gcell_l = np.zeros((n_chunks, 3, 3))
    atoms = _atom_chunks(n, n_chunks)
    for c in numba.prange(n_chunks):
        gx, gy, gz, gocc, gcell = gx_l[c], gy_l[c], gz_l[c], gocc_l[c], gcell_l[c]
        nb = COLUMN_BLOCK
        dxb, dyb, dzb, rb = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        tb, wb = np.empty(nb), np.empty(nb)
        ib = np.empty(nb, dtype=np.int64)
        for s in range(atoms[c], atoms[c + 1]):
            oi, ti = occs[s], typs[s]
            sx = 0.0
            sy = 0.0
            sz = 0.0
            so = 0.0
            for q in range(columns.shape[0]):
                o2, hi = _run_bounds(home[s], units[s], columns[q], geometry, rmax)
                if hi < o2:
                    continue
                base, m0, m1, hx, hy, hz = _column_base(home[s], columns[q], n_bins, cell)
                while o2 <= hi:
                    j_lo, j_hi, m2, o2 = _run(s, home[s], columns[q], o2, hi, base, n_bins, start)
                    xi = xs[s] - hx - m2 * cell[2, 0]
                    yi = ys[s] - hy - m2 * cell[2, 1]
                    zi = zs[s] - hz - m2 * cell[2, 2]
                    rx, ry, rz = sx, sy, sz
                    for j0 in range(j_lo, j_hi, nb):
                        m = min(nb, j_hi - j0)
                        _gather_prepass(xs, ys, zs, occs, typs, ti, n_types, n_nodes, xi, yi, zi, oi, j0, m,
                                        inv_dr, rmax, dead, dxb, dyb, dzb, rb, ib, tb, wb)
                        sx, sy, sz, so = _row_forces(j0, m, oi, occs, inv_dr, inverse_r, dxb, dyb, dzb, rb, ib, tb,
                                                     wb, coef, gx, gy, gz, gocc, sx, sy, sz, so)
                    fx, fy, fz = sx - rx, sy - ry, sz - rz  # Σ of this run's pair forces
                    for a, ma in ((0, m0), (1, m1), (2, m2)):
                        gcell[a, 0] += ma * fx
                        gcell[a, 1] += ma * fy
                        gcell[a, 2] += ma * fz
            gx[s] -= sx
            gy[s] -= sy
            gz[s] -= sz
            gocc[s] += so
    gpos = np.empty((n, 3))
    gocc_out = np.empty(n)
    gx, gy, gz, go = gx_l.sum(axis=0), gy_l.sum(axis=0), gz_l.sum(axis=0), gocc_l.sum(axis=0)
    gcell = gcell_l.sum(axis=0)
    for s in range(n):
        i = order[s]
        gpos[i, 0], gpos[i, 1], gpos[i, 2] = gx[s], gy[s], gz[s]
        gocc_out[i] = go[s]
        for a in range(3):
            gcell[a, 0] -= wrap[s, a] * gx[s]
            gcell[a, 1] -= wrap[s, a] * gy[s]
            gcell[a, 2] -= wrap[s, a] * gz[s]
    return gpos, gcell, gocc_out

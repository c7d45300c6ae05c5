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

_OPTS = dict(cache=True, nogil=True, fastmath=False)
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


COLUMN_BLOCK = 1024  # pairs per pass of a row: the row buffers (9 × 8 kB) stay in the L1/L2 cache


@numba.njit(**_OPTS)
def _row_prepass(px, py, pz, occ, i, j0, m, inv_dr, inverse_r, dxb, dyb, dzb, rb, kb, tb, ab):
    """For the pairs (i, j0 + k), k < m, a loop LLVM vectorises: vectors dx, dy, dz, distance r, node index
    k0 = ⌊r/dr + 1⌋ (as float), spline fraction t and amplitude w (/ r) into the row buffers [COLUMN_BLOCK]."""
    xi, yi, zi, oi = px[i], py[i], pz[i], occ[i]
    for k in range(m):
        j = j0 + k
        dx = px[j] - xi
        dy = py[j] - yi
        dz = pz[j] - zi
        dxb[k] = dx
        dyb[k] = dy
        dzb[k] = dz
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        rb[k] = r
        x = r * inv_dr + 1.0
        k0 = math.floor(x)
        kb[k] = k0
        tb[k] = x - k0
        w = oi * occ[j] if r >= R_COINCIDENT else 0.0  # coincident atoms: no histogram entry, no gradient
        ab[k] = w / max(r, R_COINCIDENT) if inverse_r else w


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
        dxb, dyb, dzb, rb = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        kb, tb, ab = np.empty(nb), np.empty(nb), np.empty(nb)
        for i in range(rows[c], rows[c + 1]):
            ti = types[i]
            for j0 in range(i + 1, n, nb):
                m = min(nb, n - j0)
                _row_prepass(px, py, pz, occ, i, j0, m, inv_dr, inverse_r, dxb, dyb, dzb, rb, kb, tb, ab)
                for k in range(m):
                    r = rb[k]
                    if ab[k] == 0.0 or r >= rmax or r == 0.0:
                        continue
                    pt = 0 if n_types == 1 else _pair_type(ti, types[j0 + k], n_types)
                    _spread(hist, pt * n_nodes + int(kb[k]) - 1, tb[k], ab[k])
    return local.sum(axis=0)


@numba.njit(parallel=True, **_OPTS)
def backward_finite(px, py, pz, occ, types, n_types, dr, n_nodes, inverse_r, g, n_chunks):
    """Per row: a vectorised pre-pass, a scalar pass gathering Σ g B and Σ g B' per pair, and a vectorised pass
    turning them into pair forces added to the coordinate-wise gradient arrays."""
    n = px.shape[0]
    gx_l, gy_l, gz_l = np.zeros((n_chunks, n)), np.zeros((n_chunks, n)), np.zeros((n_chunks, n))
    gocc_l = np.zeros((n_chunks, n))
    rmax = (n_nodes - 3) * dr
    inv_dr = 1.0 / dr
    rows = _row_chunks(n, n_chunks)
    for c in numba.prange(n_chunks):
        gx, gy, gz, gocc = gx_l[c], gy_l[c], gz_l[c], gocc_l[c]
        nb = COLUMN_BLOCK
        dxb, dyb, dzb, rb = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
        kb, tb, wb = np.empty(nb), np.empty(nb), np.empty(nb)
        vb, db = np.empty(nb), np.empty(nb)
        for i in range(rows[c], rows[c + 1]):
            oi, ti = occ[i], types[i]
            sx = 0.0
            sy = 0.0
            sz = 0.0
            so = 0.0
            for j0 in range(i + 1, n, nb):
                m = min(nb, n - j0)
                _row_prepass(px, py, pz, occ, i, j0, m, inv_dr, False, dxb, dyb, dzb, rb, kb, tb, wb)
                for k in range(m):
                    r = rb[k]
                    if r >= rmax or r == 0.0:
                        vb[k] = 0.0
                        db[k] = 0.0
                        continue
                    pt = 0 if n_types == 1 else _pair_type(ti, types[j0 + k], n_types)
                    vb[k], db[k] = _gather(g, pt * n_nodes + int(kb[k]) - 1, tb[k])
                sx, sy, sz, so = _row_forces(j0, m, oi, occ, inv_dr, inverse_r, dxb, dyb, dzb, rb, wb, vb, db,
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
def _row_forces(j0, m, oi, occ, inv_dr, inverse_r, dxb, dyb, dzb, rb, wb, vb, db, gx, gy, gz, gocc, sx, sy, sz, so):
    """Pair forces from the gathered Σ g B (vb) and Σ g B' (db) of a row block, added to the gradient arrays of
    atoms j0 + k (vectorised); returns the running sums for atom i."""
    for k in range(m):
        j = j0 + k
        r = rb[k]
        inv_r = 1.0 / (1.0 if r < R_COINCIDENT else r)
        if r < R_COINCIDENT:  # left out of the histogram, so no gradient either
            continue
        if inverse_r:
            dldr = wb[k] * (db[k] * inv_dr - vb[k] * inv_r) * inv_r
            dldw = vb[k] * inv_r
        else:
            dldr = wb[k] * db[k] * inv_dr
            dldw = vb[k]
        cb = dldr * inv_r
        cx, cy, cz = cb * dxb[k], cb * dyb[k], cb * dzb[k]
        gx[j] += cx
        gy[j] += cy
        gz[j] += cz
        gocc[j] += dldw * oi
        sx += cx
        sy += cy
        sz += cz
        so += dldw * occ[j]
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
# every pass from bins of the wrapped atoms, bin against bin: every pair is seen once, from the bin of the offset
# that is lexicographically positive (offset 0: i < j).

BINS_PER_CUTOFF = 8  # bins at least cutoff / 8 wide (and no narrower than the mean atomic spacing)


@numba.njit(**_OPTS)
def _bin_grid(pos, cell, rcut):
    """Atoms wrapped into the cell and sorted by bin.

    Returns (wrapped [N, 3] Å, wrap [N, 3] integer shifts with wrapped = pos − wrap·cell, n_bins [3], order [N]
    atoms sorted by bin, start [B + 1] offsets of each bin in ``order``, offsets [K, 3]: the lexicographically
    non-negative bin offsets whose bins can hold pairs within ``rcut``, the zero offset first)."""
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
        n_bins[a] = max(1, int(widths[a] / max(rcut / BINS_PER_CUTOFF, spacing)))
    wrapped = np.empty((n, 3))
    wrap = np.empty((n, 3), dtype=np.int64)
    flat = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = np.empty(3, dtype=np.int64)
        for a in range(3):
            f = pos[i, 0] * inv[0, a] + pos[i, 1] * inv[1, a] + pos[i, 2] * inv[2, a]
            w = math.floor(f)
            wrap[i, a] = w
            k[a] = min(max(int((f - w) * n_bins[a]), 0), n_bins[a] - 1)
        for a in range(3):
            wrapped[i, a] = pos[i, a] - (wrap[i, 0] * cell[0, a] + wrap[i, 1] * cell[1, a] + wrap[i, 2] * cell[2, a])
        flat[i] = (k[0] * n_bins[1] + k[1]) * n_bins[2] + k[2]
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
    # offsets t whose bins come within rcut: |t| − (the bin's longest diagonal) < rcut
    step = np.empty((3, 3))
    for a in range(3):
        step[a] = cell[a] / n_bins[a]
    diag = 0.0
    for s1 in (-1.0, 1.0):
        for s2 in (-1.0, 1.0):
            d = step[0] + s1 * step[1] + s2 * step[2]
            diag = max(diag, math.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2))
    reach = np.empty(3, dtype=np.int64)
    for a in range(3):
        reach[a] = int(math.ceil((rcut + diag) / (widths[a] / n_bins[a])))
    count = (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1)
    offsets = np.zeros((count, 3), dtype=np.int64)
    k = 1  # offsets[0] = (0, 0, 0)
    for o0 in range(0, reach[0] + 1):
        for o1 in range(-reach[1], reach[1] + 1):
            for o2 in range(-reach[2], reach[2] + 1):
                if not _positive(o0, o1, o2):
                    continue
                t = o0 * step[0] + o1 * step[1] + o2 * step[2]
                if math.sqrt(t[0] ** 2 + t[1] ** 2 + t[2] ** 2) - diag < rcut:
                    offsets[k, 0], offsets[k, 1], offsets[k, 2] = o0, o1, o2
                    k += 1
    return wrapped, wrap, n_bins, order, start, offsets[:k]


@numba.njit(**_OPTS)
def _positive(n0, n1, n2):
    """The integer vector (n0, n1, n2) is lexicographically positive."""
    return n0 > 0 or (n0 == 0 and (n1 > 0 or (n1 == 0 and n2 > 0)))


@numba.njit(**_OPTS)
def _target(bin_a, offset, n_bins):
    """(bin index, image m0, m1, m2) of the bin at ``offset`` [3] from bin ``bin_a`` (flat index)."""
    a2 = bin_a % n_bins[2]
    a1 = (bin_a // n_bins[2]) % n_bins[1]
    a0 = bin_a // (n_bins[1] * n_bins[2])
    t0, t1, t2 = a0 + offset[0], a1 + offset[1], a2 + offset[2]
    m0, m1, m2 = t0 // n_bins[0], t1 // n_bins[1], t2 // n_bins[2]
    b = ((t0 - m0 * n_bins[0]) * n_bins[1] + (t1 - m1 * n_bins[1])) * n_bins[2] + (t2 - m2 * n_bins[2])
    return b, m0, m1, m2


@numba.njit(parallel=True, **_OPTS)
def histogram_cells(pos, cell, occ, types, n_types, dr, n_nodes, inverse_r, n_chunks):
    """The periodic histogram of histogram_periodic, every pair within (n_nodes − 3)·dr found by cell lists."""
    n_pt = n_types * (n_types + 1) // 2
    local = np.zeros((n_chunks, n_pt * n_nodes))
    rmax = (n_nodes - 3) * dr
    wrapped, wrap, n_bins, order, start, offsets = _bin_grid(pos, cell, rmax)
    n_total = start.shape[0] - 1
    for c in numba.prange(n_chunks):
        hist = local[c]
        for bin_a in range(c * n_total // n_chunks, (c + 1) * n_total // n_chunks):
            if start[bin_a] == start[bin_a + 1]:
                continue
            for q in range(offsets.shape[0]):
                b, m0, m1, m2 = _target(bin_a, offsets[q], n_bins)
                sx = m0 * cell[0, 0] + m1 * cell[1, 0] + m2 * cell[2, 0]
                sy = m0 * cell[0, 1] + m1 * cell[1, 1] + m2 * cell[2, 1]
                sz = m0 * cell[0, 2] + m1 * cell[1, 2] + m2 * cell[2, 2]
                for ka in range(start[bin_a], start[bin_a + 1]):
                    i = order[ka]
                    oi = occ[i]
                    if oi == 0.0:
                        continue
                    xi, yi, zi = wrapped[i, 0] - sx, wrapped[i, 1] - sy, wrapped[i, 2] - sz
                    for kb in range(ka + 1 if q == 0 else start[b], start[b + 1]):
                        j = order[kb]
                        w = oi * occ[j]
                        if w == 0.0:
                            continue
                        dx = wrapped[j, 0] - xi
                        dy = wrapped[j, 1] - yi
                        dz = wrapped[j, 2] - zi
                        r = math.sqrt(dx * dx + dy * dy + dz * dz)
                        if r >= rmax or r < R_COINCIDENT:
                            continue
                        _pair_forward(hist, r, w, _pair_type(types[i], types[j], n_types), dr, n_nodes, inverse_r)
    return local.sum(axis=0)


@numba.njit(parallel=True, **_OPTS)
def backward_cells(pos, cell, occ, types, n_types, dr, n_nodes, inverse_r, g, n_chunks):
    """The gradients of backward_periodic (positions [N, 3], cell [3, 3], occupancies [N]) by cell lists."""
    n = pos.shape[0]
    gpos_l = np.zeros((n_chunks, n, 3))
    gcell_l = np.zeros((n_chunks, 3, 3))
    gocc_l = np.zeros((n_chunks, n))
    rmax = (n_nodes - 3) * dr
    wrapped, wrap, n_bins, order, start, offsets = _bin_grid(pos, cell, rmax)
    n_total = start.shape[0] - 1
    for c in numba.prange(n_chunks):
        gpos = gpos_l[c]
        gcell = gcell_l[c]
        gocc = gocc_l[c]
        for bin_a in range(c * n_total // n_chunks, (c + 1) * n_total // n_chunks):
            if start[bin_a] == start[bin_a + 1]:
                continue
            for q in range(offsets.shape[0]):
                b, m0, m1, m2 = _target(bin_a, offsets[q], n_bins)
                sx = m0 * cell[0, 0] + m1 * cell[1, 0] + m2 * cell[2, 0]
                sy = m0 * cell[0, 1] + m1 * cell[1, 1] + m2 * cell[2, 1]
                sz = m0 * cell[0, 2] + m1 * cell[1, 2] + m2 * cell[2, 2]
                for ka in range(start[bin_a], start[bin_a + 1]):
                    i = order[ka]
                    xi, yi, zi = wrapped[i, 0] - sx, wrapped[i, 1] - sy, wrapped[i, 2] - sz
                    for kb in range(ka + 1 if q == 0 else start[b], start[b + 1]):
                        j = order[kb]
                        dx = wrapped[j, 0] - xi
                        dy = wrapped[j, 1] - yi
                        dz = wrapped[j, 2] - zi
                        r = math.sqrt(dx * dx + dy * dy + dz * dz)
                        if r >= rmax or r < R_COINCIDENT:
                            continue
                        dldr, dldw = _pair_backward(g, r, occ[i] * occ[j], _pair_type(types[i], types[j], n_types),
                                                    dr, n_nodes, inverse_r)
                        cc = dldr / r
                        cx, cy, cz = cc * dx, cc * dy, cc * dz
                        gpos[j, 0] += cx
                        gpos[j, 1] += cy
                        gpos[j, 2] += cz
                        gpos[i, 0] -= cx
                        gpos[i, 1] -= cy
                        gpos[i, 2] -= cz
                        # r_ij = x_j − x_i + S·cell with S = m − wrap_j + wrap_i
                        s0 = float(m0 - wrap[j, 0] + wrap[i, 0])
                        s1 = float(m1 - wrap[j, 1] + wrap[i, 1])
                        s2 = float(m2 - wrap[j, 2] + wrap[i, 2])
                        for e in range(3):
                            ce = cx if e == 0 else (cy if e == 1 else cz)
                            gcell[0, e] += s0 * ce
                            gcell[1, e] += s1 * ce
                            gcell[2, e] += s2 * ce
                        gocc[i] += dldw * occ[j]
                        gocc[j] += dldw * occ[i]
    return gpos_l.sum(axis=0), gcell_l.sum(axis=0), gocc_l.sum(axis=0)

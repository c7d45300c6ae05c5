"""Differentiable pair-distance histograms with cubic B-spline spreading: the shared core of the fast Debye and
real-space PDF engines.

Every pair p = (i, j) with distance r_p and weight w_p = occ_i occ_j is spread onto the nodes r_n = (n − 1)·dr with
the cubic B-spline B(r_p/dr + 1 − n) (4 nodes per pair). Accumulation is in float64 whatever the input dtype.
The backward pass is analytic and runs over the same pair blocks, so memory stays bounded by the block size
(no per-pair tensors survive the forward pass).

A transform of the histogram that is band-limited (sin(Qr) for Q·dr ≲ 0.5) can be corrected for the spreading
kernel exactly in Fourier space: Σ_n B(x − n) e^{iωn} = B̂(ω) e^{iωx} + aliasing, with B̂(ω) = sinc⁴(ω/2) and
aliasing of relative size ≈ 2(ω/2π)⁴ (values) and ≈ 2(ω/2π)³ (gradients).
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.scattering.coincidence import R_COINCIDENT
from scatterfit.structure.neighbours import CellLists, Neighbours

DEFAULT_PAIRS_PER_BLOCK = 2_000_000  # torch path on the CPU: about 0.6 GB of temporaries per block
# On a GPU, 20k Au atoms, forward+backward against DebyeCalculator (benchmarks/forward.py --block): 2 M pairs
# 1.15x (H100), 6 M pairs 2.4x with a 1.8 GB peak, 16 M pairs 2.9x with 4.7 GB (H200). 6 M keeps under 2 GB.
GPU_PAIRS_PER_BLOCK = 6_000_000
BYTES_PER_PAIR = 300  # measured peak GPU memory of a block of the torch path, per pair


def default_pairs_per_block(device: torch.device | str) -> int:
    """Pairs per block of the torch path: 2 M on the CPU; on a GPU 6 M (peak ≈ 1.8 GB), fewer when a quarter of
    the free device memory cannot hold them."""
    device = torch.device(device)
    if device.type != "cuda":
        return DEFAULT_PAIRS_PER_BLOCK
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(DEFAULT_PAIRS_PER_BLOCK, min(GPU_PAIRS_PER_BLOCK, free // (4 * BYTES_PER_PAIR))))


def bspline4(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubic B-spline weights and their t-derivatives at nodes k0−1, k0, k0+1, k0+2 for fraction t ∈ [0, 1).

    Returns:
        (w, dw), each [4, *t.shape].
    """
    t2, t3 = t * t, t * t * t
    s = 1.0 - t
    w = torch.stack([s * s * s / 6.0, (3 * t3 - 6 * t2 + 4) / 6.0, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6.0, t3 / 6.0])
    dw = torch.stack([-0.5 * s * s, (3 * t2 - 4 * t) / 2.0, (-3 * t2 + 2 * t + 1) / 2.0, 0.5 * t2])
    return w, dw


def bspline4_transform(omega: torch.Tensor) -> torch.Tensor:
    """Fourier transform B̂(ω) = sinc⁴(ω/2) of the cubic B-spline (ω = Q·dr, dimensionless)."""
    return torch.sinc(omega / (2 * torch.pi)) ** 4


def pair_type_index(type_i: torch.Tensor, type_j: torch.Tensor, n_types: int) -> torch.Tensor:
    """Index of the unordered type pair (a, b), a ≤ b, in the upper-triangle order used by every engine."""
    a = torch.minimum(type_i, type_j)
    b = torch.maximum(type_i, type_j)
    return a * n_types - (a * (a - 1)) // 2 + (b - a)


def pair_type_list(n_types: int) -> list[tuple[int, int]]:
    """The unordered type pairs (a, b), a ≤ b, in the order of :func:`pair_type_index`."""
    return [(a, b) for a in range(n_types) for b in range(a, n_types)]


class _Blocks:
    """Iterates the pairs of a structure in bounded blocks, for both passes of the histogram."""

    def __init__(self, positions, cell, pairs: Neighbours | None, pairs_per_block: int):
        self.positions, self.cell, self.pairs = positions, cell, pairs
        n = positions.shape[0]
        if pairs is None:
            self.rows = max(1, min(n, pairs_per_block // max(n, 1)))
            self.ranges = [(a, min(a + self.rows, n)) for a in range(0, n, self.rows)]
        else:
            p = pairs.i.shape[0]
            self.ranges = [(a, min(a + pairs_per_block, p)) for a in range(0, p, pairs_per_block)]

    def vectors(self, a: int, b: int):
        """Pair vectors, distances, first/second indices and a validity mask for block [a, b).

        Finite: rows [a, b) against columns [a, N) as a dense block (mask keeps j > i).
        Periodic: list entries [a, b).
        """
        x = self.positions
        if self.pairs is None:
            n = x.shape[0]
            vec = x[None, a:, :] - x[a:b, None, :]  # [rows, cols, 3]
            rows = torch.arange(a, b, device=x.device)[:, None]
            cols = torch.arange(a, n, device=x.device)[None, :]
            mask = cols > rows
            return vec, mask
        i, j = self.pairs.i[a:b].long(), self.pairs.j[a:b].long()
        s = self.pairs.shifts[a:b].to(x.dtype)
        vec = x[j] - x[i] + s @ self.cell
        return vec, None


def _spread_indices(r, dr, n_nodes):
    x = r / dr + 1.0
    k0 = torch.floor(x)
    t = x - k0
    k0 = k0.to(torch.int64)
    return k0, t


def _numba_ready(positions: torch.Tensor, engine: str) -> bool:
    if engine == "torch" or positions.device.type != "cpu":
        if engine == "numba" and positions.device.type != "cpu":
            raise ScatterfitError("the numba pair kernels run on the CPU only; use engine='torch' on other devices")
        return False
    try:
        import scatterfit.scattering._kernels  # noqa: F401
    except ImportError:
        if engine == "numba":
            raise ScatterfitError("engine='numba' needs the numba package") from None
        return False
    return True


def compiled_kernels_serve(positions: torch.Tensor) -> bool:
    """The compiled CPU kernels (and so cell lists, structure/neighbours.CELL_LISTS) serve these tensors."""
    return _numba_ready(positions, "auto")


def _kernel_threads() -> int:
    """Threads for the numba kernels: torch's intra-op thread count (one setting for the whole program)."""
    import numba

    n = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def _columns(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.ascontiguousarray(pos[:, c]) for c in range(3))


def _np(t: torch.Tensor, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))


class _PairHistogramNumba(torch.autograd.Function):
    """Same contract as _PairHistogram; fused numba loops over the pairs (CPU)."""

    @staticmethod
    def forward(ctx, positions, cell, occupancy, type_index, pairs, n_types, dr, n_nodes, inverse_r):
        from scatterfit.scattering import _kernels as k

        pos, occ, types = _np(positions), _np(occupancy), _np(type_index, np.int64)
        if pairs is None:
            hist = k.histogram_finite(*_columns(pos), occ, types, n_types, dr, n_nodes, inverse_r, _kernel_threads())
        elif isinstance(pairs, CellLists):
            hist = k.histogram_cells(pos, _np(cell), occ, types, n_types, dr, n_nodes, inverse_r, _kernel_threads())
        else:
            hist = k.histogram_periodic(pos, _np(cell), occ, types, n_types, pairs.i.numpy(), pairs.j.numpy(),
                                        pairs.shifts.numpy(), dr, n_nodes, inverse_r, _kernel_threads())
        ctx.save_for_backward(positions, cell if cell is not None else torch.empty(0), occupancy, type_index)
        ctx.meta = (pairs, n_types, dr, n_nodes, inverse_r, cell is not None)
        n_pt = n_types * (n_types + 1) // 2
        return torch.from_numpy(hist).view(n_pt, n_nodes)

    @staticmethod
    def backward(ctx, grad_hist):
        from scatterfit.scattering import _kernels as k

        positions, cell, occupancy, type_index = ctx.saved_tensors
        pairs, n_types, dr, n_nodes, inverse_r, has_cell = ctx.meta
        pos, occ, types = _np(positions), _np(occupancy), _np(type_index, np.int64)
        g = _np(grad_hist.reshape(-1))
        gcell = None
        if pairs is None:
            gpos, gocc = k.backward_finite(*_columns(pos), occ, types, n_types, dr, n_nodes, inverse_r, g,
                                           _kernel_threads())
        else:
            if isinstance(pairs, CellLists):
                gpos, gc, gocc = k.backward_cells(pos, _np(cell), occ, types, n_types, dr, n_nodes, inverse_r, g,
                                                  _kernel_threads())
            else:
                gpos, gc, gocc = k.backward_periodic(pos, _np(cell), occ, types, n_types, pairs.i.numpy(),
                                                     pairs.j.numpy(), pairs.shifts.numpy(), dr, n_nodes, inverse_r,
                                                     g, _kernel_threads())
            gcell = torch.from_numpy(gc).to(cell) if ctx.needs_input_grad[1] else None
        gx = torch.from_numpy(gpos).to(positions) if ctx.needs_input_grad[0] else None
        go = torch.from_numpy(gocc).to(occupancy) if ctx.needs_input_grad[2] else None
        return gx, gcell, go, None, None, None, None, None, None


class _PairHistogram(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, cell, occupancy, type_index, pairs, n_types, dr, n_nodes, inverse_r, pairs_per_block):
        n_pt = n_types * (n_types + 1) // 2
        hist = torch.zeros(n_pt * n_nodes, dtype=torch.float64, device=positions.device)
        blocks = _Blocks(positions.detach(), None if cell is None else cell.detach(), pairs, pairs_per_block)
        occ = occupancy.detach()
        for a, b in blocks.ranges:
            vec, mask = blocks.vectors(a, b)
            r = vec.norm(dim=-1)
            if pairs is None:
                ti, tj = type_index[a:b, None], type_index[None, a:]
                w = occ[a:b, None] * occ[None, a:] * mask
                r = torch.where(mask, r, torch.ones_like(r))
                ti, tj = ti.expand_as(r), tj.expand_as(r)
            else:
                ti, tj = type_index[pairs.i[a:b].long()], type_index[pairs.j[a:b].long()]
                w = occ[pairs.i[a:b].long()] * occ[pairs.j[a:b].long()]
            r, w, ti, tj = r.reshape(-1), w.reshape(-1), ti.reshape(-1), tj.reshape(-1)
            keep = (w != 0) & (r < (n_nodes - 3) * dr) & (r >= R_COINCIDENT)
            r, w, ti, tj = r[keep], w[keep], ti[keep], tj[keep]
            k0, t = _spread_indices(r, dr, n_nodes)
            base = pair_type_index(ti, tj, n_types) * n_nodes + k0 - 1
            wt, _ = bspline4(t)
            amp = (w / r if inverse_r else w).to(torch.float64)
            for m in range(4):
                hist += torch.bincount(base + m, weights=amp * wt[m].to(torch.float64), minlength=hist.numel())
        ctx.save_for_backward(positions, cell if cell is not None else torch.empty(0), occupancy, type_index)
        ctx.meta = (pairs, n_types, dr, n_nodes, inverse_r, pairs_per_block, cell is not None)
        return hist.view(n_pt, n_nodes)

    @staticmethod
    def backward(ctx, grad_hist):
        positions, cell, occupancy, type_index = ctx.saved_tensors
        pairs, n_types, dr, n_nodes, inverse_r, pairs_per_block, has_cell = ctx.meta
        cell = cell if has_cell else None
        need_x, need_cell, need_occ = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        g_flat = grad_hist.reshape(-1).to(positions.dtype)
        gx = torch.zeros_like(positions) if need_x else None
        gc = torch.zeros_like(cell) if (need_cell and cell is not None) else None
        go = torch.zeros_like(occupancy) if need_occ else None
        blocks = _Blocks(positions.detach(), None if cell is None else cell.detach(), pairs, pairs_per_block)
        occ = occupancy.detach()
        limit = (n_nodes - 3) * dr
        for a, b in blocks.ranges:
            vec, mask = blocks.vectors(a, b)
            r = vec.norm(dim=-1)
            if pairs is None:
                ti = type_index[a:b, None].expand_as(r)
                tj = type_index[None, a:].expand_as(r)
                w = occ[a:b, None] * occ[None, a:] * mask
                valid = mask & (r < limit) & (r >= R_COINCIDENT)
                r = torch.where(valid, r, torch.ones_like(r))
            else:
                ti, tj = type_index[pairs.i[a:b].long()], type_index[pairs.j[a:b].long()]
                w = occ[pairs.i[a:b].long()] * occ[pairs.j[a:b].long()]
                valid = (r < limit) & (r >= R_COINCIDENT)
                r = torch.where(valid, r, torch.ones_like(r))
            k0, t = _spread_indices(r, dr, n_nodes)
            k0 = torch.where(valid, k0, torch.ones_like(k0))
            base = pair_type_index(ti, tj, n_types) * n_nodes + k0 - 1
            wt, dwt = bspline4(t)
            g_val = torch.zeros_like(r)
            g_der = torch.zeros_like(r)
            for m in range(4):
                gm = g_flat[base + m]
                g_val = g_val + gm * wt[m]
                g_der = g_der + gm * dwt[m]
            g_val = g_val * valid
            g_der = g_der * valid
            if inverse_r:
                dldr = w * (g_der / (dr * r) - g_val / (r * r))
                dldw = g_val / r
            else:
                dldr = w * g_der / dr
                dldw = g_val
            coef = (dldr / r).unsqueeze(-1) * vec  # dL/dvec, vec = x_j − x_i (+ S·cell)
            if pairs is None:
                if need_x:
                    gx[a:] += coef.sum(0)
                    gx[a:b] -= coef.sum(1)
                if need_occ:
                    go[a:b] += (dldw * occ[None, a:]).sum(1)
                    go[a:] += (dldw * occ[a:b, None]).sum(0)
            else:
                if need_x:
                    gx.index_add_(0, pairs.j[a:b].long(), coef)
                    gx.index_add_(0, pairs.i[a:b].long(), -coef)
                if gc is not None:
                    gc += pairs.shifts[a:b].to(coef.dtype).T @ coef
                if need_occ:
                    go.index_add_(0, pairs.i[a:b].long(), dldw * occ[pairs.j[a:b].long()])
                    go.index_add_(0, pairs.j[a:b].long(), dldw * occ[pairs.i[a:b].long()])
        return gx, gc, go, None, None, None, None, None, None, None


def pair_histogram(positions: torch.Tensor, occupancy: torch.Tensor, type_index: torch.Tensor, n_types: int, *,
                   dr: float, n_nodes: int, cell: torch.Tensor | None = None, pairs: Neighbours | None = None,
                   inverse_r: bool = False, pairs_per_block: int | None = None,
                   engine: str = "auto") -> torch.Tensor:
    """Cubic-B-spline pair-distance histogram per unordered type pair, each pair counted once.

    Args:
        positions: [N, 3] Å (differentiable).
        occupancy: [N] (differentiable); pair weight w = occ_i occ_j.
        type_index: [N] int64 scattering type of each atom, values in [0, n_types).
        n_types: number of types T.
        dr: node spacing, Å. Node n sits at r_n = (n − 1)·dr.
        n_nodes: number of nodes; pairs with r ≥ (n_nodes − 3)·dr are ignored.
        cell: [3, 3] Å (differentiable), needed with ``pairs``.
        pairs: half neighbour list for periodic structures, or CELL_LISTS (every periodic pair within the range,
            found by cell lists in the CPU kernels, nothing stored); None means all pairs i < j of a finite
            system.
        inverse_r: weight each pair by 1/r (for the Debye sine transform).
        pairs_per_block: memory bound of one block of pairs (torch engine); None: default_pairs_per_block.
        engine: "numba" (fused CPU loops), "torch" (blocked tensor ops, any device) or "auto" (numba on the CPU
            when importable).

    Returns:
        [T(T+1)/2, n_nodes] float64 histogram h_t[n] = Σ_{p∈t} w_p B(r_p/dr + 1 − n) (/ r_p).
    """
    if pairs is not None and cell is None:
        raise ScatterfitError("a periodic pair list needs the cell")
    if n_nodes < 5:
        raise ScatterfitError("the histogram needs at least 5 nodes")
    if engine not in ("auto", "numba", "torch"):
        raise ScatterfitError(f"unknown histogram engine '{engine}' (use auto, numba or torch)")
    if pairs_per_block is None:
        pairs_per_block = default_pairs_per_block(positions.device)
    if isinstance(pairs, CellLists) and not _numba_ready(positions, engine):
        raise ScatterfitError("cell lists run in the numba CPU kernels only; give a neighbour list on other devices")
    if _numba_ready(positions, engine):
        return _PairHistogramNumba.apply(positions, cell, occupancy, type_index, pairs, int(n_types), float(dr),
                                         int(n_nodes), bool(inverse_r)).to(torch.float64)
    return _PairHistogram.apply(positions, cell, occupancy, type_index, pairs, int(n_types), float(dr), int(n_nodes),
                                bool(inverse_r), int(pairs_per_block))

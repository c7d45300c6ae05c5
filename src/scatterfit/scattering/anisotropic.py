"""Pair peaks of structures with anisotropic displacements: each pair's Gaussian is as wide as the atoms'
displacements along the pair's direction, σ_ij² = r̂ᵀ(U_i + U_j)r̂ · (1 − δ1/r − δ2/r² + Qbroad² r²) (PDFfit2's
peak width; Proffen & Billinge, J. Appl. Cryst. 32, 572 (1999)), so the pairs cannot be binned by type first as
the isotropic path does (scattering/histogram.py): every pair's Gaussian is summed onto the grid directly.

The sum over pairs is a custom autograd function whose backward recomputes the Gaussians block by block, so the
memory stays one block of pairs × the peak window, whatever the number of pairs.
"""

from __future__ import annotations

import math

import torch

from scatterfit.scattering.histogram import pair_type_index
from scatterfit.structure.neighbours import Neighbours
from scatterfit.structure.structure import Structure

HALF_WIDTH_SIGMAS = 5.0  # each Gaussian is summed within ±5σ of its centre
BLOCK_ENTRIES = 2**22  # pairs × window entries per block


def _windows(centre: torch.Tensor, k_half: int, dr: float, n_nodes: int):
    """For each pair, the node indices [P, 2K+1] of its window (the node of r is r/dr + 1), clamped into the
    grid, the nodes' r [P, 2K+1] (Å) and whether each index lies inside the grid (the rest count nothing)."""
    base = torch.round(centre / dr).to(torch.int64) + 1
    raw = base[:, None] + torch.arange(-k_half, k_half + 1, device=centre.device)[None, :]
    inside = (raw >= 0) & (raw < n_nodes)
    return raw.clamp(0, n_nodes - 1), (raw.to(centre.dtype) - 1.0) * dr, inside


class _GaussianSpread(torch.autograd.Function):
    """out[n] = Σ_p w_p exp(−(r_n − d_p)²/(2σ_p²)) / (√(2π) σ_p), r_n = (n − 1)·dr."""

    @staticmethod
    def forward(ctx, centre, sigma, weight, dr, n_nodes, k_half):
        out = torch.zeros(n_nodes, dtype=centre.dtype, device=centre.device)
        block = max(1, BLOCK_ENTRIES // (2 * k_half + 1))
        for a in range(0, centre.numel(), block):
            d, s, w = centre[a:a + block], sigma[a:a + block], weight[a:a + block]
            index, r, inside = _windows(d, k_half, dr, n_nodes)
            t = (r - d[:, None]) / s[:, None]
            g = inside * w[:, None] * torch.exp(-0.5 * t * t) / (math.sqrt(2 * math.pi) * s[:, None])
            out.index_add_(0, index.reshape(-1), g.reshape(-1))
        ctx.save_for_backward(centre, sigma, weight)
        ctx.settings = (dr, n_nodes, k_half)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        centre, sigma, weight = ctx.saved_tensors
        dr, n_nodes, k_half = ctx.settings
        grads = [torch.zeros_like(centre), torch.zeros_like(sigma), torch.zeros_like(weight)]
        block = max(1, BLOCK_ENTRIES // (2 * k_half + 1))
        for a in range(0, centre.numel(), block):
            d, s, w = centre[a:a + block], sigma[a:a + block], weight[a:a + block]
            index, r, inside = _windows(d, k_half, dr, n_nodes)
            t = (r - d[:, None]) / s[:, None]
            unit = inside * torch.exp(-0.5 * t * t) / (math.sqrt(2 * math.pi) * s[:, None])  # [B, W]
            g = grad_out[index] * unit
            grads[2][a:a + block] = g.sum(1)
            grads[0][a:a + block] = w * (g * t).sum(1) / s
            grads[1][a:a + block] = w * (g * (t * t - 1.0)).sum(1) / s
        return grads[0], grads[1], grads[2], None, None, None


def gaussian_spread(centre: torch.Tensor, sigma: torch.Tensor, weight: torch.Tensor, *, dr: float,
                    n_nodes: int) -> torch.Tensor:
    """[n_nodes] Σ_p weight_p · N(r_n; centre_p, sigma_p) on the nodes r_n = (n − 1)·dr (all [P], Å)."""
    if centre.numel() == 0:
        return torch.zeros(n_nodes, dtype=centre.dtype, device=centre.device)
    k_half = max(1, int(math.ceil(HALF_WIDTH_SIGMAS * float(sigma.detach().max()) / dr)))
    return _GaussianSpread.apply(centre, sigma, weight, float(dr), int(n_nodes), k_half)


def pair_vectors(structure: Structure, pairs: Neighbours | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(i [P], j [P], r_ij [P, 3] Å): the half list's pairs of a periodic structure, or every pair i < j of a
    finite one."""
    pos = structure.positions
    if pairs is None:
        i, j = torch.triu_indices(len(structure), len(structure), 1, device=pos.device)
        return i, j, pos[j] - pos[i]
    i, j = pairs.i.to(torch.int64).to(pos.device), pairs.j.to(torch.int64).to(pos.device)
    shift = pairs.shifts.to(pos.dtype).to(pos.device) @ structure.cell
    return i, j, pos[j] - pos[i] + shift


def anisotropic_pair_peaks(structure: Structure, pairs: Neighbours | None, type_index: torch.Tensor, n_types: int,
                           *, dr: float, n_nodes: int, delta1, delta2, qbroad, r_max: float) -> torch.Tensor:
    """[T(T+1)/2, n_nodes] Σ_{pairs of a type pair} occ_i occ_j N(r_n; r_ij, σ_ij) with σ_ij from the atoms'
    U tensors along the pair (module docstring), each unordered pair once, in histogram.pair_type_list's order.

    Args:
        structure: with ``uaniso`` [N, 3, 3] Å².
        pairs: half neighbour list (periodic) or None (finite: all pairs).
        type_index: [N] int64 scattering type of each atom; n_types: their number T.
        delta1 (Å), delta2 (Å²), qbroad (Å⁻¹): 0-d tensors or floats.
        r_max: pairs beyond r_max are left out, Å.
    """
    i, j, vec = pair_vectors(structure, pairs)
    d = torch.linalg.norm(vec, dim=1)
    keep = (d > 1e-8) & (d < r_max)
    i, j, vec, d = i[keep], j[keep], vec[keep], d[keep]
    unit = vec / d[:, None]
    u = structure.uaniso
    along = torch.einsum("pa,pab,pb->p", unit, u[i] + u[j], unit)  # Å²
    sharpen = 1.0 - delta1 / d - delta2 / d**2 + (qbroad * d) ** 2
    sigma = torch.sqrt(torch.clamp(along * sharpen, min=(0.5 * dr) ** 2))
    weight = structure.occupancy[i] * structure.occupancy[j]
    types = pair_type_index(type_index[i], type_index[j], n_types)
    out = []
    for t in range(n_types * (n_types + 1) // 2):
        m = types == t
        out.append(gaussian_spread(d[m], sigma[m], weight[m], dr=dr, n_nodes=n_nodes))
    return torch.stack(out)

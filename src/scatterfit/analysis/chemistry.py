"""The distributions chemists check on a refined structure: coordination histograms, bond-length and
bond-angle statistics per element pair / triplet, and bond-valence sums per site. Plain numbers for reports.

A bond A–B is a pair closer than ``scale`` × (covalent radius A + covalent radius B) (ASE's radii), or than the
cutoff given for that pair.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from scatterfit.structure.geometry import atomic_number, bond_angles, parse_pair, triplets
from scatterfit.structure.neighbours import neighbours, pair_vectors
from scatterfit.structure.structure import Structure


def bond_cutoffs(structure: Structure, cutoffs: dict | None = None, scale: float = 1.2) -> np.ndarray:
    """[Zmax+1, Zmax+1] bond cutoffs, Å, for the elements present."""
    from ase.data import covalent_radii

    zs = sorted(set(structure.numbers.tolist()))
    table = np.zeros((max(zs) + 1, max(zs) + 1))
    for a in zs:
        for b in zs:
            table[a, b] = scale * (covalent_radii[a] + covalent_radii[b])
    for spec, value in (cutoffs or {}).items():
        a, b = (atomic_number(p) for p in parse_pair(spec))
        if a <= max(zs) and b <= max(zs):
            table[a, b] = table[b, a] = float(value)
    return table


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0}
    return {"count": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max())}


def chemistry_report(structure: Structure, cutoffs: dict | None = None, scale: float = 1.2,
                     oxidation: dict | None = None) -> dict:
    """Coordination, bond lengths (Å), bond angles (degrees) and optional bond-valence sums.

    Returns:
        {"bond_cutoffs": {"A-B": Å}, "coordination": {"A": {"B": {n: atoms}, "total": {n: atoms}}},
         "bonds": {"A-B": stats}, "angles": {"B-A-C": stats}, "bond_valence": {"A": stats}}.
    """
    from ase.data import chemical_symbols as sym

    structure = structure.to("cpu")  # a report: numpy on the host, whatever device the refinement used
    table = bond_cutoffs(structure, cutoffs, scale)
    s = structure.with_(positions=structure.positions.detach(),
                        cell=None if structure.cell is None else structure.cell.detach())
    z = s.numbers.cpu().numpy()
    zs = sorted(set(z.tolist()))
    nb = neighbours(s, float(table.max()), full=True)
    vec = pair_vectors(s, nb)
    r = vec.norm(dim=-1)
    i, j = nb.i.cpu().numpy(), nb.j.cpu().numpy()
    bonded = torch.as_tensor(r.cpu().numpy() < table[z[i], z[j]])
    report = {"bond_cutoffs": {f"{sym[a]}-{sym[b]}": round(float(table[a, b]), 3) for a in zs for b in zs if a <= b}}

    coordination = {}
    bi, bj = i[bonded.numpy()], j[bonded.numpy()]
    for a in zs:
        centres = np.nonzero(z == a)[0]
        entry = {}
        for b in zs:
            counts = np.bincount(bi[z[bj] == b], minlength=len(z))[centres]
            entry[sym[b]] = {int(k): int(v) for k, v in sorted(Counter(counts.tolist()).items())}
        total = np.bincount(bi, minlength=len(z))[centres]
        entry["total"] = {int(k): int(v) for k, v in sorted(Counter(total.tolist()).items())}
        coordination[sym[a]] = entry
    report["coordination"] = coordination

    rb = r.cpu().numpy()[bonded.numpy()]
    bonds = {}
    for a in zs:
        for b in zs:
            if a <= b:  # a full list holds each bond in both directions: keep a→b, and i < j when a == b
                m = (z[bi] == a) & (z[bj] == b) & ((a != b) | (bi < bj))
                bonds[f"{sym[a]}-{sym[b]}"] = _stats(rb[m])
    report["bonds"] = {k: v for k, v in bonds.items() if v["count"]}

    ta, tb = triplets(nb, bonded)
    angles = bond_angles(vec, ta, tb).cpu().numpy() if ta.numel() else np.zeros(0)
    centre = z[i[ta.cpu().numpy()]] if ta.numel() else np.zeros(0, dtype=int)
    e0 = z[j[ta.cpu().numpy()]] if ta.numel() else np.zeros(0, dtype=int)
    e1 = z[j[tb.cpu().numpy()]] if ta.numel() else np.zeros(0, dtype=int)
    lo, hi = np.minimum(e0, e1), np.maximum(e0, e1)
    angle_report = {}
    for key in sorted(set(zip(lo.tolist(), centre.tolist(), hi.tolist()))):
        m = (lo == key[0]) & (centre == key[1]) & (hi == key[2])
        hist, edges = np.histogram(angles[m], bins=18, range=(0, 180))
        angle_report[f"{sym[key[0]]}-{sym[key[1]]}-{sym[key[2]]}"] = {
            **_stats(angles[m]), "histogram_10deg": hist.tolist()}
    report["angles"] = angle_report
    if s.periodic and len(s) <= 50_000:
        report["first_shell"] = first_shell(s)

    if oxidation:
        from scatterfit.constraints.restraints import BondValence

        bv = BondValence(oxidation)
        sums, sites = bv.sums(s)
        sums, zsite = sums.detach().cpu().numpy(), z[sites.cpu().numpy()]
        report["bond_valence"] = {sym[a]: {**_stats(sums[zsite == a]), "oxidation": float(bv.oxidation[a])}
                                  for a in sorted(set(zsite.tolist()))}
    return report


def first_shell(structure: Structure, rmax: float = 8.0, dr: float = 0.02, smooth: float = 0.05) -> dict:
    """Total radial distribution g(r) (Gaussian-smoothed histogram, width ``smooth`` Å) and its first shell:
    peak position (Å), first minimum after it (Å) and the coordination number ∫ 4πρ r² g(r) dr up to it.
    Periodic structures use their number density; finite ones are not normalised (ρ = N / bounding volume)."""
    s = structure.with_(positions=structure.positions.detach(),
                        cell=None if structure.cell is None else structure.cell.detach())
    nb = neighbours(s, rmax)
    d = pair_vectors(s, nb).norm(dim=-1).cpu().numpy()
    n = len(s)
    rho = n / float(s.volume) if s.periodic else n / float(np.prod(np.ptp(s.positions.cpu().numpy(), 0) + 1e-9))
    edges = np.arange(0.0, rmax + dr / 2, dr)
    hist, _ = np.histogram(d, bins=edges)
    r = 0.5 * (edges[1:] + edges[:-1])
    k_half = int(np.ceil(4 * smooth / dr))
    kernel = np.exp(-0.5 * (np.arange(-k_half, k_half + 1) * dr / smooth) ** 2)
    counts = np.convolve(hist, kernel / kernel.sum(), mode="same") / dr
    g = 2 * counts / (n * rho * 4 * np.pi * r**2)  # a half list counts each pair once
    k = int(np.argmax(g))
    window = g[k:k + int(3.0 / dr)]
    m = k + int(np.argmin(window))
    cn = float(np.trapezoid(4 * np.pi * rho * r[: m + 1] ** 2 * g[: m + 1], r[: m + 1]))
    return {"peak": float(r[k]), "g_peak": float(g[k]), "minimum": float(r[m]), "coordination": cn}

"""Helpers shared by the tests: small structures, named tolerances, gradient checks."""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.structure import Structure

FD_TOL = {"atol": 1e-6, "rtol": 1e-4}
"""Finite-difference tolerances for torch.autograd.gradcheck in float64."""


def random_cluster(n: int, *, numbers=(79,), radius: float | None = None, min_dist: float = 2.2, seed: int = 0,
                   dtype=torch.float64) -> Structure:
    """n atoms at random in a sphere, no pair closer than min_dist Å; species cycle through ``numbers``."""
    from scatterfit.structure.builders import _place_random

    radius = radius or (n ** (1 / 3)) * min_dist * 0.75
    centre = np.full(3, radius)
    pos = _place_random(n, np.full(3, 2 * radius), min_dist, np.random.default_rng(seed), periodic=False,
                        inside=lambda p: np.linalg.norm(p - centre) <= radius)
    z = [numbers[k % len(numbers)] for k in range(n)]
    return Structure(torch.tensor(pos - centre, dtype=dtype), z)


def random_box(n: int, density: float, *, numbers=(14,), min_dist: float = 2.0, seed: int = 0,
               dtype=torch.float64) -> Structure:
    """A periodic cubic box of n atoms at number density ``density`` (atoms/Å³) with a minimum distance;
    species cycle through ``numbers``."""
    from scatterfit.structure.builders import _place_random

    length = (n / density) ** (1 / 3)
    pos = _place_random(n, np.full(3, length), min_dist, np.random.default_rng(seed), periodic=True)
    z = [numbers[k % len(numbers)] for k in range(n)]
    return Structure(torch.tensor(pos, dtype=dtype), z, cell=torch.eye(3, dtype=dtype) * length,
                     pbc=(True, True, True))


def pdffit2_nickel_reference(data, *, qbroad: bool = False, qmax: float = 25.0, rmin: float = 1.5,
                             rmax: float = 30.0) -> dict:
    """PDFfit2 1.5.1 (the engine behind PDFgui) refining fcc Ni against ``data`` (a Dataset of G(r)) with the PDFgui
    parameter set: a, Uiso, scale, qdamp, delta2 (+ qbroad). PDFfit2 starts from a = 3.52 Å (its
    Levenberg–Marquardt needs a start inside the basin) and is given data from r > 0 (a point at r = 0 makes its
    normal matrix singular). Returns Rw and the refined values."""
    import os

    from diffpy.pdffit2 import PdfFit, redirect_stdout
    from diffpy.structure import Atom, Lattice
    from diffpy.structure import Structure as DStructure

    redirect_stdout(open(os.devnull, "w"))
    data = data.select(1e-6, None)
    lat = Lattice(3.52, 3.52, 3.52, 90, 90, 90)
    st = DStructure(lattice=lat)
    for frac in ([0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]):
        atom = Atom("Ni", frac, lattice=lat)
        atom.Uisoequiv = 0.005
        st.addNewAtom(atom)
    pf = PdfFit()
    pf.read_data_lists("X", qmax, 0.03, [float(v) for v in data.x], [float(v) for v in data.y])
    pf.add_structure(st)
    for k in (1, 2, 3):
        pf.constrain(pf.lat(k), "@1")
    pf.setpar(1, 3.52)
    for i in range(1, 5):
        for u in (pf.u11(i), pf.u22(i), pf.u33(i)):
            pf.constrain(u, "@2")
    pf.setpar(2, 0.005)
    pf.constrain(pf.pscale, "@3")
    pf.setpar(3, 0.5)
    pf.constrain(pf.qdamp, "@4")
    pf.setpar(4, 0.03)
    pf.constrain(pf.delta2, "@5")
    pf.setpar(5, 1.0)
    if qbroad:
        pf.constrain(pf.qbroad, "@6")
        pf.setpar(6, 0.01)
    pf.pdfrange(1, rmin, rmax)
    pf.refine()
    out = {"rw": pf.getrw(), "a": pf.getpar(1), "uiso": pf.getpar(2), "scale": pf.getpar(3), "qdamp": pf.getpar(4),
           "delta2": pf.getpar(5)}
    if qbroad:
        out["qbroad"] = pf.getpar(6)
    return out


def check_structure_gradients(fn, structure: Structure, *, cell: bool = True, occupancy: bool = False,
                              eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4) -> bool:
    """torch.autograd.gradcheck of a scalar function of a structure (an energy or a penalty) with respect to
    positions, the cell (periodic structures, when ``cell``) and optionally occupancies, in float64."""
    pos = structure.positions.detach().clone().requires_grad_(True)
    inputs = [pos]
    periodic = cell and structure.cell is not None and any(structure.pbc)
    if periodic:
        inputs.append(structure.cell.detach().clone().requires_grad_(True))
    if occupancy:
        inputs.append(structure.occupancy.detach().clone().requires_grad_(True))

    def f(*xs):
        changes = {"positions": xs[0]}
        k = 1
        if periodic:
            changes["cell"] = xs[k]
            k += 1
        if occupancy:
            changes["occupancy"] = xs[k]
        return fn(structure.with_(**changes))

    return torch.autograd.gradcheck(f, tuple(inputs), eps=eps, atol=atol, rtol=rtol)

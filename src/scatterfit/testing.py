"""Helpers shared by the tests: small structures, named tolerances, gradient checks."""

from __future__ import annotations

import os

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


def filled_shape(shape: str, radius: float, aspect: float, spacing: float) -> np.ndarray:
    """[n, 3] points of a cubic grid (``spacing``, Å) inside a sphere of ``radius``, a spheroid with semi-axes
    radius, radius, aspect·radius along z, or a cylinder of that radius and half-length aspect·radius along z:
    an independent model of the homogeneous particles of scattering/shapes.py for the Debye equation."""
    n = int(np.ceil(radius * max(1.0, aspect) / spacing)) + 1
    g = spacing * np.arange(-n, n + 1, dtype=float)  # a node at the centre
    x, y, z = (a.ravel() for a in np.meshgrid(g, g, g, indexing="ij"))
    if shape == "sphere":
        keep = x**2 + y**2 + z**2 <= radius**2
    elif shape == "spheroid":
        keep = (x**2 + y**2) / radius**2 + z**2 / (aspect * radius) ** 2 <= 1
    else:
        keep = (x**2 + y**2 <= radius**2) & (np.abs(z) <= aspect * radius)
    return np.column_stack([x[keep], y[keep], z[keep]])


def pdffit2_esds(pf) -> dict[int, float]:
    """{parameter index: esd} of a refined PdfFit, read from its result text (PDFfit2 has no call for them)."""
    import re

    block = pf.save_res_string().split("Refinement parameters")[1].split("---")[0]
    return {int(k): float(e) for k, e in re.findall(r"(\d+):\s*\S+\s*\(([^)]+)\)", block)}


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

    errors = pdffit2_esds(pf)
    names = {1: "a", 2: "uiso", 3: "scale", 4: "qdamp", 5: "delta2", 6: "qbroad"}
    out["esd"] = {names[k]: v for k, v in errors.items() if k in names}  # PDFfit2's esds (σ = 1, unscaled)
    if qbroad:
        out["qbroad"] = pf.getpar(6)
    return out


def pdffit2_phases_reference(data, cifs: dict, *, qmax: float = 25.0, rmin: float = 1.5, rmax: float = 30.0,
                             qdamp: float = 0.05, delta1: float = 1.5, scales: dict | None = None) -> dict:
    """PDFfit2 1.5.1 refining several cubic phases (PDFgui's two-phase fit) against ``data`` (a Dataset of G(r)):
    per phase a (the cubic lattice), one Uiso for all its atoms, delta1 and the phase scale; qdamp of the
    dataset; the data scale fixed at 1. ``cifs`` is {phase name: CIF path} (read by diffpy.structure); every
    phase starts from its CIF's lattice and Uiso, ``delta1`` and ``scales`` (default 0.5 each). Returns Rw, the
    refined values {"qdamp", "<phase>.a", "<phase>.uiso", "<phase>.delta1", "<phase>.scale"}, their esds
    (PDFfit2's, σ = 1) and PDFfit2's phase fractions {"atom": {phase: x}, "mass": {...}}."""
    import os
    import re

    from diffpy.pdffit2 import PdfFit, redirect_stdout
    from diffpy.structure import loadStructure

    redirect_stdout(open(os.devnull, "w"))
    data = data.select(1e-6, None)
    pf = PdfFit()
    pf.read_data_lists("X", qmax, qdamp, [float(v) for v in data.x], [float(v) for v in data.y])
    names, index = {}, 1
    for k, (phase, path) in enumerate(cifs.items(), start=1):
        st = loadStructure(str(path))
        for atom in st:  # "Si0+" → "Si": PDFfit2 knows neutral elements by symbol
            atom.element = re.sub(r"[0-9+-]+$", "", atom.element)
        pf.add_structure(st)
        pf.setphase(k)
        for j in (1, 2, 3):
            pf.constrain(pf.lat(j), f"@{index}")
        pf.setpar(index, float(st.lattice.a))
        names[index] = f"{phase}.a"
        for i in range(1, len(st) + 1):
            for u in (pf.u11(i), pf.u22(i), pf.u33(i)):
                pf.constrain(u, f"@{index + 1}")
        pf.setpar(index + 1, float(st[0].Uisoequiv))
        names[index + 1] = f"{phase}.uiso"
        pf.constrain(pf.delta1, f"@{index + 2}")
        pf.setpar(index + 2, delta1)
        names[index + 2] = f"{phase}.delta1"
        pf.constrain(pf.pscale, f"@{index + 3}")
        pf.setpar(index + 3, (scales or {}).get(phase, 0.5))
        names[index + 3] = f"{phase}.scale"
        index += 4
    pf.setphase(1)
    pf.constrain(pf.qdamp, f"@{index}")
    pf.setpar(index, qdamp)
    names[index] = "qdamp"
    pf.pdfrange(1, rmin, rmax)
    pf.refine()
    out = {"rw": pf.getrw(), "values": {name: pf.getpar(k) for k, name in names.items()}}
    errors = pdffit2_esds(pf)
    out["esd"] = {names[k]: v for k, v in errors.items() if k in names}
    fractions = pf.phase_fractions()
    out["fractions"] = {kind: dict(zip(cifs, fractions[kind])) for kind in ("atom", "mass")}
    return out


def pdffit2_envelope_reference(data, cif, *, qmax: float = 19.0, qdamp: float = 0.058, rmin: float = 1.5,
                               rmax: float = 30.0) -> dict:
    """PDFfit2 1.5.1 refining a hexagonal crystal inside a spherical envelope (examples/cdse_envelope.toml's model)
    against ``data`` (a Dataset of G(r)): a (= b), c, one Uiso per element, delta2, the scale and spdiameter, qdamp
    fixed; from the CIF's cell, Uiso 0.01 Å², delta2 5 Å², scale 0.1 and spdiameter 40 Å. Returns {"rw", name:
    (value, esd)} for a, c, uiso_<element>, delta2, scale and spdiameter."""
    import re

    from diffpy.pdffit2 import PdfFit, redirect_stdout
    from diffpy.structure import loadStructure

    redirect_stdout(open(os.devnull, "w"))
    data = data.select(1e-6, None)
    st = loadStructure(str(cif))
    for atom in st:  # "Cd2+" → "Cd": PDFfit2 knows neutral elements by symbol
        atom.element = re.sub(r"[0-9+-]+$", "", atom.element)
    pf = PdfFit()
    pf.read_data_lists("X", qmax, qdamp, [float(v) for v in data.x], [float(v) for v in data.y])
    pf.add_structure(st)
    for k, par in ((1, "@1"), (2, "@1"), (3, "@2")):
        pf.constrain(pf.lat(k), par)
    pf.setpar(1, st.lattice.a)
    pf.setpar(2, st.lattice.c)
    elements = list(dict.fromkeys(atom.element for atom in st))
    names = {1: "a", 2: "c"}
    for i, atom in enumerate(st, start=1):
        for u in (pf.u11(i), pf.u22(i), pf.u33(i)):
            pf.constrain(u, f"@{3 + elements.index(atom.element)}")
    index = 3
    for element in elements:
        pf.setpar(index, 0.01)
        names[index] = f"uiso_{element}"
        index += 1
    for target, name, start in ((pf.delta2, "delta2", 5.0), (pf.pscale, "scale", 0.1),
                                (pf.spdiameter, "spdiameter", 40.0)):
        pf.constrain(target, f"@{index}")
        pf.setpar(index, start)
        names[index] = name
        index += 1
    pf.pdfrange(1, rmin, rmax)
    pf.refine()
    esd = pdffit2_esds(pf)
    return {"rw": pf.getrw(), **{name: (pf.getpar(k), esd.get(k)) for k, name in names.items()}}


def pdffit2_symmetric_refinement(data, structure: Structure, *, qmax: float, qdamp: float, qbroad: float = 0.0,
                                 rmin: float = 1.5, rmax: float = 30.0, delta1: float = 0.0,
                                 delta2: float | None = None) -> dict:
    """PDFfit2 1.5.1 refining a crystal under its space group, the constraints written as PDFfit2 equations from
    scatterfit's own symmetry analysis (structure/spacegroup.py): the lattice lengths of its crystal system, the
    free Wyckoff coordinates (x = x0 + Σ M u), one Uiso per site orbit, delta1 (or delta2, when a starting
    ``delta2`` is given) and the scale; qdamp and qbroad fixed. ``data`` is a Dataset of G(r) starting near
    r = 0 (PDFfit2's termination ripples need the low-r part); the fit range is [rmin, rmax]. Returns {"rw",
    "lattice": [a, b, c], "uiso": {orbit label: value}, "wyckoff": [u], "delta1" or "delta2",
    "scale"} with PDFfit2's esds under "esd" by the same keys."""

    from ase.data import chemical_symbols
    from diffpy.pdffit2 import PdfFit, redirect_stdout
    from diffpy.structure import Atom, Lattice
    from diffpy.structure import Structure as DStructure

    from scatterfit.structure.spacegroup import lattice_rule, site_orbits, wyckoff_basis

    redirect_stdout(open(os.devnull, "w"))
    rule = lattice_rule(structure)
    if rule.angles:
        raise ValueError("this helper refines lattice lengths only")
    cell = structure.cell.detach().cpu().numpy()
    lengths = np.linalg.norm(cell, axis=1)
    from ase.geometry import cell_to_cellpar

    lat = Lattice(*cell_to_cellpar(cell))
    st = DStructure(lattice=lat)
    frac = structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    for z, f, u in zip(structure.numbers.tolist(), frac, structure.uiso.detach().cpu().numpy()):
        atom = Atom(chemical_symbols[z], f, lattice=lat)
        atom.Uisoequiv = float(u)
        st.addNewAtom(atom)
    pf = PdfFit()
    data = data.select(1e-6, None)
    pf.read_data_lists("X", qmax, qdamp, [float(v) for v in data.x], [float(v) for v in data.y])
    pf.add_structure(st)
    pf.setvar("qbroad", qbroad)
    names = {}
    for k, free in enumerate(rule.index[:3]):
        if free >= 0:
            pf.constrain(pf.lat(k + 1), f"@{1 + free}")
            pf.setpar(1 + free, float(lengths[k]))
            names[1 + free] = ("lattice", free)
    m = wyckoff_basis(structure)
    m = np.zeros((len(structure), 3, 0)) if m is None else m.reshape(len(structure), 3, -1)
    for k in range(m.shape[2]):
        pf.setpar(100 + k, 0.0)
        names[100 + k] = ("wyckoff", k)
    for i in range(len(structure)):
        for a, coordinate in enumerate((pf.x, pf.y, pf.z)):
            terms = [f"{m[i, a, k]:+.12f}*@{100 + k}" for k in range(m.shape[2]) if abs(m[i, a, k]) > 1e-12]
            if terms:
                pf.constrain(coordinate(i + 1), f"{frac[i, a]:.12f}" + "".join(terms))
    index, labels = site_orbits(structure)
    for k, label in enumerate(labels):
        atoms = np.flatnonzero(index == k)
        for i in atoms:
            for u in (pf.u11(int(i) + 1), pf.u22(int(i) + 1), pf.u33(int(i) + 1)):
                pf.constrain(u, f"@{200 + k}")
        pf.setpar(200 + k, float(structure.uiso[int(atoms[0])]))
        names[200 + k] = ("uiso", label)
    correlation = "delta1" if delta2 is None else "delta2"
    pf.constrain(getattr(pf, correlation), "@300")
    pf.setpar(300, delta1 if delta2 is None else delta2)
    names[300] = (correlation, None)
    pf.constrain(pf.pscale, "@301")
    pf.setpar(301, 1.0)
    names[301] = ("scale", None)
    pf.pdfrange(1, rmin, rmax)
    pf.refine()
    errors = pdffit2_esds(pf)
    out = {"rw": pf.getrw(), "lattice": [float(pf.getpar(1 + k)) if k >= 0 else float(lengths[j])
                                        for j, k in enumerate(rule.index[:3])],
           "uiso": {}, "wyckoff": [], "esd": {"uiso": {}, "wyckoff": []}}
    for p, (kind, key) in sorted(names.items()):
        value, esd = float(pf.getpar(p)), errors.get(p, float("nan"))
        if kind == "uiso":
            out["uiso"][key], out["esd"]["uiso"][key] = value, esd
        elif kind == "wyckoff":
            out["wyckoff"].append(value)
            out["esd"]["wyckoff"].append(esd)
        elif kind in ("delta1", "delta2", "scale"):
            out[kind], out["esd"][kind] = value, esd
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


def _state(structure: Structure, params: dict | None = None):
    from scatterfit.structure.parametrisation import State

    return State(structure, dict(params or {}))


def _snapshot(*tensors) -> list:
    return [None if t is None else t.detach().clone() for t in tensors]


def check_forward_model(model, structure: Structure, x: torch.Tensor, *, params: dict | None = None,
                        float32_rtol: float = 2e-3, subset_rtol: float = 1e-6, edge: float = 0.0,
                        gradcheck: bool = True, cell: bool = True) -> None:
    """The checks every forward model (a callable (State, x [n]) -> pattern [n]) must pass; raises
    AssertionError naming the failed check.

    - shape: the pattern is [n], finite, in the structure's dtype;
    - batched equals one by one: evaluated on every other point of x (same end points), it gives those points of
      the full pattern, and a second call gives the same values (no hidden state, no thread races);
    - float32 close to float64 (relative to the pattern's largest value);
    - gradcheck: autograd against finite differences for positions (and the cell of a periodic structure), in
      float64 on the structure given (keep it small);
    - the inputs are left unchanged.

    Args:
        model: the forward model.
        structure: a small float64 structure.
        x: [n] float64 grid (r in Å or Q in Å⁻¹, as the model expects).
        params: the State's instrument parameters (scale, qdamp, ...).
        float32_rtol: allowed float32 deviation relative to max |pattern|.
        subset_rtol: allowed deviation of the subset evaluation relative to max |pattern| (a model that convolves
            with an instrument resolution on the grid itself needs more than the default 1e-6).
        edge: points within this distance (x units) of the grid's ends are left out of the subset comparison
            (a resolution window is cut and renormalised there, so it depends on the sampling).
    """
    before = _snapshot(structure.positions, structure.cell, x)
    y = model(_state(structure, params), x)
    assert y.shape == x.shape, f"shape: {tuple(y.shape)} for x of shape {tuple(x.shape)}"
    assert y.dtype == structure.dtype, f"dtype: {y.dtype} for a {structure.dtype} structure"
    assert bool(torch.isfinite(y).all()), "finite: the pattern has NaN or infinite values"
    again = model(_state(structure, params), x)
    torch.testing.assert_close(again, y, rtol=1e-12, atol=1e-12 * float(y.abs().max()),
                               msg="repeatable: a second call gives other values")
    idx = sorted(set(range(0, x.numel(), 2)) | {x.numel() - 1})
    part = model(_state(structure, params), x[idx])
    scale = float(y.abs().max()) or 1.0
    xs = x[idx]
    inner = (xs >= x[0] + edge) & (xs <= x[-1] - edge)
    err = float((part - y[idx])[inner].abs().max()) / scale
    assert err <= subset_rtol, f"batched: a subset of the grid deviates by {err:.2e} from the full grid"
    y32 = model(_state(structure.to(dtype=torch.float32), params), x.float())
    err = float((y32.double() - y).abs().max()) / scale
    assert err < float32_rtol, f"float32: relative deviation {err:.2e} from float64"
    if gradcheck:
        periodic = cell and structure.cell is not None and any(structure.pbc)
        inputs = [structure.positions.detach().clone().requires_grad_(True)]
        if periodic:
            inputs.append(structure.cell.detach().clone().requires_grad_(True))

        def f(*xs):
            changes = {"positions": xs[0], **({"cell": xs[1]} if periodic else {})}
            return model(_state(structure.with_(**changes), params), x)

        assert torch.autograd.gradcheck(f, tuple(inputs), **FD_TOL), "gradcheck"
    after = _snapshot(structure.positions, structure.cell, x)
    for a, b, name in zip(before, after, ("positions", "cell", "x")):
        assert (a is None and b is None) or torch.equal(a, b), f"unchanged: the model modified the {name}"


def check_energy_model(model, structure: Structure, *, fd_step: float = 1e-5, fd_rtol: float = 1e-4,
                       float32_rtol: float | None = 1e-4, additivity_rtol: float = 1e-7) -> None:
    """The checks every energy model (``energy(structure) -> 0-d tensor``, eV) must pass; raises AssertionError
    naming the failed check.

    - shape: a finite 0-d tensor;
    - batched equals one by one: ``batch_energies`` of [s, s] equals [E(s), E(s)], and two copies of a finite
      structure placed beyond every cutoff (a periodic one: its 2×1×1 supercell) have twice its energy;
    - float32 close to float64 (skipped with float32_rtol=None for models that compute in one precision);
    - forces: −∂E/∂x by autograd against central finite differences of step ``fd_step`` Å;
    - the input is left unchanged.
    """
    from scatterfit.energy.base import batch_energies, forces

    before = _snapshot(structure.positions, structure.cell)
    e = model.energy(structure)
    assert e.ndim == 0 and bool(torch.isfinite(e)), f"shape: energy {e}"
    ref = float(e)
    tol = additivity_rtol * max(abs(ref), 1.0)
    both = batch_energies(model, [structure, structure])
    assert both.shape == (2,) and all(abs(float(v) - ref) <= tol for v in both), "batched: [s, s] ≠ [E(s), E(s)]"
    if structure.cell is not None and all(structure.pbc):
        cell = structure.cell.detach()
        twice = structure.with_(positions=torch.cat([structure.positions, structure.positions + cell[0]]),
                                numbers=structure.numbers.repeat(2), occupancy=structure.occupancy.repeat(2),
                                biso=structure.biso.repeat(2), charges=structure.charges.repeat(2),
                                cell=torch.stack([2 * cell[0], cell[1], cell[2]]), symmetry=None)
    else:
        span = float((structure.positions.max(0).values - structure.positions.min(0).values).norm())
        shift = torch.tensor([span + 50.0, 0.0, 0.0], dtype=structure.dtype)
        twice = structure.with_(positions=torch.cat([structure.positions, structure.positions + shift]),
                                numbers=structure.numbers.repeat(2), occupancy=structure.occupancy.repeat(2),
                                biso=structure.biso.repeat(2), charges=structure.charges.repeat(2), symmetry=None)
    e2 = float(model.energy(twice))
    assert abs(e2 - 2 * ref) <= 2 * tol + 1e-6, f"additive: two copies {e2} ≠ 2 × {ref}"
    if float32_rtol is not None:
        e32 = float(model.energy(structure.to(dtype=torch.float32)))
        assert abs(e32 - ref) <= float32_rtol * max(abs(ref), 1.0), f"float32: {e32} vs {ref}"
    f = forces(model, structure)
    pos = structure.positions.detach()
    numeric = torch.zeros_like(pos)
    for i in range(pos.shape[0]):
        for k in range(3):
            step = torch.zeros_like(pos)
            step[i, k] = fd_step
            up = float(model.energy(structure.with_(positions=pos + step)))
            down = float(model.energy(structure.with_(positions=pos - step)))
            numeric[i, k] = -(up - down) / (2 * fd_step)
    scale = max(float(numeric.abs().max()), 1e-3)
    err = float((f.detach() - numeric).abs().max()) / scale
    assert err < fd_rtol, f"forces: autograd vs finite differences, relative deviation {err:.2e}"
    after = _snapshot(structure.positions, structure.cell)
    for a, b, name in zip(before, after, ("positions", "cell")):
        assert (a is None and b is None) or torch.equal(a, b), f"unchanged: the model modified the {name}"

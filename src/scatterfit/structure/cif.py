"""CIF in and out, keeping what a refinement needs: every species of a shared site (each its own atom at the
site, with its occupancy), isotropic displacements from any CIF spelling (U_iso_or_equiv, B_iso_or_equiv),
anisotropic U_ij / B_ij tables (as cartesian tensors, turned by each symmetry operation), ionic charges from the
type symbols, and the space group's expansion of the asymmetric unit. The parsing of the CIF syntax and the
space groups' operations are gemmi's (fast to import: a command reading a CIF does not pay for ase.io's 0.5 s).

Written CIFs hold the space group the structure has (its operations written out) and its asymmetric unit, with
occupancies, U_iso_or_equiv, the U_ij table of anisotropic atoms and esds, so a refined model reads back to the
same structure (tests check it with an independent reader, gemmi).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import EIGHT_PI2, UISO_DEFAULT, Structure

_SYMBOL = re.compile(r"^([A-Z][a-z]?)(?:(\d*)([+-]))?")


def _species(type_symbol: str, label: str, where: str) -> tuple[int, float]:
    """(atomic number, formal charge) from a CIF type symbol such as "O2-" or "Cu", else from the label."""
    from ase.data import atomic_numbers

    for text in (type_symbol, label):
        m = _SYMBOL.match(str(text or ""))
        if m and m.group(1) in atomic_numbers:
            charge = 0.0
            if m.group(3):
                charge = float(m.group(2) or 1) * (1 if m.group(3) == "+" else -1)
            return atomic_numbers[m.group(1)], charge
    raise ScatterfitError(f"{where}: cannot tell the element of atom site '{label}' (type symbol '{type_symbol}')")


def _column(block, tag: str, n: int, default=None) -> list:
    values = block.get(tag)
    if values is None:
        return [default] * n
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(values) != n:
        raise ScatterfitError(f"{tag} has {len(values)} values for {n} atom sites")
    return [default if (v is None or v in ("?", ".")) else v for v in values]


def cif_to_cartesian_u(u_cif: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """U in cartesian axes from the CIF's U^ij (on the reciprocal-normalised axes, Å²): U_cart = A N U N Aᵀ with A
    the lattice vectors as columns and N = diag(|a*|, |b*|, |c*|) (Grosse-Kunstleve & Adams, J. Appl. Cryst. 35,
    477 (2002)). ``u_cif`` [..., 3, 3], ``cell`` [3, 3] rows."""
    a = cell.T
    n = np.diag(np.linalg.norm(np.linalg.inv(cell).T, axis=1))
    return a @ n @ u_cif @ n @ a.T


def cartesian_to_cif_u(u_cart: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The inverse of :func:`cif_to_cartesian_u`."""
    m = np.linalg.inv(cell.T @ np.diag(np.linalg.norm(np.linalg.inv(cell).T, axis=1)))
    return m @ u_cart @ m.T


def _u_tensors(block, cell: np.ndarray, where: str) -> dict:
    """{label: U (Å², [3, 3] cartesian)} from an anisotropic table (U_ij, or B_ij / 8π²)."""
    labels = block.get("_atom_site_aniso_label")
    if labels is None:
        return {}
    labels = list(labels) if isinstance(labels, (list, tuple)) else [labels]
    for prefix, factor in (("_atom_site_aniso_u_", 1.0), ("_atom_site_aniso_b_", 1.0 / EIGHT_PI2)):
        if block.get(prefix + "11") is not None:
            break
    else:
        raise ScatterfitError(f"{where}: an _atom_site_aniso_ table without U_11 or B_11")
    comps = {ij: _column(block, prefix + ij, len(labels), 0.0) for ij in ("11", "22", "33", "12", "13", "23")}
    out = {}
    for k, label in enumerate(labels):
        u = np.zeros((3, 3))
        for (i, j), ij in zip(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)), comps):
            u[i, j] = u[j, i] = _number(comps[ij][k], f"{where}: {prefix}{ij} of '{label}'") * factor
        out[str(label)] = cif_to_cartesian_u(u, cell)
    return out


def _number(text, where: str) -> float:
    """A CIF number, its esd in parentheses dropped."""
    try:
        return float(re.sub(r"\(\d+\)$", "", str(text)))
    except ValueError:
        raise ScatterfitError(f"{where}: '{text}' is not a number") from None


def _expand(group, site: np.ndarray, cell: np.ndarray, symprec: float = 1e-3) -> list[tuple[np.ndarray, np.ndarray]]:
    """The distinct images of fractional ``site`` under the space group, with each one's rotation in cartesian
    axes [3, 3] (for U' = R U Rᵀ), in the order ASE's equivalent_sites gives them."""
    to_cart = cell.T
    from_cart = np.linalg.inv(to_cart)
    out = []
    for rot, trans in group.get_symop():
        image = np.mod(rot @ site + trans, 1.0)
        if any(np.abs((image - seen + 0.5) % 1.0 - 0.5).max() < symprec for seen, _ in out):
            continue
        out.append((image, to_cart @ rot @ from_cart))
    return out


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(\(\d+\))?$")


class _Block:
    """The tags of one CIF data block (parsed by gemmi) as ``get(tag)``: a loop's column as a list, a single value
    as itself, None when absent; numbers (their esd dropped) as floats, "?" and "." as themselves, quotes removed.
    Tags are looked up in lower case with DDLm's dots read as underscores (_cell.length_a = _cell_length_a)."""

    def __init__(self, block):
        import gemmi

        self.name = block.name
        self.tags: dict = {}
        for item in block:
            if item.pair is not None:
                self.tags[_tag(item.pair[0])] = _value(item.pair[1], gemmi)
            elif item.loop is not None:
                loop = item.loop
                for k, tag in enumerate(loop.tags):
                    self.tags[_tag(tag)] = [_value(loop[r, k], gemmi) for r in range(loop.length())]

    def get(self, tag: str):
        return self.tags.get(tag)

    def has_structure(self) -> bool:
        return "_cell_length_a" in self.tags and ("_atom_site_label" in self.tags
                                                  or "_atom_site_type_symbol" in self.tags)


def _tag(tag: str) -> str:
    return tag.lower().replace(".", "_")


def _value(raw: str, gemmi):
    if raw in ("?", "."):
        return raw
    if _NUMBER.match(raw):
        return float(gemmi.cif.as_number(raw))
    return gemmi.cif.as_string(raw)


def _structure_block(path: Path) -> _Block:
    """The first data block of the CIF at ``path`` with a cell and atom sites."""
    import gemmi

    try:
        blocks = [_Block(b) for b in gemmi.cif.read(str(path))]
    except (RuntimeError, ValueError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScatterfitError(f"{path}: cannot read this CIF (its syntax: {msg})") from None
    blocks = [b for b in blocks if b.has_structure()]
    if not blocks:
        raise ScatterfitError(f"{path}: no crystal structure (cell and atom sites) in this CIF")
    return blocks[0]


def _cell(block: _Block, where: str) -> np.ndarray:
    """The lattice vectors [3, 3] (rows, Å) from the cell lengths and angles (90° where absent), a along x and b
    in the xy plane."""
    from ase.geometry.cell import cellpar_to_cell

    values = []
    for tag, default in (("_cell_length_a", None), ("_cell_length_b", None), ("_cell_length_c", None),
                         ("_cell_angle_alpha", 90.0), ("_cell_angle_beta", 90.0), ("_cell_angle_gamma", 90.0)):
        v = block.get(tag)
        v = default if v is None or v in ("?", ".") else v
        if not isinstance(v, float) or not (math.isfinite(v) and v > 0):
            raise ScatterfitError(f"{where}: {tag} is missing or not a positive number ({block.get(tag)!r})")
        values.append(v)
    return np.array(cellpar_to_cell(values), dtype=float)


class _Group:
    """A space group's number and operations as :func:`_expand` and :func:`_operations` read them."""

    def __init__(self, number: int, ops: list):
        self.no, self._ops = number, ops

    def get_symop(self) -> list:
        return self._ops


_SYMOP_TAGS = ("_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz")
_HALL_TAGS = ("_space_group_name_hall", "_symmetry_space_group_name_hall")
_HM_TAGS = ("_space_group_name_h-m_alt", "_symmetry_space_group_name_h-m", "_space_group_name_h-m")
_NUMBER_TAGS = ("_space_group_it_number", "_symmetry_int_tables_number", "_space_group_number")


def _space_group(block: _Block, where: str) -> _Group:
    """The block's space group: its symmetry operations as listed, else from its Hall symbol, its
    Hermann–Mauguin symbol (the standard setting, origin choice 1 where there are two), or its number; P1 when the
    block names none. The number is the one the operations make (gemmi), else the one declared."""
    import gemmi

    def first(tags):
        for tag in tags:
            v = block.get(tag)
            if v is not None and v not in ("?", "."):
                return v
        return None

    declared = first(_NUMBER_TAGS)
    symops, hall, hm = first(_SYMOP_TAGS), first(_HALL_TAGS), first(_HM_TAGS)
    try:
        if symops is not None:
            ops = gemmi.GroupOps([gemmi.Op(str(t)) for t in (symops if isinstance(symops, list) else [symops])])
        elif hall is not None:
            ops = gemmi.symops_from_hall(str(hall))
        elif hm is not None or declared is not None:
            sg = (gemmi.find_spacegroup_by_name(str(hm)) if hm is not None
                  else gemmi.find_spacegroup_by_number(int(declared)))
            if sg is None:
                raise ValueError(f"unknown space group '{hm if hm is not None else declared}'")
            ops = sg.operations()
        else:
            ops = gemmi.symops_from_hall("P 1")
    except (RuntimeError, ValueError) as exc:
        raise ScatterfitError(f"{where}: cannot read the space group ({str(exc).splitlines()[0]})") from None
    listed = [(np.array(op.rot, float) / gemmi.Op.DEN, np.array(op.tran, float) / gemmi.Op.DEN) for op in ops]
    found = gemmi.find_spacegroup_by_ops(ops)
    number = found.number if found is not None else int(declared) if isinstance(declared, float) else 1
    return _Group(number, listed)


def read_cif(path: str | Path, *, dtype: torch.dtype = torch.float64, device=None) -> Structure:
    """The unit cell of the first structure in a CIF, every atom of it, with occupancies, Uiso and charges.

    Atoms without displacement parameters get Uiso = UISO_DEFAULT (0.005 Å²).

    Raises:
        ScatterfitError: the file has no structure, or an atom site whose element cannot be told.
    """
    path = Path(path)
    block = _structure_block(path)
    where = str(path)
    cell = _cell(block, where)
    group = _space_group(block, where)
    labels = [str(v) for v in block.get("_atom_site_label") or block.get("_atom_site_type_symbol")]
    n = len(labels)
    types = _column(block, "_atom_site_type_symbol", n, "")
    frac = np.array([[float(v) for v in _column(block, f"_atom_site_fract_{a}", n, 0.0)] for a in "xyz"]).T
    occupancy = [float(v) for v in _column(block, "_atom_site_occupancy", n, 1.0)]
    u_iso = _column(block, "_atom_site_u_iso_or_equiv", n, None)
    b_iso = _column(block, "_atom_site_b_iso_or_equiv", n, None)
    u_tensors = _u_tensors(block, cell, where)
    numbers, positions, occ, biso, charges, tensors = [], [], [], [], [], []
    for k, label in enumerate(labels):
        z, charge = _species(types[k], label, where)
        tensor = u_tensors.get(label)
        if tensor is not None:
            u = float(np.trace(tensor)) / 3.0  # U_eq
        elif u_iso[k] is not None:
            u = float(u_iso[k])
        elif b_iso[k] is not None:
            u = float(b_iso[k]) / EIGHT_PI2
        else:
            u = UISO_DEFAULT
        if not (math.isfinite(u) and u >= 0):
            raise ScatterfitError(f"{where}: atom site '{label}' has a negative or invalid displacement ({u} Å²)")
        for site, rotation in _expand(group, frac[k], cell):
            numbers.append(z)
            positions.append(site @ cell)
            occ.append(occupancy[k])
            biso.append(EIGHT_PI2 * u)
            charges.append(charge)
            tensors.append(np.eye(3) * u if tensor is None else rotation @ tensor @ rotation.T)
    return Structure(torch.tensor(np.array(positions), dtype=dtype, device=device), numbers,
                     cell=torch.tensor(cell, dtype=dtype, device=device), pbc=(True, True, True),
                     occupancy=torch.tensor(occ, dtype=dtype, device=device),
                     biso=torch.tensor(biso, dtype=dtype, device=device),
                     charges=torch.tensor(charges, dtype=dtype, device=device),
                     uaniso=torch.tensor(np.array(tensors), dtype=dtype, device=device) if u_tensors else None,
                     space_group=int(group.no), operations=_operations(group))


def _operations(group) -> tuple[np.ndarray, np.ndarray]:
    """The CIF's space-group operations (rotations [K, 3, 3] ints, translations [K, 3] in [0, 1)), as
    Structure.operations declares them."""
    ops = list(group.get_symop())
    rotations = np.array([np.rint(r).astype(int) for r, _ in ops])
    translations = np.array([np.mod(t, 1.0) for _, t in ops], float)
    return rotations, translations


def with_esd(value: float, esd: float | None, decimals: int = 6) -> str:
    """A number in crystallographic notation, e.g. 3.52495 ± 0.00026 → "3.5250(3)" (the esd to one significant
    digit, two when it starts with 1); without an esd, ``decimals`` decimals."""
    if esd is None or not (math.isfinite(esd) and esd > 0):
        return f"{value:.{decimals}f}"
    exponent = math.floor(math.log10(esd))
    places = -exponent + (1 if f"{esd:e}"[0] == "1" else 0)
    places = max(places, 0)
    digits = round(esd * 10**places)
    if digits >= (20 if f"{esd:e}"[0] == "1" else 10):  # rounding carried over a digit
        places, digits = places - 1, round(esd * 10 ** (places - 1))
    return f"{value:.{max(places, 0)}f}({digits})"


def _symop_text(rotation: np.ndarray, translation: np.ndarray) -> str:
    """One symmetry operation as CIF writes it, e.g. "-x+1/2,y,z+1/2"."""
    from fractions import Fraction

    parts = []
    for row, t in zip(rotation, translation):
        text = "".join(f"{'+' if r > 0 else '-'}{axis}" for r, axis in zip(row, "xyz") if r != 0)
        shift = Fraction(float(t) % 1.0).limit_denominator(12)
        if shift not in (0, 1):
            text += f"+{shift.numerator}/{shift.denominator}"
        parts.append(text.lstrip("+"))
    return ",".join(parts)


def write_cif(structure: Structure, path: str | Path, *, title: str = "scatterfit", esd: dict | None = None,
              symprec: float = 1e-3) -> None:
    """A CIF of a periodic structure: the cell, the space group it has within ``symprec`` Å (found by spglib, its
    operations written out in this cell's setting, so any reader expands the sites as they are), and per site
    of its asymmetric unit the label, type symbol, fractional coordinates, occupancy and U_iso_or_equiv (Å²); a
    site shared by several species is one row per species, and anisotropic tensors as the U^ij table. A structure
    without symmetry is written in P1.
    ``esd`` ({"a": .., "alpha": .., "Uiso_Ni": .., "Uiso[Ba/La#0]": ..}, from optim.uncertainty) writes standard
    uncertainties in parentheses."""
    esd = esd or {}
    from ase.data import chemical_symbols
    from ase.geometry import cell_to_cellpar

    from scatterfit.structure.spacegroup import _orbits, _site_symmetry, site_orbits

    if structure.cell is None or not structure.periodic:
        raise ScatterfitError("a CIF needs a periodic structure with a cell (write xyz for a finite one)")
    cell = structure.cell.detach().cpu().numpy().astype(float)
    frac = structure.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    a, b, c, alpha, beta, gamma = cell_to_cellpar(cell)
    name = re.sub(r"[^A-Za-z0-9_]", "_", title) or "scatterfit"
    par = {"a": a, "b": b, "c": c, "alpha": alpha, "beta": beta, "gamma": gamma}
    dataset = _site_symmetry(structure, symprec)[0]
    if dataset is None or int(dataset.number) == 1:
        number, symbol, ops, atoms = 1, "P 1", ["x,y,z"], range(len(structure))
    else:
        number, symbol = int(dataset.number), str(dataset.international)
        ops = list(dict.fromkeys(_symop_text(r, t) for r, t in zip(dataset.rotations, dataset.translations)))
        site_of, orbit_of = _orbits(structure, symprec)
        first_site = {}
        for i, o in enumerate(orbit_of.tolist()):
            first_site.setdefault(o, int(site_of[i]))
        keep = set(first_site.values())
        atoms = [i for i in range(len(structure)) if int(site_of[i]) in keep]
    orbit_index, orbit_labels = site_orbits(structure, symprec) if number > 1 else (None, None)
    lines = [f"data_{name}", f"_symmetry_space_group_name_H-M   '{symbol}'", f"_space_group_IT_number           "
             f"{number}", "loop_", "_symmetry_equiv_pos_as_xyz", *(f"  '{op}'" for op in ops),
             *(f"_cell_{'length' if k in 'abc' else 'angle'}_{k:<6}{with_esd(v, esd.get(k))}" for k, v in par.items()),
             "", "loop_", "_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x",
             "_atom_site_fract_y", "_atom_site_fract_z", "_atom_site_occupancy", "_atom_site_U_iso_or_equiv"]
    uiso = structure.uiso.detach().cpu().numpy()
    occ = structure.occupancy.detach().cpu().numpy()
    charges = structure.charges.detach().cpu().numpy()
    counts: dict = {}
    aniso = ["", "loop_", "_atom_site_aniso_label", *(f"_atom_site_aniso_U_{ij}" for ij in ANISO_ORDER)]
    for k in atoms:
        symbol = chemical_symbols[int(structure.numbers[k])]
        counts[symbol] = counts.get(symbol, 0) + 1
        q = float(charges[k])
        sign = "+" if q > 0 else "-"
        type_symbol = symbol if q == 0 else f"{symbol}{sign}" if abs(q) == 1 else f"{symbol}{abs(q):g}{sign}"
        u_esd = esd.get(f"Uiso[{orbit_labels[orbit_index[k]]}]") if orbit_labels else None
        u_text = with_esd(float(uiso[k]), u_esd if u_esd is not None else esd.get(f"Uiso_{symbol}"), decimals=8)
        x, y, z = (float(v) % 1.0 for v in frac[k])
        lines.append(f"{symbol}{counts[symbol]} {type_symbol} {x:.8f} {y:.8f} {z:.8f} {occ[k]:.6f} {u_text}")
        if structure.uaniso is not None:
            u = cartesian_to_cif_u(structure.uaniso[k].detach().cpu().numpy().astype(float), cell)
            label = orbit_labels[orbit_index[k]] if orbit_labels else None
            aniso.append(f"{symbol}{counts[symbol]} " + " ".join(
                with_esd(float(u[int(ij[0]) - 1, int(ij[1]) - 1]), esd.get(f"U{ij}[{label}]"), decimals=8)
                for ij in ANISO_ORDER))
    if structure.uaniso is not None:
        lines += aniso
    Path(path).write_text("\n".join(lines) + "\n")


ANISO_ORDER = ("11", "22", "33", "12", "13", "23")

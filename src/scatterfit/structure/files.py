"""Structure files in: CIF through structure/cif.py (every species of a shared site, displacement parameters,
charges), every other format ASE reads (XYZ, extxyz, POSCAR, PDB, ...) through ASE. Out: CIF for periodic
structures (structure/cif.py), any ASE format otherwise."""

from __future__ import annotations

from pathlib import Path

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.cif import read_cif
from scatterfit.structure.structure import Structure


def read_atoms(path: str | Path, *, index: int = -1):
    """ase.Atoms from any file ASE reads, with one clear line for a missing or unreadable file."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"{path}: structure file not found")
    try:
        return ase.io.read(str(path), index=index)
    except Exception as exc:  # ASE raises many types; the user needs one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScatterfitError(f"{path}: ASE cannot read this structure file ({msg})") from None


def read_structure_and_adps(path: str | Path, *, index: int = -1, dtype: torch.dtype = torch.float64,
                            device=None) -> tuple[Structure, bool]:
    """The structure of a file, and whether the file gave displacement parameters (atoms without get Uiso
    0.005 Å²)."""
    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"{path}: structure file not found")
    if path.suffix.lower() in (".cif", ".mcif"):
        text = path.read_text(errors="replace").lower()
        given = any(tag in text for tag in ("_atom_site_u_iso", "_atom_site_b_iso", "_atom_site_aniso_"))
        return read_cif(path, dtype=dtype, device=device), given
    atoms = read_atoms(path, index=index)
    return Structure.from_ase(atoms, dtype=dtype, device=device), "biso" in atoms.arrays or "uiso" in atoms.arrays


def read_structure(path: str | Path, *, index: int = -1, dtype: torch.dtype = torch.float64,
                   device=None) -> Structure:
    """Read any structure file: CIF with its occupancies, shared sites and displacement parameters, every other
    format through ASE (for a trajectory, frame ``index``)."""
    return read_structure_and_adps(path, index=index, dtype=dtype, device=device)[0]


def structure_suffix(structure) -> str:
    """The file type a structure is written as: ".cif" for a periodic one, ".extxyz" (positions, occupancy and
    Biso per atom) for a finite one."""
    return ".cif" if structure.cell is not None and structure.periodic else ".extxyz"


def write_structure(structure, path: str | Path) -> None:
    """Write ``structure`` to ``path``: a CIF for a ".cif" suffix (structure/cif.write_cif), else what ASE writes
    for the suffix (extxyz keeps occupancy and Biso)."""
    if Path(path).suffix == ".cif":
        from scatterfit.structure.cif import write_cif

        write_cif(structure, path)
        return
    structure.to_ase().write(str(path), format="extxyz" if Path(path).suffix == ".extxyz" else None)

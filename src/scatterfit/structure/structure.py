"""The Structure type: positions, species, cell, occupancies and isotropic ADPs as torch tensors.

Units: positions and cell in Å, Biso in Å² (Biso = 8π² Uiso), occupancy dimensionless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from scatterfit.errors import ScatterfitError

UISO_DEFAULT = 0.005
"""Default isotropic displacement Uiso in Å² given to atoms whose file carries none."""

EIGHT_PI2 = 8.0 * math.pi**2


@dataclass(frozen=True)
class Structure:
    """An atomic structure, finite (molecule, nanoparticle) or periodic (crystal, amorphous box).

    Attributes:
        positions: [N, 3] cartesian coordinates, Å.
        numbers: [N] atomic numbers (int64).
        cell: [3, 3] lattice vectors as rows, Å, or None for a finite system.
        pbc: periodicity along each cell vector.
        occupancy: [N] site occupancy (0..1).
        biso: [N] isotropic displacement parameter Biso = 8π² Uiso, Å².
        charges: [N] formal charges used to pick ionic X-ray form factors (0 = neutral atom).
        uaniso: [N, 3, 3] anisotropic displacement tensors U in cartesian axes, Å², or None (isotropic: biso
            alone). When given, the forward models that resolve directions (the PDF, Bragg peaks) use it and
            ``biso`` holds the isotropic equivalent 8π² tr(U)/3.
        symmetry: a structure.symmetry.SymmetryMap when the atoms lie on orbits of a point group (symmetric
            random starts), else None; it lets a refinement move whole orbits ("orbits" parameter group).
        space_group: the International Tables number of the space group a file declared (a CIF), or None; the
            cell parameters a "lattice" refinement frees follow its crystal system.
        operations: the declared space group's operations in this cell's fractional coordinates, (rotations
            [K, 3, 3] ints, translations [K, 3]), or None (then spglib finds the symmetry). Declared by a CIF's
            symmetry operations or a chosen subgroup (structure.subgroup); used while they still map the atoms
            onto themselves, so a structure may be refined in a lower group than its atoms have.
        particles: how many separate particles a finite structure holds (an ensemble side by side, far apart):
            a particle's density for the PDF baseline is that of len/particles atoms.
        cache: derived data of this (immutable) structure, such as its neighbour lists; every copy starts empty.
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor | None = None
    pbc: tuple[bool, bool, bool] = (False, False, False)
    occupancy: torch.Tensor | None = None
    biso: torch.Tensor | None = None
    charges: torch.Tensor | None = None
    uaniso: torch.Tensor | None = None
    symmetry: object | None = field(default=None, compare=False)
    space_group: int | None = field(default=None, compare=False)
    operations: tuple | None = field(default=None, compare=False, repr=False)
    particles: int = field(default=1, compare=False)
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pos = self.positions
        if not isinstance(pos, torch.Tensor):
            pos = torch.as_tensor(np.asarray(pos, dtype=float), dtype=torch.float64)
            object.__setattr__(self, "positions", pos)
        if pos.ndim != 2 or pos.shape[-1] != 3:
            raise ScatterfitError(f"positions must have shape [N, 3], got {tuple(pos.shape)}")
        n = pos.shape[0]
        if n == 0:
            raise ScatterfitError("the structure is empty (0 atoms)")
        if not torch.isfinite(pos.detach()).all():
            raise ScatterfitError("the structure has NaN or infinite atomic positions")
        numbers = torch.as_tensor(self.numbers, dtype=torch.int64, device=pos.device)
        if numbers.shape != (n,):
            raise ScatterfitError(f"numbers must have shape [{n}], got {tuple(numbers.shape)}")
        if (numbers < 1).any() or (numbers > 98).any():
            bad = int(numbers[(numbers < 1) | (numbers > 98)][0])
            raise ScatterfitError(f"unknown element with atomic number {bad} (supported: 1-98)")
        object.__setattr__(self, "numbers", numbers)
        if self.symmetry is not None and len(self.symmetry.orbit) != n:
            raise ScatterfitError(f"the symmetry map covers {len(self.symmetry.orbit)} atoms, the structure has {n}")
        pbc = tuple(bool(p) for p in (self.pbc if not isinstance(self.pbc, bool) else (self.pbc,) * 3))
        object.__setattr__(self, "pbc", pbc)
        if self.cell is not None:
            cell = self.cell if isinstance(self.cell, torch.Tensor) else torch.as_tensor(
                np.asarray(self.cell, dtype=float), dtype=pos.dtype, device=pos.device)
            if cell.shape != (3, 3):
                raise ScatterfitError(f"cell must have shape [3, 3], got {tuple(cell.shape)}")
            if not torch.isfinite(cell.detach()).all():
                raise ScatterfitError("the cell has NaN or infinite entries")
            object.__setattr__(self, "cell", cell)
            if any(pbc) and abs(float(torch.linalg.det(cell.detach()))) < 1e-6:
                raise ScatterfitError("the structure is periodic but its cell has zero volume")
        elif any(pbc):
            raise ScatterfitError("the structure is periodic (pbc) but has no cell")
        for name, default in (("occupancy", 1.0), ("biso", EIGHT_PI2 * UISO_DEFAULT), ("charges", 0.0)):
            value = getattr(self, name)
            if value is None:
                value = torch.full((n,), default, dtype=pos.dtype, device=pos.device)
            elif not isinstance(value, torch.Tensor):
                value = torch.as_tensor(np.asarray(value, dtype=float), dtype=pos.dtype, device=pos.device)
            if value.dtype != pos.dtype:
                value = value.to(pos.dtype)
            if value.ndim == 0:
                value = value.expand(n)
            if value.shape != (n,):
                raise ScatterfitError(f"{name} must have shape [{n}], got {tuple(value.shape)}")
            if not torch.isfinite(value.detach()).all():
                raise ScatterfitError(f"{name} has NaN or infinite values")
            object.__setattr__(self, name, value)
        if self.uaniso is not None:
            u = self.uaniso if isinstance(self.uaniso, torch.Tensor) else torch.as_tensor(
                np.asarray(self.uaniso, dtype=float), dtype=pos.dtype, device=pos.device)
            if u.shape != (n, 3, 3):
                raise ScatterfitError(f"uaniso must have shape [{n}, 3, 3], got {tuple(u.shape)}")
            if not torch.isfinite(u.detach()).all():
                raise ScatterfitError("uaniso has NaN or infinite values")
            object.__setattr__(self, "uaniso", u.to(pos.dtype))

    # ----------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def periodic(self) -> bool:
        """True when the structure is periodic in all three directions."""
        return all(self.pbc)

    @property
    def dtype(self) -> torch.dtype:
        return self.positions.dtype

    @property
    def device(self) -> torch.device:
        return self.positions.device

    @property
    def uiso(self) -> torch.Tensor:
        """[N] isotropic displacement Uiso = Biso / 8π², Å²."""
        return self.biso / EIGHT_PI2

    @property
    def volume(self) -> torch.Tensor:
        """Cell volume, Å³ (requires a cell)."""
        if self.cell is None:
            raise ScatterfitError("the structure has no cell, so it has no volume")
        return torch.abs(torch.linalg.det(self.cell))

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers.tolist()]

    def number_density(self) -> torch.Tensor:
        """Occupancy-weighted number density ρ0 = Σ occ / V, atoms/Å³ (periodic structures)."""
        return self.occupancy.sum() / self.volume

    def to(self, device=None, dtype=None) -> "Structure":
        """A copy on another device and/or floating dtype."""

        def conv(t):
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

        return Structure(conv(self.positions), self.numbers.to(device), conv(self.cell), self.pbc,
                         conv(self.occupancy), conv(self.biso), conv(self.charges), conv(self.uaniso), self.symmetry,
                         self.space_group, self.operations, self.particles)

    def select(self, index) -> "Structure":
        """The atoms picked by ``index`` (bool mask or integer indices), with all their per-atom attributes."""
        return self.with_(positions=self.positions[index], numbers=self.numbers[index],
                          occupancy=self.occupancy[index], biso=self.biso[index], charges=self.charges[index],
                          uaniso=None if self.uaniso is None else self.uaniso[index], symmetry=None, space_group=None,
                          operations=None, particles=1)

    def with_uiso(self, uiso: float) -> "Structure":
        """Every atom given the isotropic displacement ``uiso`` (Å²)."""
        return self.with_(biso=torch.full((len(self),), EIGHT_PI2 * float(uiso), dtype=self.dtype,
                                          device=self.device), uaniso=None)

    def with_(self, **changes) -> "Structure":
        """A copy with some fields replaced (validation runs again)."""
        return replace(self, **changes)

    # ----------------------------------------------------------------- conversion
    @classmethod
    def from_ase(cls, atoms, *, dtype: torch.dtype = torch.float64, device=None) -> "Structure":
        """Build from ase.Atoms. Reads occupancy from atoms.info['occupancy'] (as written by ASE's CIF reader)
        and Biso/Uiso from arrays 'biso' / 'uiso' when present."""
        if len(atoms) == 0:
            raise ScatterfitError("the structure is empty (0 atoms)")
        pbc = tuple(bool(p) for p in atoms.pbc)
        cell = None
        if any(pbc) or atoms.cell.rank == 3:
            cell = torch.as_tensor(np.array(atoms.cell[:]), dtype=dtype, device=device)
            if atoms.cell.rank < 3:
                cell = None
        n = len(atoms)
        occ = np.ones(n)
        info_occ = atoms.info.get("occupancy")
        if isinstance(info_occ, dict):
            tags = atoms.get_tags()
            for k in range(n):
                entry = info_occ.get(str(tags[k])) or info_occ.get(tags[k])
                if isinstance(entry, dict) and atoms[k].symbol in entry:
                    occ[k] = float(entry[atoms[k].symbol])
        if "occupancy" in atoms.arrays:
            occ = np.asarray(atoms.arrays["occupancy"], dtype=float)
        if "biso" in atoms.arrays:
            biso = np.asarray(atoms.arrays["biso"], dtype=float)
        elif "uiso" in atoms.arrays:
            biso = EIGHT_PI2 * np.asarray(atoms.arrays["uiso"], dtype=float)
        else:
            biso = np.full(n, EIGHT_PI2 * UISO_DEFAULT)
        charges = atoms.get_initial_charges() if "initial_charges" in atoms.arrays else np.zeros(n)
        return cls(
            positions=torch.as_tensor(atoms.get_positions(), dtype=dtype, device=device),
            numbers=torch.as_tensor(atoms.numbers, dtype=torch.int64, device=device),
            cell=cell,
            pbc=pbc if cell is not None else (False, False, False),
            occupancy=torch.as_tensor(occ, dtype=dtype, device=device),
            biso=torch.as_tensor(biso, dtype=dtype, device=device),
            charges=torch.as_tensor(charges, dtype=dtype, device=device),
        )

    def to_ase(self):
        """Convert to ase.Atoms (occupancy and Biso in atoms.arrays)."""
        from ase import Atoms

        atoms = Atoms(
            numbers=self.numbers.cpu().numpy(),
            positions=self.positions.detach().cpu().numpy(),
            cell=None if self.cell is None else self.cell.detach().cpu().numpy(),
            pbc=self.pbc,
        )
        atoms.set_array("occupancy", self.occupancy.detach().cpu().numpy().astype(float))
        atoms.set_array("biso", self.biso.detach().cpu().numpy().astype(float))
        if bool((self.charges != 0).any()):
            atoms.set_initial_charges(self.charges.detach().cpu().numpy())
        return atoms

    def write(self, path: str | Path, **kwargs) -> None:
        """Write through ASE (format from the file extension)."""
        import ase.io

        ase.io.write(str(path), self.to_ase(), **kwargs)

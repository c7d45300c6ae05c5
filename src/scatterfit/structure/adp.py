"""Anisotropic displacement parameters a space group allows: per site orbit the components of U its site symmetry
leaves free (U = R U Rᵀ for every operation R that keeps the site), every atom of the orbit getting the
representative's tensor turned by the operation that maps the representative onto it.

The free components are chosen among the cartesian U11, U22, U33, U12, U13, U23 of the representative in that
order (the first ones that are independent), so for the common axes they are the familiar ones: one (U11 = U22 =
U33) on a cubic site, U11 and U33 on a tetragonal axis, U11, U22, U33 on an orthorhombic one, four in a mirror
plane, six in a general position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scatterfit.structure.structure import Structure

COMPONENTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
NAMES = ("U11", "U22", "U33", "U12", "U13", "U23")


@dataclass(frozen=True)
class AnisotropicBasis:
    """U of every atom from the free components p [K]: U_n = Σ_k tensors[n, :, :, k] p_k (cartesian, Å²).

    Attributes:
        tensors: [N, 3, 3, K].
        names: [K] e.g. "U11[O#2]" (the cartesian component of the orbit's representative).
        start: [K] the components of the structure's tensors (its U, else Uiso·1), symmetrised.
        diagonal: [K] True for a diagonal component (bounded above 0), False for an off-diagonal one.
        representative: [n_orbits] the atom whose tensor each orbit's components are.
        labels: [n_orbits] the orbits' labels ("La/Ca#0"), as structure/spacegroup.site_orbits gives them.
    """

    tensors: np.ndarray
    names: tuple
    start: np.ndarray
    diagonal: np.ndarray
    representative: tuple
    labels: tuple


def _independent(columns: np.ndarray) -> list[int]:
    """The first rows of ``columns`` [6, d] that are linearly independent (d of them)."""
    chosen: list[int] = []
    for k in range(columns.shape[0]):
        trial = columns[chosen + [k]]
        if np.linalg.matrix_rank(trial, tol=1e-8) == len(chosen) + 1:
            chosen.append(k)
        if len(chosen) == columns.shape[1]:
            break
    return chosen


def anisotropic_basis(structure: Structure, symprec: float = 1e-3) -> AnisotropicBasis:
    """The ADP parametrisation of a periodic structure under its space group (module docstring); a structure
    without symmetry gets six free components per atom site."""
    from scatterfit.structure.spacegroup import _orbits, _site_symmetry, site_orbits

    cell = structure.cell.detach().cpu().numpy().astype(float)
    to_cart, from_cart = cell.T, np.linalg.inv(cell.T)
    data, frac, site_of = _site_symmetry(structure, symprec)
    if data is None:
        rotations, translations = np.eye(3)[None], np.zeros((1, 3))
    else:
        rotations, translations = np.asarray(data.rotations, float), np.asarray(data.translations, float)
    cartesian = [to_cart @ r @ from_cart for r in rotations]
    _, orbit_of = _orbits(structure, symprec)
    _, labels = site_orbits(structure, symprec)
    n = len(structure)
    u0 = (structure.uaniso.detach().cpu().numpy() if structure.uaniso is not None
          else structure.uiso.detach().cpu().numpy()[:, None, None] * np.eye(3))

    def maps(r, t, a, b):
        d = r @ frac[a] + t - frac[b]
        return np.abs(d - np.round(d)).max() < 10 * symprec

    blocks, names, start, diagonal, representatives = [], [], [], [], []
    for o in range(int(orbit_of.max()) + 1):
        atoms = np.flatnonzero(orbit_of == o)
        rep = int(atoms[0])
        rep_site = int(site_of[rep])
        stabiliser = [c for c, r, t in zip(cartesian, rotations, translations) if maps(r, t, rep_site, rep_site)]
        projector = np.mean([np.kron(c, c) for c in stabiliser], axis=0)  # on vec(U), 9 × 9
        symmetric = 0.5 * (np.eye(9) + np.eye(9)[[3 * (k % 3) + k // 3 for k in range(9)]])
        u, s, _ = np.linalg.svd(projector @ symmetric)
        basis = u[:, s > 0.5]  # [9, d] orthonormal basis of the allowed tensors
        rows = np.array([basis[3 * i + j] for i, j in COMPONENTS])  # [6, d]
        chosen = _independent(rows)
        per_component = basis @ np.linalg.inv(rows[chosen])  # [9, d]: vec(U) from the chosen components
        block = np.zeros((n, 3, 3, len(chosen)))
        for i in atoms:
            for c, r, t in zip(cartesian, rotations, translations):
                if maps(r, t, rep_site, int(site_of[i])):
                    for k in range(len(chosen)):
                        block[i, :, :, k] = c @ per_component[:, k].reshape(3, 3) @ c.T
                    break
        symmetrised = (projector @ symmetric @ u0[rep].reshape(9)).reshape(3, 3)
        blocks.append(block)
        names += [f"{NAMES[k]}[{labels[o]}]" for k in chosen]
        start += [symmetrised[COMPONENTS[k]] for k in chosen]
        diagonal += [k < 3 for k in chosen]
        representatives.append(rep)
    return AnisotropicBasis(np.concatenate(blocks, axis=3), tuple(names), np.array(start), np.array(diagonal),
                            tuple(representatives), tuple(labels))

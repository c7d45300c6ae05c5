"""Close-packed stackings with faults: crystals built of identical layers on the three lateral positions A, B, C
of a hexagonal net (hcp and fcc metals along [0001] / [111], wurtzite and zinc blende, ...), restacked in any
sequence and cut into particles.

A crystal given in its hexagonal setting (a = b, γ = 120°, two layers per cell: hcp, wurtzite) or in a cubic
F setting (converted to the hexagonal one, three layers per cell: fcc, zinc blende) is split into layers: atoms
in order of height, a new layer starting where the lateral position changes. Every layer must hold the same
motif (species and heights above the layer's first atom). A stacking is a sequence of lateral positions; in the
Jagodzinski notation each layer is "h" (the layer below its neighbour has its position: ...ABA...) or "c"
(...ABC...). The parent stacking is all h (two-layer cell) or all c (three-layer cell); a fault flips a layer's
character. ``stacking_sequence`` draws the faults with probability p per layer from common random numbers (one
uniform number per layer, faulted where it is below p), so the faults of a larger p include those of a smaller one
and a search over p sees a smooth landscape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure

LATERAL = np.array([[0.0, 0.0], [1 / 3, 2 / 3], [2 / 3, 1 / 3]])  # A, B, C in fractions of the hexagonal a, b
MAX_ATOMS = 200_000


@dataclass(frozen=True)
class Layers:
    """A crystal as a stacking of identical layers.

    Attributes:
        a: the hexagonal net's lattice constant, Å.
        spacing: height of one layer, Å.
        parent: "h" (two layers per cell) or "c" (three).
        motif: per atom of a layer: numbers [M], heights above the layer's first atom [M] (Å), occupancy,
            biso (Å²) and charges [M].
    """

    a: float
    spacing: float
    parent: str
    numbers: np.ndarray
    heights: np.ndarray
    occupancy: np.ndarray
    biso: np.ndarray
    charges: np.ndarray


def _hexagonal_setting(crystal: Structure) -> tuple[np.ndarray, np.ndarray, list]:
    """(cell [3, 3] rows a, b, c of the hexagonal setting, fractional coordinates [N', 3], atom of each [N'])."""
    cell = crystal.cell.detach().cpu().numpy().astype(float)
    frac = crystal.positions.detach().cpu().numpy() @ np.linalg.inv(cell)
    lengths = np.linalg.norm(cell, axis=1)
    cosines = [cell[1] @ cell[2] / (lengths[1] * lengths[2]), cell[0] @ cell[2] / (lengths[0] * lengths[2]),
               cell[0] @ cell[1] / (lengths[0] * lengths[1])]
    if abs(lengths[0] - lengths[1]) < 1e-4 * lengths[0] and abs(cosines[2] + 0.5) < 1e-4 and abs(cosines[0]) < 1e-4 \
            and abs(cosines[1]) < 1e-4:
        return cell, frac % 1.0, list(range(len(crystal)))
    cubic = np.allclose(lengths, lengths[0], rtol=1e-4) and np.allclose(cosines, 0.0, atol=1e-4)
    if not cubic:
        raise ScatterfitError("a stacking needs a hexagonal cell (a = b, γ = 120°) or a cubic F one (fcc, zinc "
                              "blende)")
    a = lengths[0]
    new = np.array([[0.5, -0.5, 0.0], [0.0, 0.5, -0.5], [1.0, 1.0, 1.0]]) @ (cell / a) * a  # [111] as c
    # the atoms of a 3 × 3 × 3 block that fall into the new cell, once each
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cart = ((frac[None, :, :] + shifts[:, None, :]) @ cell).reshape(-1, 3)
    atom = np.tile(np.arange(len(crystal)), len(shifts))
    f = cart @ np.linalg.inv(new)
    inside = np.all((f > -1e-6) & (f < 1 - 1e-6), axis=1)
    f, atom = f[inside] % 1.0, atom[inside]
    keep, seen = [], []
    for k, x in enumerate(f):
        if not any(np.abs((x - y + 0.5) % 1.0 - 0.5).max() < 1e-5 for y in seen):
            seen.append(x)
            keep.append(k)
    if 4 * len(keep) != 3 * len(crystal):
        raise ScatterfitError("this cubic crystal is not F-centred: its [111] layers are not close-packed")
    return new, f[keep], [int(atom[k]) for k in keep]


def layers_of(crystal: Structure, tol: float = 1e-3) -> Layers:
    """The layers of a close-packed-derived crystal (module docstring).

    Raises:
        ScatterfitError: for a crystal that is not a stacking of identical close-packed layers.
    """
    if crystal.cell is None or not crystal.periodic:
        raise ScatterfitError("a stacking needs a periodic crystal")
    cell, frac, atom = _hexagonal_setting(crystal)
    c = float(np.linalg.norm(cell[2]))
    origin = frac[np.argmin(frac[:, 2]), :2]
    lateral = (frac[:, :2] - origin) % 1.0
    distance = np.abs((lateral[:, None, :] - LATERAL[None] + 0.5) % 1.0 - 0.5).max(-1)  # [N, 3]
    position = distance.argmin(1)
    if distance.min(1).max() > tol:
        raise ScatterfitError("the atoms of this crystal do not sit on the A, B, C positions of a hexagonal net")
    z = (frac[:, 2] - frac[:, 2].min()) % 1.0
    order = np.argsort(z, kind="stable")
    layers: list[list[int]] = []
    for i in order:
        if not layers or position[i] != position[layers[-1][0]]:
            layers.append([])
        layers[-1].append(int(i))
    if len(layers) > 1 and position[layers[-1][0]] == position[layers[0][0]]:
        layers[0] = layers.pop() + layers[0]  # a layer cut by the cell's boundary: its top part is at the bottom
    if len(layers) not in (2, 3):
        raise ScatterfitError(f"this crystal has {len(layers)} layers per cell (a stacking needs 2, hcp-like, or 3, "
                              "fcc-like)")
    layers.sort(key=lambda ls: z[ls[0]])
    base = [z[ls[0]] for ls in layers]
    spacing = np.diff(base + [base[0] + 1.0])
    if not np.allclose(spacing, 1.0 / len(layers), atol=tol):
        raise ScatterfitError("the layers of this crystal are not evenly spaced")
    numbers = crystal.numbers.cpu().numpy()

    def motif(ls):
        heights = ((z[ls] - z[ls[0]]) % 1.0) * c
        return [(int(numbers[atom[i]]), round(float(h), 4)) for i, h in zip(ls, heights)]

    first = motif(layers[0])
    if any(sorted(motif(ls)) != sorted(first) for ls in layers[1:]):
        raise ScatterfitError("the layers of this crystal are not identical (a stacking needs one repeated layer)")
    ls = layers[0]
    pick = np.array([atom[i] for i in ls])
    return Layers(a=float(np.linalg.norm(cell[0])), spacing=c / len(layers), parent="h" if len(layers) == 2 else "c",
                  numbers=numbers[pick], heights=((z[ls] - z[ls[0]]) % 1.0) * c,
                  occupancy=crystal.occupancy.detach().cpu().numpy()[pick],
                  biso=crystal.biso.detach().cpu().numpy()[pick], charges=crystal.charges.detach().cpu().numpy()[pick])


def stacking_sequence(n_layers: int, parent: str, fault_probability: float = 0.0, seed: int = 0) -> str:
    """Lateral positions ("ABAC...") of ``n_layers`` layers: the parent stacking ("h": ABAB, "c": ABCABC) with each
    layer's character flipped with probability ``fault_probability``, from common random numbers of ``seed``."""
    if parent not in ("h", "c"):
        raise ScatterfitError(f"unknown parent stacking '{parent}' (use h or c)")
    if not 0.0 <= fault_probability <= 1.0:
        raise ScatterfitError(f"the fault probability must be in [0, 1], got {fault_probability}")
    u = np.random.default_rng(seed).random(n_layers)
    positions = [0, 1]
    for k in range(2, n_layers):
        character = parent if u[k] >= fault_probability else ("c" if parent == "h" else "h")
        positions.append(positions[k - 2] if character == "h" else 3 - positions[k - 1] - positions[k - 2])
    return "".join("ABC"[p] for p in positions[:n_layers])


def stacked_particle(layers: Layers, sequence: str, diameter: float, *, aspect: float = 1.0, scale: float = 1.0,
                     dtype=torch.float64) -> Structure:
    """A particle of the layers stacked in ``sequence`` (letters A, B, C; long enough for the particle's height),
    cut as an ellipsoid of ``diameter`` Å across the layers and ``aspect`` × diameter along the stacking
    direction, about the first atom of the middle layer; ``scale`` scales every length."""
    if not (np.isfinite(diameter) and diameter > 0 and aspect > 0 and scale > 0):
        raise ScatterfitError("diameter, aspect and scale must be positive")
    if set(sequence) - set("ABC") or any(a == b for a, b in zip(sequence, sequence[1:])):
        raise ScatterfitError(f"a stacking sequence uses A, B, C without a letter twice in a row, got '{sequence}'")
    a, spacing = layers.a * scale, layers.spacing * scale
    radius, half_height = 0.5 * diameter, 0.5 * diameter * aspect
    n_layers = int(np.ceil(2 * half_height / spacing)) + 2
    if len(sequence) < n_layers:
        raise ScatterfitError(f"the particle needs {n_layers} layers; the sequence has {len(sequence)}")
    sequence = sequence[:n_layers]
    reach = int(np.ceil(radius / (a * np.sqrt(3) / 2))) + 2
    if (2 * reach + 1) ** 2 * n_layers * len(layers.numbers) > MAX_ATOMS * 4:
        raise ScatterfitError(f"a {diameter:g} Å particle of these layers would hold more than {MAX_ATOMS} atoms")
    a1, a2 = np.array([a, 0.0]), np.array([-0.5 * a, np.sqrt(3) / 2 * a])
    i, j = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    net = i.reshape(-1, 1) * a1 + j.reshape(-1, 1) * a2  # [S, 2]
    middle = n_layers // 2
    centre_xy = LATERAL["ABC".index(sequence[middle])] @ np.stack([a1, a2])
    parts, kinds = [], []
    for k, letter in enumerate(sequence):
        offset = LATERAL["ABC".index(letter)] @ np.stack([a1, a2]) - centre_xy
        z = (k - middle) * spacing + layers.heights * scale  # [M]
        xy = net[:, None, :] + offset  # [S, 1, 2]
        block = np.concatenate([np.broadcast_to(xy, (len(net), len(z), 2)),
                                np.broadcast_to(z[None, :, None], (len(net), len(z), 1))], axis=2).reshape(-1, 3)
        parts.append(block)
        kinds.append(np.tile(np.arange(len(z)), len(net)))
    xyz, kind = np.concatenate(parts), np.concatenate(kinds)
    keep = (xyz[:, 0] ** 2 + xyz[:, 1] ** 2) / radius**2 + xyz[:, 2] ** 2 / half_height**2 <= 1 + 1e-9
    if not keep.any():
        raise ScatterfitError(f"a {diameter:g} Å particle holds no atom of these layers")
    kind = kind[keep]
    return Structure(torch.as_tensor(xyz[keep], dtype=dtype), torch.as_tensor(layers.numbers[kind]),
                     occupancy=torch.as_tensor(layers.occupancy[kind], dtype=dtype),
                     biso=torch.as_tensor(layers.biso[kind], dtype=dtype),
                     charges=torch.as_tensor(layers.charges[kind], dtype=dtype))

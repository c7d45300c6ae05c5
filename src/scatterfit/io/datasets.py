"""Measured patterns: the Dataset type and readers for the files users bring.

Formats: PDFgetX3/xPDFsuite .gr (ini header), PDFgetX2/PDFgetN .gr (key=value header, 2 or 4 columns r G dr dG),
RMCProfile .gr/.fq (count line + title line), .iq/.sq/.fq (Q, value[, σ]), .xy/.xye/.chi/.dat/.csv
(2θ or Q, intensity[, σ]), Gudrun .mint01 (Q, F, σ; trailing zero rows dropped). Every problem is reported as a
ScatterfitError naming the file and line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scatterfit.errors import ScatterfitError

KINDS = ("iq", "sq", "fq", "gr", "xrd", "saxs")
_EXT_KIND = {".gr": "gr", ".iq": "iq", ".sq": "sq", ".fq": "fq", ".mint01": "fq", ".xy": "xrd", ".xye": "xrd",
             ".chi": "xrd", ".dat": "iq", ".csv": "iq"}


@dataclass(frozen=True)
class Dataset:
    """One measured pattern.

    Attributes:
        x: [n] r (Å) for kind "gr"; Q (Å⁻¹) or 2θ (degrees) otherwise (see ``x_unit``).
        y: [n] the pattern (G in Å⁻², S dimensionless, F in Å⁻¹, I arbitrary).
        sigma: [n] standard uncertainties, or None.
        kind: one of iq, sq, fq, gr, xrd, saxs.
        x_unit: "angstrom", "inv_angstrom" or "degrees".
        radiation: "xray" or "neutron" (from the header when it says, else "xray").
        metadata: header values (wavelength, qmin, qmax, composition, ...), numbers converted.
        path: where it came from.
    """

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None
    kind: str
    x_unit: str
    radiation: str = "xray"
    metadata: dict = field(default_factory=dict)
    path: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ScatterfitError(f"{self.path or 'dataset'}: unknown kind '{self.kind}' (use {', '.join(KINDS)})")
        if self.radiation not in ("xray", "neutron", "unit"):
            raise ScatterfitError(f"{self.path or 'dataset'}: unknown radiation '{self.radiation}'")

    def __len__(self) -> int:
        return len(self.x)

    def with_(self, **changes) -> "Dataset":
        """A copy with fields overridden (e.g. radiation, kind or metadata the header got wrong)."""
        return replace(self, **changes)

    def select(self, xmin: float | None = None, xmax: float | None = None) -> "Dataset":
        """The points with xmin ≤ x ≤ xmax."""
        lo = -math.inf if xmin is None else xmin
        hi = math.inf if xmax is None else xmax
        m = (self.x >= lo - 1e-9) & (self.x <= hi + 1e-9)
        if not m.any():
            raise ScatterfitError(f"{self.path or 'dataset'}: no points in the range [{xmin}, {xmax}]")
        return replace(self, x=self.x[m], y=self.y[m], sigma=None if self.sigma is None else self.sigma[m])


def _number(text: str):
    try:
        v = float(text)
        return int(v) if v.is_integer() and re.fullmatch(r"[-+]?\d+", text.strip()) else v
    except ValueError:
        return text.strip()


def _parse_numeric(lines: list[tuple[int, str]], path: Path) -> np.ndarray:
    rows, ncol = [], None
    for lineno, text in lines:
        parts = text.replace(",", " ").split()
        if not parts:
            continue
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ScatterfitError(f"{path}:{lineno}: not a number in a data line: '{text.strip()[:60]}'") from None
        if ncol is None:
            ncol = len(vals)
        elif len(vals) != ncol:
            raise ScatterfitError(f"{path}:{lineno}: {len(vals)} columns where earlier lines have {ncol}")
        if not all(math.isfinite(v) for v in vals):
            raise ScatterfitError(f"{path}:{lineno}: NaN or infinite value in the data")
        rows.append(vals)
    if not rows:
        raise ScatterfitError(f"{path}: no data lines found (empty or header only)")
    if ncol < 2:
        raise ScatterfitError(f"{path}: data need at least two columns (x, y), found {ncol}")
    return np.asarray(rows, dtype=float)


def load_dataset(path: str | Path, *, kind: str | None = None, x_unit: str | None = None,
                 radiation: str | None = None, **metadata) -> Dataset:
    """Read a data file; anything the header says can be overridden by the keyword arguments."""
    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"{path}: data file not found")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise ScatterfitError(f"{path}: binary file, not a text data file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    ext = path.suffix.lower()
    meta: dict = {}
    data_lines: list[tuple[int, str]] = []
    start = 0
    # RMCProfile: first line is a point count, second a title
    if len(lines) > 2 and re.fullmatch(r"\s*\d+\s*", lines[0] or "x"):
        meta["title"] = lines[1].strip()
        start = 2
    in_header_block = False
    for k in range(start, len(lines)):
        line = lines[k]
        s = line.strip()
        if not s:
            continue
        if s.startswith("#### start data"):
            in_header_block = False
            continue
        if s.startswith(("#", "!", "%", "[", ";")) or in_header_block:
            body = s.lstrip("#!%; ")
            if s.startswith("[") and s.endswith("]"):
                in_header_block = True
            m = re.match(r"([A-Za-z_][\w\s().-]*?)\s*[=:]\s*(.*)$", body)
            if m:
                meta[m.group(1).strip().lower()] = _number(m.group(2))
            continue
        if re.match(r"^[A-Za-z_][\w\s().-]*=", s):  # PDFgetX2/N style key=value lines
            key, _, value = s.partition("=")
            meta[key.strip().lower()] = _number(value)
            continue
        data_lines.append((k + 1, line))
    if in_header_block and not data_lines:
        raise ScatterfitError(f"{path}: header never ends ('#### start data' missing) and no data found")
    arr = _parse_numeric(data_lines, path)
    if ext == ".mint01":
        nonzero = np.nonzero(np.abs(arr[:, 1:]).sum(1) > 0)[0]
        arr = arr[: nonzero[-1] + 1] if len(nonzero) else arr
    x, y = arr[:, 0], arr[:, 1]
    sigma = None
    if ext == ".gr" and arr.shape[1] >= 4:
        sigma = arr[:, 3]
    elif arr.shape[1] >= 3:
        sigma = arr[:, 2]
    if sigma is not None and (sigma <= 0).any():
        meta["sigma_ignored"] = "some uncertainties are zero or negative; unit weights are used"
        sigma = None
    if len(x) < 2:
        raise ScatterfitError(f"{path}: only {len(x)} data point(s)")
    d = np.diff(x)
    if not ((d > 0).all() or (d < 0).all()):
        bad = int(np.argmax(d <= 0)) + 1 if d[0] > 0 else int(np.argmax(d >= 0)) + 1
        raise ScatterfitError(f"{path}:{data_lines[bad][0]}: x values are not monotonic")
    if (d < 0).all():
        x, y = x[::-1].copy(), y[::-1].copy()
        sigma = None if sigma is None else sigma[::-1].copy()
    kind = kind or _EXT_KIND.get(ext, "iq")
    if x_unit is None:
        if kind == "gr":
            x_unit = "angstrom"
        elif kind == "xrd" and (ext in (".xy", ".xye", ".chi")) and float(x.max()) > 40:
            x_unit = "degrees"
        else:
            x_unit = "inv_angstrom"
    mode = str(meta.get("mode", meta.get("stype", meta.get("radiation", "")))).lower()
    rad = radiation or ("neutron" if mode.startswith("n") else "xray")
    meta.update(metadata)
    return Dataset(x=x, y=y, sigma=sigma, kind=kind, x_unit=x_unit, radiation=rad, metadata=meta, path=str(path))

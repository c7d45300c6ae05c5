"""Measured patterns: the Dataset type and readers for the files users bring.

Formats: PDFgetX3/xPDFsuite .gr (ini header), PDFgetX2/PDFgetN .gr (free-text header of key=value settings up to
"##### start data", 4 columns r G dr dG; Qmax, Qmin, wavelength, radiation and composition taken from the header),
PDFgui fit exports .fgr (r Gcalc dr dGcalc Gdiff),
RMCProfile .gr/.fq (count line + title line), .iq/.sq/.fq (Q, value[, σ]), .xy/.xye/.chi/.dat/.csv
(2θ or Q, intensity[, σ]), Gudrun .mint01 (Q, F, σ; trailing zero rows dropped), Panalytical .xrdml and GSAS
.gsa/.gss/.fxye and pdCIF (.cif) powder files (io/diffractometer.py). Text in UTF-8 (with or
without BOM), UTF-16 or Latin-1; decimal commas are read when the columns are separated by spaces or semicolons.
Every problem is reported as a ScatterfitError naming the file and line.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scatterfit.errors import ScatterfitError

log = logging.getLogger(__name__)

KINDS = ("iq", "sq", "fq", "gr", "xrd", "saxs")
_DIFFRACTOMETER = {".xrdml": "read_xrdml", ".gsa": "read_gsas", ".gss": "read_gsas", ".fxye": "read_gsas",
                   ".cif": "read_pdcif", ".pdcif": "read_pdcif", ".rtv": "read_pdcif"}
_EXT_KIND = {".gr": "gr", ".fgr": "gr", ".iq": "iq", ".sq": "sq", ".fq": "fq", ".mint01": "fq", ".xy": "xrd",
             ".xye": "xrd", ".chi": "xrd", ".dat": "iq", ".csv": "iq"}


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


def _decode(raw: bytes, path: Path) -> str:
    """Text of a data file: UTF-8 (with or without BOM), UTF-16 (with BOM, or the tell-tale zero bytes of ASCII
    text in UTF-16), else Latin-1; a file with other zero bytes is binary."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise ScatterfitError(f"{path}: starts like UTF-16 text but does not decode as UTF-16") from None
    head = raw[:4096]
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
            if len(zeros) > 8 and zeros.count(0) == len(zeros):
                return raw.decode(codec, errors="replace")
        raise ScatterfitError(f"{path}: binary file, not a text data file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_START_DATA = re.compile(r"^#+\s*start data", re.IGNORECASE)
_KEY_VALUE = re.compile(r"(?:(?<=\s)|^)([A-Za-z_][\w.]*)\s*=\s*(\S*)")
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+([eE][-+]?\d+)?$")


def _header_values(text: str, meta: dict) -> None:
    """key=value pairs of a header line (several per line, as PDFgetX2/PDFgetN write them); the first of each
    key wins, keys in lower case."""
    for key, value in _KEY_VALUE.findall(text):
        meta.setdefault(key.lower(), _number(value))


def _composition(header: list[str]) -> dict | None:
    """{element: fraction} from a PDFgetX2 ("#L symbol valence fractions ...") or PDFgetN ("Element relAtomNum
    ...") composition table in the header, or None."""
    from ase.data import atomic_numbers

    for k, line in enumerate(header):
        words = line.lstrip("#L ").split()
        if not words or words[0].lower() not in ("symbol", "element"):
            continue
        column = 2 if words[0].lower() == "symbol" else 1  # fractions / relAtomNum
        out = {}
        for row in header[k + 1:]:
            parts = row.split()
            if len(parts) <= column or parts[0] not in atomic_numbers:
                break
            try:
                out[parts[0]] = float(parts[column])
            except ValueError:
                break
        return out or None
    return None


def _sigma_column(columns: list[str], ncol: int, ext: str) -> int | None:
    """Index of the uncertainty of y: a column named like dG / d_Gr / dG(r) / sigma, else by position (.gr with
    4+ columns: r G dr dG; other files: the third column)."""
    for k, name in enumerate(columns[:ncol]):
        if k >= 2 and re.match(r"^(d_?g|dy|sigma|err|e$)", name.lower()):
            return k
    if ext in (".gr", ".fgr") and ncol >= 4:
        return 3
    if ncol >= 3 and not (ext in (".gr", ".fgr") and columns):
        return 2
    return None


def _split_number_tokens(text: str) -> list[str]:
    parts = re.split(r"[\s;]+", text.strip())
    if len(parts) >= 2 and "." not in text and any(_COMMA_DECIMAL.match(p) for p in parts):
        return [p.replace(",", ".") for p in parts]  # space- or semicolon-separated numbers with decimal commas
    return text.replace(",", " ").split()  # commas separate columns (CSV)


def _parse_numeric(lines: list[tuple[int, str]], path: Path, notes: list) -> np.ndarray:
    rows, ncol, extra_at = [], None, None
    for lineno, text in lines:
        parts = _split_number_tokens(text)
        if not parts:
            continue
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ScatterfitError(f"{path}:{lineno}: not a number in a data line: '{text.strip()[:60]}'") from None
        if ncol is None:
            ncol = len(vals)
        elif len(vals) > ncol:  # e.g. PDFgetX2 pads its tail with zero columns: keep the first ncol, say so
            extra_at = extra_at or lineno
            vals = vals[:ncol]
        elif len(vals) < ncol:
            raise ScatterfitError(f"{path}:{lineno}: {len(vals)} columns where earlier lines have {ncol}")
        if not all(math.isfinite(v) for v in vals):
            raise ScatterfitError(f"{path}:{lineno}: NaN or infinite value in the data")
        rows.append(vals)
    if not rows:
        raise ScatterfitError(f"{path}: no data lines found (empty or header only)")
    if ncol < 2:
        raise ScatterfitError(f"{path}: data need at least two columns (x, y), found {ncol}")
    if extra_at is not None:
        notes.append(f"{path}:{extra_at}: lines from here on have more than {ncol} columns; the extra columns "
                     "are ignored")
    return np.asarray(rows, dtype=float)


_GENERIC = (".xy", ".xye", ".chi", ".dat", ".csv", ".txt")  # columns of x and intensity, x in any unit
_TITLE_UNITS = ((re.compile(r"2[\s_-]*th(eta)?\b|two[\s_-]*theta|2θ|\btth\b|\bdeg(rees?)?\b"), "degrees", 1.0),
                (re.compile(r"\bq\b.*(\bnm\b|nm⁻¹)"), "inv_angstrom", 0.1),
                (re.compile(r"\bq\b.*(å|angstrom|\ba\^?-1|1/a\b|a⁻¹)"), "inv_angstrom", 1.0))
"""Units named in the column titles of a generic two-column file (a CSV's first line "2theta,intensity", Fit2D's
.chi "2-Theta Angle (Degrees)", "Q (1/nm)"): (pattern, x unit, factor to it)."""
MAX_TITLE_LINES = 10  # lines at the top of a file's data that are not data rows and are read as titles
TWO_THETA_START = 2.0  # degrees: a generic scan starting here or above and running past 40 is 2θ, not Q in Å⁻¹


def _is_data_row(text: str) -> bool:
    """Whether a line holds at least two numbers (a data row rather than a title, a label or a point count)."""
    parts = _split_number_tokens(text)
    if len(parts) < 2:
        return False
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return True


def _is_title(lines: list[tuple[int, str]]) -> bool:
    """Whether the first of the (line number, text) ``lines`` is a title above the data: not a data row, and either
    not a number or a single number (a point count) right above a data row."""
    text = lines[0][1]
    if _is_data_row(text):
        return False
    try:
        float(text.strip())
    except ValueError:
        return True
    return len(lines) > 1 and _is_data_row(lines[1][1])


def _title_unit(titles: list[str]) -> tuple[str, float] | None:
    """(x unit, factor to it) from the column titles of a generic file (:data:`_TITLE_UNITS`), or None."""
    for title in titles:
        first = re.split(r"[,;\t]|\s{2,}", title.strip().lstrip("#!%; ").lower())[0]  # the x column's title
        for pattern, unit, factor in _TITLE_UNITS:
            if pattern.search(first):
                return unit, factor
    return None


_UNIT_NAMES = ((re.compile(r"\b2th_deg\b"), "degrees", 1.0), (re.compile(r"\bq_a\^-1\b"), "inv_angstrom", 1.0),
               (re.compile(r"\bq_nm\^-1\b"), "inv_angstrom", 0.1))


def _declared_unit(comments: list[str]) -> tuple[str, float] | None:
    """(x unit, factor to it) when a header names its x column as pyFAI does (2th_deg, q_nm^-1, q_A^-1)."""
    text = "\n".join(comments).lower()
    for pattern, unit, factor in _UNIT_NAMES:
        if pattern.search(text):
            return unit, factor
    return None


def _radiation(meta: dict, header_text: str) -> str:
    mode = str(meta.get("mode", meta.get("stype", meta.get("radiation", "")))).lower()
    if mode.startswith("n"):
        return "neutron"
    if mode.startswith("x"):
        return "xray"
    if "pdfgetn" in header_text.lower() or "##### vanadium" in header_text.lower():
        return "neutron"
    return "xray"


def load_dataset(path: str | Path, *, kind: str | None = None, x_unit: str | None = None,
                 radiation: str | None = None, **metadata) -> Dataset:
    """Read a data file; anything the header says can be overridden by the keyword arguments.

    Problems that do not stop the reading (extra columns, unusable uncertainties) are listed in
    ``metadata["warnings"]`` and logged."""
    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"{path}: data file not found")
    text = _decode(path.read_bytes(), path)
    ext = path.suffix.lower()
    if ext in _DIFFRACTOMETER:
        from scatterfit.io import diffractometer

        x, y, sigma, meta = getattr(diffractometer, _DIFFRACTOMETER[ext])(path, text)
        unit = meta.pop("x_unit", "degrees")
        probe = meta.pop("radiation", "xray")
        powder = {**meta.get("powder", {}), **metadata.get("powder", {})}  # the config's settings win
        meta = {**meta, **metadata, **({"powder": powder} if powder else {})}
        return Dataset(x=x, y=y, sigma=sigma, kind=kind or "xrd", x_unit=x_unit or unit,
                       radiation=radiation or probe, metadata=meta, path=str(path))
    lines = text.splitlines()
    meta: dict = {}
    notes: list[str] = []
    start = 0
    # RMCProfile: first line is a point count, second a title
    if len(lines) > 2 and re.fullmatch(r"\s*\d+\s*", lines[0] or "x"):
        meta["title"] = lines[1].strip()
        start = 2
    marker = next((k for k in range(start, len(lines)) if _START_DATA.match(lines[k].strip())), None)
    header: list[str] = []
    if marker is not None:  # PDFgetX2/PDFgetN/PDFgui/xPDFsuite: everything before the marker is header
        header = lines[start:marker]
        start = marker + 1
    for line in header:
        body = line.strip().lstrip("#!%;[ ").rstrip("]")
        m = re.match(r"([A-Za-z_][\w\s().-]*?)\s*[=:]\s*(.*)$", body)
        if m and body.count("=") <= 1:  # one "key = value" (or "key: value") per line
            meta.setdefault(m.group(1).strip().lower(), _number(m.group(2)))
        _header_values(body, meta)  # several key=value pairs on a line
    columns: list[str] = []
    comments: list[str] = []
    data_lines: list[tuple[int, str]] = []
    in_block = False
    for k in range(start, len(lines)):
        s = lines[k].strip()
        if not s:
            continue
        if s.startswith(("#", "!", "%", "[", ";")) or in_block:
            comments.append(s)
            body = s.lstrip("#!%; ")
            if s.startswith("[") and s.endswith("]"):
                in_block = True
            if re.match(r"^#L\b", s):
                columns = s[2:].split()
            m = re.match(r"([A-Za-z_][\w\s().-]*?)\s*[=:]\s*(.*)$", body)
            if m:
                meta[m.group(1).strip().lower()] = _number(m.group(2))
            continue
        if re.match(r"^[A-Za-z_][\w\s().-]*=", s):  # key=value lines before the data
            _header_values(s, meta)
            continue
        data_lines.append((k + 1, lines[k]))
    if in_block and not data_lines:
        raise ScatterfitError(f"{path}: header never ends ('#### start data' missing) and no data found")
    titles = comments[-1:]  # the last comment line before the data names the columns, if any line does
    skipped = 0
    while data_lines and skipped < MAX_TITLE_LINES and _is_title(data_lines):
        titles.append(data_lines.pop(0)[1])  # a title, a column header ("2theta,intensity"), a point count
        skipped += 1
    if skipped:
        meta.setdefault("titles", [t.strip() for t in titles[-skipped:]])
    header_text = "\n".join(header)
    composition = _composition(header)
    if composition and "composition" not in meta:
        meta["composition"] = composition
    if "lambda" in meta and "wavelength" not in meta:
        meta["wavelength"] = meta["lambda"]
    arr = _parse_numeric(data_lines, path, notes)
    if ext == ".mint01":  # Gudrun's interference differential cross-section Σ c c b b [S(Q) − 1], barns/sr/atom
        nonzero = np.nonzero(np.abs(arr[:, 1:]).sum(1) > 0)[0]
        arr = arr[: nonzero[-1] + 1] if len(nonzero) else arr
        meta.setdefault("form", "interference")
        meta.setdefault("radiation", "neutron")
    x, y = arr[:, 0], arr[:, 1]
    if ext == ".fgr" and arr.shape[1] >= 5:  # PDFgui fit export: r Gcalc dr dGcalc Gdiff
        meta["content"] = "PDFgui calculated G(r); Gdiff = Gobs − Gcalc in metadata['gdiff']"
        meta["gdiff"] = arr[:, 4].copy()
    sig_col = _sigma_column(columns, arr.shape[1], ext)
    sigma = arr[:, sig_col] if sig_col is not None else None
    if sigma is not None and not (sigma > 0).all():
        notes.append(f"{path}: some uncertainties are zero or negative; unit weights are used")
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
    generic = ext in _GENERIC or ext not in _EXT_KIND
    declared = _declared_unit(header + comments) or (_title_unit(titles) if generic else None)
    if kind is None and generic and x_unit is None:
        if declared is not None and declared[0] == "degrees":
            kind = "xrd"  # a 2θ scan, whatever the extension
        elif declared is None and ext not in (".xy", ".xye", ".chi") and float(x.min()) >= TWO_THETA_START \
                and float(x.max()) > 40:
            kind, x_unit = "xrd", "degrees"
            notes.append(f"{path}: x runs from {x.min():g} to {x.max():g} with no unit named: read as 2θ in degrees "
                         "(an intensity in Q would start below 2 Å⁻¹); name the column (2theta or Q) or give the "
                         "unit if not")
    kind = kind or _EXT_KIND.get(ext, "iq")
    if x_unit is None and declared is not None:  # pyFAI's column names say what x is
        x_unit, factor = declared
        if factor != 1.0:
            x = x * factor
            meta["x_converted"] = "Q from nm⁻¹ to Å⁻¹"
    if x_unit is None:
        if kind == "gr":
            x_unit = "angstrom"
        elif kind == "xrd" and float(x.max()) > 180:  # no 2θ scan goes past 180°: time of flight in µs
            x_unit = "microseconds"
        elif kind == "xrd" and (ext in (".xy", ".xye", ".chi")) and (float(x.max()) > 40
                                                                     or "wavelength" in metadata):
            x_unit = "degrees"  # a wavelength given with the file: a 2θ scan, even one that ends below 40°
        else:
            x_unit = "inv_angstrom"
    rad = radiation or _radiation(meta, header_text)
    meta.update(metadata)
    if notes:
        meta["warnings"] = notes
        for note in notes:
            log.warning(note)
    return Dataset(x=x, y=y, sigma=sigma, kind=kind, x_unit=x_unit, radiation=rad, metadata=meta, path=str(path))

"""Diffractometer files that are not plain columns: Panalytical .xrdml (XML), GSAS .gsa/.gss/.fxye
(BANK records) and CIF powder blocks (pdCIF). Each returns (x, y, sigma or None, metadata); load_dataset turns
them into a Dataset.

Units out: 2θ in degrees, time of flight in µs; counts per step (xrdml: counts, or counts/s times the counting
time); σ = √counts where the file gives none (xrdml) or its ESD column (GSAS ESD/FXYE).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from scatterfit.errors import ScatterfitError


def read_xrdml(path: Path, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """A Panalytical .xrdml scan: 2θ from the 2Theta positions (start/end or a list), counts (or intensities
    times the counting time), the Kα1/Kα2 wavelengths and their ratio."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ScatterfitError(f"{path}: not a valid XRDML file ({exc})") from None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def find(node, name):
        return next((e for e in node.iter() if local(e.tag) == name), None)

    meta: dict = {"format": "xrdml"}
    wavelength = find(root, "usedWavelength")
    if wavelength is not None:  # Kα1 as the wavelength; Kα2 and its ratio as the powder model's doublet
        for child in wavelength:
            key = {"kAlpha1": "wavelength", "kAlpha2": "wavelength2", "ratioKAlpha2KAlpha1": "ratio"}.get(
                local(child.tag))
            if key and child.text:
                if key == "wavelength":
                    meta[key] = float(child.text)
                else:
                    meta.setdefault("powder", {})[key] = float(child.text)
    scan = find(root, "dataPoints")
    if scan is None:
        raise ScatterfitError(f"{path}: no <dataPoints> in this XRDML file")
    axis = next((e for e in scan if local(e.tag) == "positions" and e.get("axis") == "2Theta"), None)
    values = next((e for e in scan if local(e.tag) in ("counts", "intensities")), None)
    if axis is None or values is None or not (values.text or "").strip():
        raise ScatterfitError(f"{path}: the XRDML scan has no 2Theta positions or no counts")
    y = np.array(values.text.split(), dtype=float)
    listed = next((e for e in axis if local(e.tag) == "listPositions"), None)
    if listed is not None and listed.text:
        x = np.array(listed.text.split(), dtype=float)
    else:
        start = next((e for e in axis if local(e.tag) == "startPosition"), None)
        end = next((e for e in axis if local(e.tag) == "endPosition"), None)
        if start is None or end is None:
            raise ScatterfitError(f"{path}: the 2Theta axis has neither listPositions nor start/endPosition")
        x = np.linspace(float(start.text), float(end.text), len(y))
    if len(x) != len(y):
        raise ScatterfitError(f"{path}: {len(x)} 2θ positions for {len(y)} counts")
    if local(values.tag) == "intensities":  # counts per second: back to counts for the statistics
        time = find(scan, "commonCountingTime")
        if time is not None and time.text:
            y = y * float(time.text)
    sigma = np.sqrt(np.clip(y, 1.0, None))
    return x, y, sigma, meta


_BANK = re.compile(r"^BANK\s+(\d+)\s+(\d+)\s+(\d+)\s+(\w+)\s+([-+\d.eE]+)\s+([-+\d.eE]+)(?:\s+([-+\d.eE]+))?"
                   r"(?:\s+([-+\d.eE]+))?\s*(\w+)?")


def read_gsas(path: Path, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """The first bank of a GSAS powder file: "BANK n npts nrec CONST start step 0 0 ESD|STD|ALT" with 2θ in
    centidegrees (or µs for a TOF bank, TIME_MAP not read) and 10 values per record (ESD: value, σ pairs), or
    "... SLOG/RALF" time-of-flight banks; FXYE records give x, y, σ per line (x in centidegrees or µs)."""
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("BANK")), None)
    if start is None:
        raise ScatterfitError(f"{path}: no BANK record in this GSAS file")
    m = _BANK.match(lines[start])
    if m is None:
        raise ScatterfitError(f"{path}:{start + 1}: cannot read the BANK line '{lines[start].strip()[:60]}'")
    npts, binning = int(m.group(2)), m.group(4).upper()
    kind = (m.group(9) or "STD").upper()
    body = []
    for k in range(start + 1, len(lines)):
        if lines[k].startswith("BANK"):
            break
        body.append((k + 1, lines[k]))
    meta: dict = {"format": "gsas", "bank": int(m.group(1))}
    for line in lines[:start]:
        found = re.search(r"(?:lambda|wavelength)\s*[=:]?\s*([\d.]+)", line, re.IGNORECASE)
        if found:
            meta.setdefault("wavelength", float(found.group(1)))
    if kind == "FXYE":
        rows = [[float(v) for v in line.split()[:3]] for _, line in body if line.strip()]
        arr = np.array(rows)
        x, y, sigma = arr[:, 0], arr[:, 1], arr[:, 2]
    elif binning == "CONST":
        numbers = []
        for lineno, line in body:
            chunks = [line[i:i + 8] for i in range(0, min(len(line.rstrip()), 80), 8)]  # 10 fields of 8
            try:
                numbers.extend(float(c) for c in chunks if c.strip())
            except ValueError:
                raise ScatterfitError(f"{path}:{lineno}: not a number in a data record") from None
        values = np.array(numbers)
        if kind == "ESD":
            values = values[: 2 * npts].reshape(-1, 2)
            y, sigma = values[:, 0], values[:, 1]
        else:
            y = values[:npts]
            sigma = np.sqrt(np.clip(y, 1.0, None))
        x = float(m.group(5)) + float(m.group(6)) * np.arange(len(y))
    else:
        raise ScatterfitError(f"{path}: GSAS {binning} binning is not read (CONST and FXYE are); export the bank "
                              "as FXYE or .xye")
    if len(y) != npts:
        raise ScatterfitError(f"{path}: the BANK line says {npts} points, the records hold {len(y)}")
    tof = float(x.max()) > 18000.0 or binning in ("SLOG", "RALF")
    if not tof:
        x = x / 100.0  # centidegrees
    meta["x_unit"] = "microseconds" if tof else "degrees"
    return x, y, sigma if (sigma > 0).all() else None, meta


_PD_X = ("_pd_meas_2theta_scan", "_pd_proc_2theta_corrected", "_pd_meas_time_of_flight", "_pd_meas_2theta")
_PD_Y = ("_pd_meas_counts_total", "_pd_meas_intensity_total", "_pd_proc_intensity_total", "_pd_proc_intensity_net",
         "_pd_calc_intensity_total")
_SU = re.compile(r"^([-+]?[\d.]+(?:[eE][-+]?\d+)?)\((\d+)\)$")


def _cif_loops(text: str) -> list[tuple[list[str], list[str]]]:
    """Every loop of a CIF text as (tag names, value tokens as written, with their su in parentheses)."""
    import shlex

    loops, lines, k = [], text.splitlines(), 0
    while k < len(lines):
        if lines[k].strip().lower() != "loop_":
            k += 1
            continue
        k += 1
        names = []
        while k < len(lines) and lines[k].strip().startswith("_"):
            names.append(lines[k].strip().split()[0].lower())
            k += 1
        tokens = []
        while k < len(lines):
            stripped = lines[k].strip()
            if stripped.lower() == "loop_" or stripped.startswith("_") or stripped.lower().startswith("data_"):
                break
            if stripped and not stripped.startswith("#"):
                tokens.extend(shlex.split(stripped, posix=True))
            k += 1
        loops.append((names, tokens))
    return loops


def _value_and_su(token: str, where: str) -> tuple[float, float | None]:
    """(value, standard uncertainty or None) of a CIF number such as "1234.5(35)"."""
    m = _SU.match(token)
    try:
        if m is None:
            return float(token), None
        value, digits = m.group(1), m.group(2)
        decimals = len(value.split(".")[1].split("e")[0].split("E")[0]) if "." in value else 0
        exponent = int(re.split(r"[eE]", value)[1]) if re.search(r"[eE]", value) else 0
        return float(value), int(digits) * 10.0 ** (exponent - decimals)
    except (ValueError, IndexError):
        raise ScatterfitError(f"{where}: '{token}' is not a number") from None


def read_pdcif(path: Path, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """A powder pattern in a CIF (pdCIF, Toby 2003): x from _pd_meas_2theta_scan / _pd_proc_2theta_corrected /
    _pd_meas_time_of_flight or the _pd_meas_2theta_range_min/max/inc triple, y from _pd_meas_counts_total,
    _pd_meas_intensity_total or _pd_proc_intensity_total/net, σ from the values' su in parentheses, a _su column or
    _pd_proc_ls_weight (1/σ²), else √counts for counts; the wavelength from _diffrn_radiation_wavelength and the
    radiation from _diffrn_radiation_probe."""
    loop = next(((names, tokens) for names, tokens in _cif_loops(text) if any(n in _PD_Y for n in names)), None)
    if loop is None:
        raise ScatterfitError(f"{path}: no powder data loop in this CIF (none of {', '.join(_PD_Y)}); a CIF of a "
                              "structure goes in [structure]")
    names, tokens = loop
    if len(tokens) % len(names):
        raise ScatterfitError(f"{path}: the powder data loop has {len(tokens)} values for {len(names)} columns")
    rows = [tokens[i:i + len(names)] for i in range(0, len(tokens), len(names))]
    columns = {n: [_value_and_su(row[k], f"{path}: {n}") for row in rows] for k, n in enumerate(names)}
    y_tag = next(n for n in _PD_Y if n in columns)
    y = np.array([v for v, _ in columns[y_tag]])
    su = [s for _, s in columns[y_tag]]
    if f"{y_tag}_su" in columns:
        sigma = np.array([v for v, _ in columns[f"{y_tag}_su"]])
    elif all(s is not None for s in su):
        sigma = np.array(su)
    elif "_pd_proc_ls_weight" in columns:
        weight = np.array([v for v, _ in columns["_pd_proc_ls_weight"]])
        sigma = np.where(weight > 0, 1.0 / np.sqrt(np.clip(weight, 1e-300, None)), 0.0)
    elif y_tag == "_pd_meas_counts_total":
        sigma = np.sqrt(np.clip(y, 1.0, None))
    else:
        sigma = None

    def scalar(tag: str) -> str | None:
        m = re.search(rf"^\s*{re.escape(tag)}\s+(\S+)", text, re.IGNORECASE | re.MULTILINE)
        return m.group(1).strip("'\"") if m else None

    meta: dict = {"format": "pdcif"}
    x_tag = next((n for n in _PD_X if n in columns), None)
    if x_tag is not None:
        x = np.array([v for v, _ in columns[x_tag]])
    else:
        bounds = [scalar(f"_pd_meas_2theta_range_{k}") for k in ("min", "max", "inc")]
        if None in bounds:
            raise ScatterfitError(f"{path}: no x column ({', '.join(_PD_X)}) and no _pd_meas_2theta_range_min/max/"
                                  "inc")
        lo, hi, inc = (_value_and_su(b, str(path))[0] for b in bounds)
        x = lo + inc * np.arange(len(y))
        if abs(x[-1] - hi) > 0.5 * abs(inc):
            raise ScatterfitError(f"{path}: the 2θ range {lo}–{hi} step {inc} does not hold {len(y)} points")
    meta["x_unit"] = "microseconds" if x_tag == "_pd_meas_time_of_flight" else "degrees"
    wavelength = scalar("_diffrn_radiation_wavelength")
    if wavelength is not None:
        meta["wavelength"] = _value_and_su(wavelength, str(path))[0]
    probe = (scalar("_diffrn_radiation_probe") or "").lower()
    if probe:
        meta["radiation"] = "neutron" if probe.startswith("neutron") else "xray"
    return x, y, sigma if sigma is not None and (sigma > 0).all() else None, meta

"""Diffractometer files that are not plain columns: Panalytical .xrdml (XML) and GSAS .gsa/.gss/.fxye
(BANK records). Each returns (x, y, sigma or None, metadata); load_dataset turns them into a Dataset.

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

"""The AFLOW Library of Crystallographic Prototypes (part 1: 288 structure types, M. J. Mehl et al., Comput. Mater.
Sci. 136, S1 (2017)) as library prototypes: each type's space group, the representatives of its Wyckoff orbits
and its cell, with the literature reference of the example compound it was taken from.

The types ship inside pymatgen (pymatgen/analysis/prototypes/aflow_prototypes.json.gz); the file is read as data
(pymatgen is not imported). Each entry is standardised by spglib (conventional cell, the lowest Hall number: origin
choice 1, hexagonal axes), and kept only when ASE's ``crystal()`` in its default setting rebuilds exactly that cell
from the orbit representatives, so the settings agree.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np

MEHL_2017 = "AFLOW prototype library, M. J. Mehl et al., Comput. Mater. Sci. 136, S1 (2017)"


def prototype_file() -> Path | None:
    """pymatgen's copy of the AFLOW prototypes, or None when pymatgen is not installed."""
    spec = importlib.util.find_spec("pymatgen")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "analysis" / "prototypes" / "aflow_prototypes.json.gz"
    return path if path.is_file() else None


def _reference(bibtex: str) -> str:
    """The first reference of a BibTeX text as "authors, journal volume, page (year)"."""
    def field(name: str) -> str:
        m = re.search(rf"\b{name}\s*=\s*[\"{{]([^\"}}]*)", bibtex)
        return " ".join(m.group(1).split()) if m else ""

    authors = field("author").replace(" and ", ", ")
    parts = [p for p in (authors, field("journal"), field("volume"), field("pages") or field("page_first")) if p]
    year = field("year")
    return (" ".join(parts[:1]) + (", " + " ".join(parts[1:]) if parts[1:] else "")
            + (f" ({year})" if year else "")).strip()


def _standard(cell: np.ndarray, frac: np.ndarray, numbers: np.ndarray):
    """spglib's conventional standard cell and its dataset (number, wyckoffs, equivalent atoms)."""
    import warnings

    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        std = spglib.standardize_cell((cell, frac, numbers), to_primitive=False, no_idealize=False, symprec=1e-3)
        dataset = spglib.get_symmetry_dataset(std, symprec=1e-3)
    return std, dataset


def _cellpar(lattice: np.ndarray) -> tuple:
    a, b, c = np.linalg.norm(lattice, axis=1)
    angle = lambda u, v: math.degrees(math.acos(float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))
    return (float(a), float(b), float(c), angle(lattice[1], lattice[2]), angle(lattice[0], lattice[2]),
            angle(lattice[0], lattice[1]))


LATEX_ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303", "v": "\u030c",
                 "c": "\u0327"}
LATEX_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η",
               "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
               "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω"}


def plain_text(name: str) -> str:
    """A name of the AFLOW library with its LaTeX written out: accents (Lavarevi\\'{c}ite → Lavarevićite) and
    Greek letters in math ($\\mu$ → μ), for labels and file names."""
    import re
    import unicodedata

    name = re.sub(r"\\([`'\"^~vc])\{?([A-Za-z])\}?", lambda m: m.group(2) + LATEX_ACCENTS[m.group(1)], name)
    name = re.sub(r"\$\\([A-Za-z]+)\$", lambda m: LATEX_GREEK.get(m.group(1), m.group(1)), name)
    return unicodedata.normalize("NFC", name)


def _entry(item: dict) -> dict | None:
    """One AFLOW entry as the fields of a library Prototype (structure/library.py), or None when ASE's setting of
    its space group does not rebuild it."""
    from ase.data import atomic_numbers, chemical_symbols
    from ase.spacegroup import crystal

    snl, tags = item["snl"], item["tags"]
    cell = np.array(snl["lattice"]["matrix"], float)
    frac = np.array([s["abc"] for s in snl["sites"]], float) % 1.0
    numbers = np.array([atomic_numbers[s["species"][0]["element"]] for s in snl["sites"]])
    (lattice, positions, types), dataset = _standard(cell, frac, numbers)
    if dataset is None:
        return None
    elements = sorted({chemical_symbols[z] for z in types})  # AFLOW's roles: the elements in alphabetical order
    role = {el: "ABCDEFGH"[k] for k, el in enumerate(elements)}
    reps = sorted(set(int(i) for i in dataset.equivalent_atoms))
    sites = tuple((role[chemical_symbols[types[i]]], tuple(round(float(x), 6) for x in positions[i] % 1.0))
                  for i in reps)
    counts = [int(np.sum(types == atomic_numbers[el])) for el in elements]
    g = functools.reduce(math.gcd, counts)
    formula = tuple(x for el, n in zip(elements, counts) for x in (role[el], n // g))
    par = _cellpar(np.asarray(lattice, float))
    try:
        rebuilt = crystal([chemical_symbols[types[i]] for i in reps], [positions[i] for i in reps],
                          spacegroup=int(dataset.number), cellpar=par, onduplicates="error")
    except Exception:  # noqa: BLE001 - ASE's setting puts the orbits elsewhere: leave the entry out
        return None
    if len(rebuilt) != len(types):
        return None
    aflow = tags["aflow"]
    mineral = plain_text(tags.get("mineral") or "")
    struk = tags.get("strukturbericht") or "None"
    name = " ".join(p for p in (mineral if len(mineral) > 6 else "", aflow) if p)
    described = ", ".join(p for p in (mineral, f"Strukturbericht {struk}" if struk != "None" else "") if p)
    source = (f"{aflow}{f' ({described})' if described else ''}: {_reference(snl['about']['references'])}; "
              f"{MEHL_2017}")
    return {"name": name, "formula": formula, "spacegroup": int(dataset.number), "sites": sites, "cell": par,
            "source": source, "setting": 1, "bonds": True}


@functools.lru_cache(maxsize=1)
def aflow_types() -> tuple:
    """The AFLOW types ASE can rebuild, as Prototype fields with cells in Å of their example compounds (empty
    without pymatgen)."""
    path = prototype_file()
    if path is None:
        return ()
    with gzip.open(path, "rt") as handle:
        items = json.load(handle)
    return tuple(p for p in (_entry(item) for item in items) if p is not None)

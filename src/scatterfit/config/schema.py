"""The refinement config file (TOML): every section and key with its type, default, allowed range and help.

This table is the single source of truth: the validation below, the builders (config/builders.py) and the
generated documentation (`scatterfit config`, :func:`describe`) all read it. Each section maps onto an API
object: [structure] → Structure, [[datasets]] → Dataset, [[terms]] → DataTerm / EnergyTerm / restraint,
[parameters] → Parametrisation, [[strategy]] → Stage, [search] → search(), [output] → refine() and the report.

Relative paths (data, structure files, [output].dir) are resolved against the folder of the config file.
Every mistake (unknown key, wrong type, value out of range, missing file) raises a ScatterfitError naming the
file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from scatterfit.errors import ScatterfitError

NUMBER = (int, float)
SPACE_GROUP = (int, str)
TYPE_NAMES = {str: "a string", dict: "a table", list: "a list", int: "an integer", bool: "true or false",
              NUMBER: "a number", SPACE_GROUP: "a space-group number or symbol"}


@dataclass(frozen=True)
class Key:
    """One config key.

    Attributes:
        type: str, dict, list, int, bool or NUMBER.
        help: one line for the documentation.
        default: the value used when the key is absent (None: no default, or computed as the help says).
        low, high: allowed range of a number (inclusive unless ``open_low``).
        open_low: the value must be strictly greater than ``low``.
        choices: allowed values of a string.
    """

    type: object
    help: str
    default: object = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    choices: tuple | None = None

    def check(self, where: str, value) -> None:
        want = self.type
        if not isinstance(value, want) or (want in (int, NUMBER) and isinstance(value, bool)):
            raise ScatterfitError(f"{where}: must be {TYPE_NAMES[want]}, got {type(value).__name__}")
        if self.choices is not None and value not in self.choices:
            raise ScatterfitError(f"{where}: '{value}' is not one of {', '.join(map(str, self.choices))}")
        if want in (int, NUMBER):
            if not math.isfinite(value):
                raise ScatterfitError(f"{where}: must be finite, got {value}")
            if self.low is not None and (value <= self.low if self.open_low else value < self.low):
                raise ScatterfitError(f"{where}: must be {'>' if self.open_low else '≥'} {self.low}, got {value}")
            if self.high is not None and value > self.high:
                raise ScatterfitError(f"{where}: must be ≤ {self.high}, got {value}")

    def range_text(self) -> str:
        parts = []
        if self.choices:
            parts.append(" | ".join(map(str, self.choices)))
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '≥'} {self.low:g}")
        if self.high is not None:
            parts.append(f"≤ {self.high:g}")
        return ", ".join(parts)


SECTIONS: dict[str, dict[str, Key]] = {
    "structure": {
        "file": Key(str, "structure file ASE reads (CIF, XYZ, extxyz, POSCAR, PDB), relative to the config"),
        "cmi": Key(str, "a structure file inside the diffpy.cmi wheel's examples (e.g. pdf/.../Ni.cif)"),
        "bulk": Key(dict, "arguments of ase.build.bulk: {name, crystalstructure, a, cubic}"),
        "amorphous": Key(dict, "random box: {composition, n_atoms, density (atoms/Å³), min_dist (Å), seed}"),
        "molecule": Key(dict, "atoms at random in a sphere: {formula, min_dist (Å), density (atoms/Å³), seed}"),
        "uiso": Key(NUMBER, "starting Uiso of every atom, Å² (default: the file's, else 0.005)", low=0.0),
        "subgroup": Key(SPACE_GROUP, "refine in this subgroup of the structure's space group (number or symbol, "
                        "e.g. \"Fmmm\" for I4/mmm, \"Pnma\" for Pm-3m): its cell and free coordinates"),
        "point_group": Key(str, "a finite structure's point group (Schoenflies, e.g. \"Td\"; about the origin, in "
                           "structure/symmetry.py's frame): its orbits become the parameter group \"orbits\""),
    },
    "phases": {},  # the [structure] keys plus name and fraction: _phase_keys() below
    "datasets": {
        "name": Key(str, "the name terms refer to (required)"),
        "file": Key(str, "data file, relative to the config (.gr .fgr .iq .sq .fq .mint01 .xy .xye .chi .dat)"),
        "cmi": Key(str, "a data file inside the diffpy.cmi wheel's examples"),
        "kind": Key(str, "override the kind the extension implies", choices=("iq", "sq", "fq", "gr", "xrd", "saxs")),
        "radiation": Key(str, "override the header's radiation (unit: unit form factors)",
                         choices=("xray", "neutron", "unit")),
        "x_unit": Key(str, "override the x unit (degrees: 2θ; microseconds: time of flight)",
                      choices=("angstrom", "inv_angstrom", "degrees", "microseconds")),
        "qmax": Key(NUMBER, "Qmax of the PDF's Fourier transform, Å⁻¹, when the header has none", low=0.0),
        "wavelength": Key(NUMBER, "powder: wavelength, Å (the Kα1 line of a tube), when the header has none",
                          low=0.0, open_low=True),
        "wavelength2": Key(NUMBER, "powder: a second line (Kα2), Å; its peaks are added times ratio", low=0.0,
                           open_low=True),
        "ratio": Key(NUMBER, "powder: I(Kα2)/I(Kα1)", default=0.5, low=0.0, high=1.0),
        "polarisation": Key(NUMBER, "powder, X-ray: K = cos²2θ of the monochromator (1: none)", default=1.0,
                            low=0.0, high=1.0),
        "profile": Key(str, "powder, 2θ: peak shape", default="tch", choices=("tch", "caglioti")),
        "preferred_orientation": Key(list, "powder: the hkl of the March–Dollase axis, e.g. [0, 0, 1]"),
        "bank_angle": Key(NUMBER, "powder, time of flight: 2θ of the detector bank, degrees", default=90.0, low=0.0,
                          high=180.0, open_low=True),
    },
    "terms": {
        "kind": Key(str, "what the term measures", default="data", choices=("data", "energy", "restraint")),
        "name": Key(str, "unique name in the loss (default: the dataset's, 'energy', or the restraint's)"),
        "dataset": Key(str, "data term: the [[datasets]] name"),
        "model": Key(str, "data term: forward model (pdf, powder, debye, box, box-interference, shape, or a "
                          "registered one; default: pdf for G(r), powder for a Bragg pattern, debye otherwise)"),
        "qmax": Key(NUMBER, "data term: Qmax, Å⁻¹ (pdf: termination ripples, 0 = none; default: the data's)",
                    low=0.0),
        "ripple": Key(str, "pdf: termination-ripple convention", default="pdffit2", choices=("pdffit2", "exact")),
        "phases": Key(list, "data term with [[phases]]: the phases seen in this dataset (default: all)"),
        "debye_kind": Key(str, "debye: the quantity computed (default: the dataset's kind)",
                          choices=("iq", "sq", "fq", "gr", "saxs")),
        "qmin": Key(NUMBER, "debye: Qmin, Å⁻¹ (default: the data's, else 0.5)", low=0.0),
        "shape": Key(str, "shape: the homogeneous particle's shape (its radius, aspect and polydispersity are "
                          "parameters)", default="sphere", choices=("sphere", "spheroid", "cylinder")),
        "xmin": Key(NUMBER, "data term: lower end of the fit range, in the data's x unit"),
        "xmax": Key(NUMBER, "data term: upper end of the fit range, in the data's x unit"),
        "metric": Key(str, "data term: misfit", default="rw", choices=("rw", "chi2", "mse")),
        "weight": Key(NUMBER, "weight of the term in the loss", default=1.0, low=0.0),
        "fit_scale": Key(bool, "data term: solve the scale analytically (false: refine 'scale')", default=True),
        "potential": Key(str, "energy term: potential name (chgnet, bks, lj, tersoff, sw, emt, xtb, ...)",
                         default="chgnet"),
        "restraint": Key(str, "restraint term: min_distance, coordination, angle, bond_valence, density, "
                              "composition or charge"),
        "args": Key(dict, "energy/restraint term: the potential's or restraint's arguments"),
        "reference": Key(NUMBER, "energy term: energy per atom subtracted, eV/atom", default=0.0),
    },
    "parameters": {
        "free": Key(list, "refined groups: lattice, cell, fractional, positions, orbits, expansion, biso, "
                          "uaniso (anisotropic U under the site symmetry), occupancy, background, scale, qdamp, "
                          "qbroad, delta1, delta2, spdiameter, shell_thickness, and a powder "
                          "model's instrument parameters (zero, U, V, W, X, Y, ..., difc: `scatterfit config`); "
                          "with [[phases]] also fraction, and a phase's own as 'Si.lattice' (a plain 'lattice' "
                          "is every phase's) (required)"),
        "values": Key(dict, "starting (or fixed) values of scalar parameters: scale, qdamp, qbroad, delta1, "
                            "delta2, spdiameter, shell_thickness (with spdiameter: a spherical shell of this "
                            "wall, Å, around a hollow of diameter spdiameter), background_order (Chebyshev order), "
                            "and the powder model's"),
        "bounds": Key(dict, "{group = [lo, hi]}; uaniso: of the diagonal U, Å² (off-diagonal ± hi/2); "
                            "positions/orbits also a single maximum displacement, Å; cell a "
                            "table {a = [lo, hi], alpha = [lo, hi], ...} in Å and degrees"),
    },
    "strategy": {},  # generated from the stage types (optim/stages.py) by _strategy_keys() below
    "search": {
        "builder": Key(str, "candidate builder (required)",
                       choices=("nanoparticle", "amorphous", "molecule", "symmetric_molecule", "crystal_particle",
                                "stacked_particle")),
        "builder_args": Key(dict, "the builder's fixed arguments (element, lattice, formula, ...)"),
        "variables": Key(dict, "searched variables: {name = {kind, low, high | options}} (required)"),
        "swarm_size": Key(int, "particles per generation", default=16, low=1),
        "budget": Key(int, "maximum candidate evaluations", default=100, low=1),
        "stall": Key(int, "stop after this many generations without improvement", default=6, low=1),
        "target": Key(NUMBER, "stop when the best loss is ≤ target"),
        "engine": Key(str, "swarm engine", default="scatterfit", choices=("scatterfit", "nevergrad")),
        "executor": Key(str, "processes:N, dask-local:N, dask://host:port, ray-local:N or ray://host:port"),
        "seed": Key(int, "seed of the swarm and the random builders", default=0),
        "top_k": Key(int, "distinct best candidates refined to convergence", default=3, low=1),
        "inner_free": Key(list, "groups refined for every candidate (default: [parameters].free)"),
        "inner_steps": Key(int, "L-BFGS steps for every candidate", default=5, low=1),
    },
    "output": {
        "dir": Key(str, "output folder, relative to the config (default: out/<config name> beside it)"),
        "seed": Key(int, "seed of the refinement's random generator", default=0),
        "checkpoint_every": Key(int, "steps between checkpoints", default=10, low=1),
        "bond_cutoffs": Key(dict, "chemistry report: {\"Si-O\" = 2.0} bond cutoffs, Å"),
        "oxidation": Key(dict, "chemistry report: {Si = 4, O = -2} oxidation states for bond valence sums"),
    },
}
def _strategy_keys() -> dict[str, Key]:
    """The [[strategy]] keys: "optimizer" and every setting of every stage type, read from the stage dataclasses
    (their defaults, ranges and help), so a new stage type documents and validates itself."""
    from scatterfit.optim.stages import STAGES, default_of, stage_settings

    types = {"int": int, "float": NUMBER, "str": str, "list": list, "dict": dict, "bool": bool}
    keys = {"optimizer": Key(str, "the stage type: " + ", ".join(STAGES), default="lbfgs", choices=tuple(STAGES))}
    users: dict[str, list] = {}
    for name, cls in STAGES.items():
        for key, f in stage_settings(cls).items():
            users.setdefault(key, []).append((name, f))
    for key, used in users.items():
        f = used[0][1]
        lows = [g.metadata.get("low") for _, g in used]
        low = None if None in lows else min(lows)  # the stage type checks its own range again
        helps = list(dict.fromkeys(f"{g.metadata.get('help', '')} (default {default_of(g)!r})" if len(used) > 1
                                   and default_of(g) != default_of(f) else g.metadata.get("help", "")
                                   for _, g in used))
        text = "; ".join(f"{name}: {h}" for (name, _), h in zip(used, helps)) if len(helps) > 1 else helps[0]
        if len(helps) == 1 and len(used) < len(STAGES):
            text = f"{'/'.join(name for name, _ in used)}: {text}"
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        keys[key] = Key(types[annotation.split("|")[0].strip()], text, default=default_of(f), low=low,
                        open_low=all(g.metadata.get("open_low", False) for _, g in used))
    return keys


# SECTIONS["strategy"] is filled by load_config and describe() (stage types registered later count, and the
# command line's parser does not import torch through optim)
SECTIONS["phases"] = {
    "name": Key(str, "the phase's name, used in parameter names (Si.lattice) and outputs (required)"),
    "fraction": Key(NUMBER, "starting atom fraction of the phase (normalised over the phases; default equal)",
                    low=0.0, open_low=True),
    "shell_of": Key(str, "a core–shell particle: this phase is a spherical shell around the named phase (its "
                         "hollow is that phase's spdiameter; refine '<this phase>.shell_thickness')"),
    **SECTIONS["structure"],
}
STRUCTURE_SOURCES = ("file", "cmi", "bulk", "amorphous", "molecule")
REQUIRED = {"structure": (), "phases": ("name",), "datasets": ("name",), "parameters": ("free",)}
TERM_REQUIRES = {"data": ("dataset",), "energy": (), "restraint": ("restraint",)}
TERM_KEYS = {"energy": {"kind", "name", "potential", "args", "weight", "reference"},
             "restraint": {"kind", "name", "restraint", "args", "weight"}}
LISTS = ("phases", "datasets", "terms", "strategy")
SCALAR_VALUE_RANGES = {"scale": (0.0, True), "qdamp": (0.0, False), "qbroad": (0.0, False), "delta1": (0.0, False),
                       "delta2": (0.0, False), "spdiameter": (0.0, True), "shell_thickness": (0.0, True),
                       "background_order": (0.0, False)}


@dataclass
class Config:
    """The validated config: plain dictionaries per section, and the folder relative paths start from."""

    path: Path
    structure: dict
    phases: list
    datasets: list
    terms: list
    parameters: dict
    strategy: list
    search: dict
    output: dict

    def resolve(self, relative: str) -> Path:
        """A path of the config, relative to the config file's folder (absolute paths stay)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)


def describe() -> str:
    """The documentation of the config file, generated from SECTIONS (and the powder model's parameters)."""
    from scatterfit.scattering.powder import PARAMETERS

    SECTIONS["strategy"] = _strategy_keys()
    lines = [__doc__.strip(), ""]
    for name, keys in SECTIONS.items():
        lines.append(f"[[{name}]]" if name in LISTS else f"[{name}]")
        for key, spec in keys.items():
            extra = [f"default {spec.default!r}"] if spec.default is not None else []
            if spec.range_text():
                extra.append(spec.range_text())
            required = " (required)" in spec.help
            lines.append(f"  {key:<17}{TYPE_NAMES[spec.type]:<14}{spec.help.replace(' (required)', '')}"
                         + (f"  [{'; '.join(extra)}]" if extra else "") + ("  REQUIRED" if required else ""))
        lines.append("")
    for geometry, table in PARAMETERS.items():
        unit = {"cw": "2θ (degrees)", "tof": "time of flight (µs)", "q": "Q (Å⁻¹)"}[geometry]
        lines.append(f"powder model parameters on {unit} ([parameters].values and .free):")
        for name, spec in table.items():
            default = "required" if spec.default is None else f"default {spec.default:g}"
            lines.append(f"  {name:<17}{spec.help}  [{default}]")
        lines.append("")
    return "\n".join(lines)


def _check_table(where: str, table, schema: dict, required) -> dict:
    if not isinstance(table, dict):
        raise ScatterfitError(f"{where}: must be a table")
    for key, value in table.items():
        if key not in schema:
            raise ScatterfitError(f"{where}: unknown key '{key}' (known: {', '.join(schema)})")
        schema[key].check(f"{where}.{key}", value)
    for key in required:
        if key not in table:
            raise ScatterfitError(f"{where}: missing required key '{key}'")
    return table


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise ScatterfitError(f"{path}: config file not found")
    raw = path.read_bytes()
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            break
    else:
        codec = "utf-8"
    try:
        return tomllib.loads(raw.decode(codec))
    except tomllib.TOMLDecodeError as exc:
        raise ScatterfitError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ScatterfitError(f"{path}: not a UTF-8 text file") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file (types, ranges, required keys, cross-references)."""
    path = Path(path)
    SECTIONS["strategy"] = _strategy_keys()
    raw = _read_toml(path)
    for key in raw:
        if key not in SECTIONS:
            raise ScatterfitError(f"{path}: unknown section [{key}] (known: {', '.join(SECTIONS)})")
    for key in ("datasets", "terms", "parameters"):
        if key not in raw:
            raise ScatterfitError(f"{path}: missing section [{key}]")
    if "search" not in raw and "structure" not in raw and "phases" not in raw:
        raise ScatterfitError(f"{path}: missing section [structure] (or [[phases]] for several phases)")
    sections = {}
    for name, schema in SECTIONS.items():
        value = raw.get(name, [] if name in LISTS else {})
        if name in LISTS:
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list):
                raise ScatterfitError(f"{path}: [[{name}]] must be an array of tables")
            sections[name] = [_check_table(f"{path}: [[{name}]][{k}]", v, schema, REQUIRED.get(name, ()))
                              for k, v in enumerate(value)]
        else:
            sections[name] = _check_table(f"{path}: [{name}]", value, schema, REQUIRED.get(name, ()))
    _check_relations(path, sections)
    return Config(path=path, **sections)


def _check_relations(path: Path, sections: dict) -> None:
    """What single keys cannot say: exactly one structure source, names that refer to something, fit ranges that
    are ranges, a loss that has something to minimise."""
    if not sections["datasets"]:
        raise ScatterfitError(f"{path}: [[datasets]] is empty")
    if not sections["terms"]:
        raise ScatterfitError(f"{path}: [[terms]] is empty")
    sources = [k for k in STRUCTURE_SOURCES if k in sections["structure"]]
    phases = sections["phases"]
    if sections["search"]:
        if "builder" not in sections["search"] or "variables" not in sections["search"]:
            raise ScatterfitError(f"{path}: [search] needs builder and variables")
        if sources or phases:
            raise ScatterfitError(f"{path}: with [search] the builder makes the structures: drop "
                                  f"{'[[phases]]' if phases else '[structure]'}")
    elif phases:
        _check_phases(path, sections)
    elif len(sources) != 1:
        raise ScatterfitError(f"{path}: [structure] needs exactly one of file, cmi, bulk, amorphous or molecule")
    names = [d["name"] for d in sections["datasets"]]
    if len(set(names)) != len(names):
        raise ScatterfitError(f"{path}: [[datasets]] names must be unique, got {names}")
    for k, d in enumerate(sections["datasets"]):
        if ("file" in d) == ("cmi" in d):
            raise ScatterfitError(f"{path}: [[datasets]][{k}] needs exactly one of file or cmi")
    for k, t in enumerate(sections["terms"]):
        where = f"{path}: [[terms]][{k}]"
        kind = t.get("kind", "data")
        for key in TERM_REQUIRES[kind]:
            if key not in t:
                raise ScatterfitError(f"{where}: a {kind} term needs '{key}'")
        if kind != "data":
            extra = sorted(set(t) - TERM_KEYS[kind])
            if extra:
                raise ScatterfitError(f"{where}: key(s) {extra} do not apply to a {kind} term")
            continue
        if t["dataset"] not in names:
            raise ScatterfitError(f"{where}.dataset: no dataset named '{t['dataset']}' (have: {', '.join(names)})")
        if "phases" in t:
            known = [p["name"] for p in phases]
            wrong = [p for p in t["phases"] if p not in known]
            if not phases or wrong or not t["phases"]:
                raise ScatterfitError(f"{where}.phases: {wrong or t['phases']} must name [[phases]] "
                                      f"(have: {', '.join(known) or 'none'})")
        if "xmin" in t and "xmax" in t and not t["xmin"] < t["xmax"]:
            raise ScatterfitError(f"{where}: xmin ({t['xmin']}) must be smaller than xmax ({t['xmax']})")
    if all(t.get("weight", 1.0) == 0 for t in sections["terms"]):
        raise ScatterfitError(f"{path}: [[terms]]: every term has weight 0, so there is nothing to fit")
    params = sections["parameters"]
    if "scale" in params.get("free", []) and any(t.get("kind", "data") == "data" and t.get("fit_scale", True)
                                                 for t in sections["terms"]):
        raise ScatterfitError(f"{path}: [parameters].free: 'scale' is refined while a data term solves its scale "
                              "analytically (fit_scale = true, the default); drop 'scale' or set fit_scale = false")
    for key, value in params.get("values", {}).items():
        if key in SCALAR_VALUE_RANGES and isinstance(value, NUMBER) and not isinstance(value, bool):
            low, strict = SCALAR_VALUE_RANGES[key]
            if value < low or (strict and value == low):
                raise ScatterfitError(f"{path}: [parameters].values.{key}: must be {'>' if strict else '≥'} {low:g}, "
                                      f"got {value}")
    for k, st in enumerate(sections["strategy"]):
        weights = st.get("weights", {})
        for name, w in weights.items():
            if not isinstance(w, NUMBER) or isinstance(w, bool) or not w >= 0:
                raise ScatterfitError(f"{path}: [[strategy]][{k}].weights.{name}: must be a number ≥ 0, got {w!r}")


def _check_phases(path: Path, sections: dict) -> None:
    """[[phases]]: instead of [structure], at least two, unique names usable in parameter names, one structure
    source each."""
    phases = sections["phases"]
    if sections["structure"]:
        raise ScatterfitError(f"{path}: give one phase as [structure] or several as [[phases]], not both")
    if len(phases) < 2:
        raise ScatterfitError(f"{path}: [[phases]] has one phase: write it as [structure]")
    names = [p["name"] for p in phases]
    if len(set(names)) != len(names):
        raise ScatterfitError(f"{path}: [[phases]] names must be unique, got {names}")
    for k, p in enumerate(phases):
        where = f"{path}: [[phases]][{k}]"
        if not p["name"] or any(c in p["name"] for c in ".[] "):
            raise ScatterfitError(f"{where}.name: '{p['name']}' must be non-empty, without '.', '[', ']' or spaces")
        sources = [key for key in STRUCTURE_SOURCES if key in p]
        if len(sources) != 1:
            raise ScatterfitError(f"{where}: needs exactly one of {', '.join(STRUCTURE_SOURCES)}")
        core = p.get("shell_of")
        if core is not None and (core not in names or core == p["name"]):
            raise ScatterfitError(f"{where}.shell_of: '{core}' must name another phase (phases: {', '.join(names)})")

"""The refinement config file (TOML). Each section maps one-to-one onto an API object:

    [structure]      -> Structure          file = "x.cif" | cmi = "pdf/.../Ni.cif" | bulk = {name, crystalstructure, a, cubic}
                                           | amorphous = {composition, n_atoms, density, min_dist, seed}
                                           | molecule = {formula, min_dist, density, seed} (atoms at random
                                           in a sphere)
                                           uiso = 0.005 (optional starting Uiso, Å²)
    [[datasets]]     -> Dataset            name, file | cmi, kind, radiation, x_unit (overrides of the header)
    [[terms]]        -> DataTerm           kind = "data", dataset, model = "pdf" | "debye", qmax, ripple,
                                           debye_kind, xmin, xmax, metric, weight, fit_scale
                     -> EnergyTerm         kind = "energy", potential = "chgnet" | "bks" | "lj" | ..., args = {...},
                                           reference (eV/atom), weight
                     -> restraint          kind = "restraint", restraint = "min_distance" | "coordination" |
                                           "angle" | "bond_valence" | "density" | "composition" | "charge",
                                           args = {...} (the restraint's arguments), weight
    [parameters]     -> Parametrisation    free = [...], values = {...}, bounds = {name = [lo, hi]}
    [[strategy]]     -> Stage              optimizer = "lbfgs" | "adam" | "basin" | "anneal", free, steps, lr, tol,
                                           patience, xmax, weights = {term = w}; basin: local_steps, step_size,
                                           temperature; anneal: t_start, t_end (K), timestep (fs), friction (1/ps),
                                           energy_scale (eV per unit of loss), local_steps, max_move (Å)
                                           (default: r-range ramp)
    [search]         -> search()           builder = "nanoparticle" | "amorphous" | "molecule" | "symmetric_molecule",
                                           builder_args = {...},
                                           variables = {name = {kind, low, high | options}}, swarm_size, budget,
                                           stall, target, engine, executor, seed, top_k, inner_free, inner_steps
                                           (with [search], [structure] is left out and [[strategy]] is the
                                           final refinement of the best candidates)
    [output]         -> refine()/Result    dir, seed, checkpoint_every; bond_cutoffs = {"Si-O" = 2.0},
                                           oxidation = {Si = 4, O = -2} for the chemistry report

Every mistake (unknown key, wrong type, missing file) raises a ScatterfitError naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from scatterfit.errors import ScatterfitError

NUMBER = (int, float)
SCHEMA = {
    "structure": {"file": str, "cmi": str, "bulk": dict, "amorphous": dict, "molecule": dict,
                  "uiso": NUMBER},
    "datasets": {"name": str, "file": str, "cmi": str, "kind": str, "radiation": str, "x_unit": str},
    "terms": {"kind": str, "name": str, "dataset": str, "model": str, "qmax": NUMBER, "ripple": str,
              "debye_kind": str, "qmin": NUMBER, "xmin": NUMBER, "xmax": NUMBER, "metric": str, "weight": NUMBER,
              "fit_scale": bool, "potential": str, "restraint": str, "args": dict, "reference": NUMBER},
    "parameters": {"free": list, "values": dict, "bounds": dict},
    "strategy": {"optimizer": str, "free": list, "steps": int, "lr": NUMBER, "tol": NUMBER, "patience": int,
                 "xmax": NUMBER, "weights": dict, "local_steps": int, "step_size": NUMBER, "temperature": NUMBER,
                 "t_start": NUMBER, "t_end": NUMBER, "timestep": NUMBER, "friction": NUMBER,
                 "energy_scale": NUMBER, "max_move": NUMBER},
    "search": {"builder": str, "builder_args": dict, "variables": dict, "swarm_size": int, "budget": int,
               "stall": int, "target": NUMBER, "engine": str, "executor": str, "seed": int, "top_k": int,
               "inner_free": list, "inner_steps": int},
    "output": {"dir": str, "seed": int, "checkpoint_every": int, "bond_cutoffs": dict, "oxidation": dict},
}
REQUIRED = {"structure": (), "datasets": ("name",), "parameters": ("free",)}
TERM_KINDS = {"data": ("dataset",), "energy": (), "restraint": ("restraint",)}
LISTS = ("datasets", "terms", "strategy")
TYPE_NAMES = {str: "a string", dict: "a table", list: "a list", int: "an integer", bool: "true or false",
              NUMBER: "a number"}


@dataclass
class Config:
    """The validated config: plain dictionaries per section, and the folder relative paths start from."""

    path: Path
    structure: dict
    datasets: list
    terms: list
    parameters: dict
    strategy: list
    search: dict
    output: dict

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p)


def _check_table(where: str, table, schema: dict, required) -> dict:
    if not isinstance(table, dict):
        raise ScatterfitError(f"{where}: must be a table")
    for key, value in table.items():
        if key not in schema:
            raise ScatterfitError(f"{where}: unknown key '{key}' (known: {', '.join(schema)})")
        want = schema[key]
        ok = isinstance(value, want) and not (want in (int, NUMBER) and isinstance(value, bool))
        if not ok:
            raise ScatterfitError(f"{where}.{key}: must be {TYPE_NAMES[want]}, got {type(value).__name__}")
    for key in required:
        if key not in table:
            raise ScatterfitError(f"{where}: missing required key '{key}'")
    return table


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScatterfitError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ScatterfitError(f"{path}: not a text file") from None
    for key in raw:
        if key not in SCHEMA:
            raise ScatterfitError(f"{path}: unknown section [{key}] (known: {', '.join(SCHEMA)})")
    for key in ("datasets", "terms", "parameters") if "search" in raw else ("structure", "datasets", "terms",
                                                                                "parameters"):
        if key not in raw:
            raise ScatterfitError(f"{path}: missing section [{key}]")
    sections = {}
    for name, schema in SCHEMA.items():
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
    if not sections["datasets"]:
        raise ScatterfitError(f"{path}: [[datasets]] is empty")
    if not sections["terms"]:
        raise ScatterfitError(f"{path}: [[terms]] is empty")
    sources = [k for k in ("file", "cmi", "bulk", "amorphous", "molecule") if k in sections["structure"]]
    if sections["search"]:
        if "builder" not in sections["search"] or "variables" not in sections["search"]:
            raise ScatterfitError(f"{path}: [search] needs builder and variables")
        if sources:
            raise ScatterfitError(f"{path}: with [search] the builder makes the structures: drop [structure]")
    elif len(sources) != 1:
        raise ScatterfitError(f"{path}: [structure] needs exactly one of file, cmi, bulk, amorphous or molecule")
    names = [d["name"] for d in sections["datasets"]]
    for k, d in enumerate(sections["datasets"]):
        if ("file" in d) == ("cmi" in d):
            raise ScatterfitError(f"{path}: [[datasets]][{k}] needs exactly one of file or cmi")
    for k, t in enumerate(sections["terms"]):
        kind = t.get("kind", "data")
        if kind not in TERM_KINDS:
            raise ScatterfitError(f"{path}: [[terms]][{k}].kind: unknown kind '{kind}' (use {', '.join(TERM_KINDS)})")
        for key in TERM_KINDS[kind]:
            if key not in t:
                raise ScatterfitError(f"{path}: [[terms]][{k}]: a {kind} term needs '{key}'")
        if kind != "data":
            continue
        if t["dataset"] not in names:
            raise ScatterfitError(f"{path}: [[terms]][{k}].dataset: no dataset named '{t['dataset']}' "
                                  f"(have: {', '.join(names)})")
    return Config(path=path, **sections)

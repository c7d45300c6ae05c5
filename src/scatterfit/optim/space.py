"""Search spaces of mixed variables — real, integer and categorical — and their encoding as a box in R^d,
which is what a particle swarm moves through.

Encoding: a Real is one coordinate in [low, high]; an Integer one coordinate in [low − ½, high + ½] rounded to
the nearest integer; a Choice of k options is k coordinates in [0, 1] whose arg-max is the option (so a particle
moves continuously between categories and the swarm's attraction works on them too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scatterfit.errors import ScatterfitError


@dataclass(frozen=True)
class Real:
    name: str
    low: float
    high: float

    def __post_init__(self):
        if not float(self.low) < float(self.high):
            raise ScatterfitError(f"variable '{self.name}': low {self.low} must be below high {self.high}")


@dataclass(frozen=True)
class Integer:
    name: str
    low: int
    high: int

    def __post_init__(self):
        if int(self.low) > int(self.high):
            raise ScatterfitError(f"variable '{self.name}': low {self.low} must not exceed high {self.high}")


@dataclass(frozen=True)
class Choice:
    name: str
    options: tuple

    def __post_init__(self):
        if len(self.options) < 1:
            raise ScatterfitError(f"variable '{self.name}': a choice needs at least one option")
        object.__setattr__(self, "options", tuple(self.options))


class SearchSpace:
    """An ordered set of named variables with the box encoding described above."""

    def __init__(self, variables):
        self.variables = list(variables)
        if not self.variables:
            raise ScatterfitError("a search space needs at least one variable")
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ScatterfitError(f"variable names must be unique, got {names}")
        lo, hi, self.slices = [], [], []
        for v in self.variables:
            start = len(lo)
            if isinstance(v, Real):
                lo.append(float(v.low)), hi.append(float(v.high))
            elif isinstance(v, Integer):
                lo.append(int(v.low) - 0.499), hi.append(int(v.high) + 0.499)
            elif isinstance(v, Choice):
                lo.extend([0.0] * len(v.options)), hi.extend([1.0] * len(v.options))
            else:
                raise ScatterfitError(f"unknown variable type {type(v).__name__}")
            self.slices.append(slice(start, len(lo)))
        self.low, self.high = np.array(lo), np.array(hi)

    @property
    def dim(self) -> int:
        return len(self.low)

    def discrete_coordinates(self) -> np.ndarray:
        """Indices of the box coordinates that encode Integer and Choice variables."""
        idx = [np.arange(sl.start, sl.stop) for v, sl in zip(self.variables, self.slices) if not isinstance(v, Real)]
        return np.concatenate(idx) if idx else np.zeros(0, dtype=int)

    def decode(self, x: np.ndarray) -> dict:
        """Candidate {name: value} of a point x [dim] of the box."""
        out = {}
        for v, sl in zip(self.variables, self.slices):
            part = x[sl]
            if isinstance(v, Real):
                out[v.name] = float(np.clip(part[0], v.low, v.high))
            elif isinstance(v, Integer):
                out[v.name] = int(np.clip(np.rint(part[0]), v.low, v.high))
            else:
                out[v.name] = v.options[int(np.argmax(part))]
        return out

    def encode(self, candidate: dict, rng: np.random.Generator | None = None) -> np.ndarray:
        """A point of the box that decodes to ``candidate`` (choices: the option's coordinate highest)."""
        x = np.zeros(self.dim)
        for v, sl in zip(self.variables, self.slices):
            if v.name not in candidate:
                raise ScatterfitError(f"candidate lacks variable '{v.name}'")
            value = candidate[v.name]
            if isinstance(v, Choice):
                if value not in v.options:
                    raise ScatterfitError(f"'{value}' is not an option of '{v.name}' {list(v.options)}")
                part = np.full(len(v.options), 0.25) if rng is None else rng.uniform(0, 0.5, len(v.options))
                part[v.options.index(value)] = 0.75
                x[sl] = part
            else:
                x[sl] = float(value)
        return x

    def key(self, candidate: dict) -> tuple:
        """Hashable identity of a candidate: discrete values exactly, reals to 1e-9 of their range."""
        out = []
        for v in self.variables:
            value = candidate[v.name]
            if isinstance(v, Real):
                value = round((value - v.low) / (v.high - v.low), 9)
            out.append(value)
        return tuple(out)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high)

    def stratified_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """[n, dim] Latin-hypercube points: each number's range cut into n strata, one point per stratum in
        random order; each choice's options dealt round-robin in random order (all appear when n ≥ options)."""
        x = np.stack([self.sample(rng) for _ in range(n)])
        for v, sl in zip(self.variables, self.slices):
            if isinstance(v, Choice):
                k = len(v.options)
                picks = np.resize(rng.permutation(k), n)
                rng.shuffle(picks)
                part = rng.uniform(0.0, 0.5, (n, k))
                part[np.arange(n), picks] = rng.uniform(0.5, 1.0, n)
                x[:, sl] = part
            else:
                lo, hi = self.low[sl.start], self.high[sl.start]
                strata = (rng.permutation(n) + rng.random(n)) / n
                x[:, sl.start] = lo + strata * (hi - lo)
        return x

    @classmethod
    def from_config(cls, table: dict) -> "SearchSpace":
        """From a TOML table {name = {kind = "real"|"integer"|"choice", low, high | options}}."""
        variables = []
        for name, spec in table.items():
            if not isinstance(spec, dict) or "kind" not in spec:
                raise ScatterfitError(f"search variable '{name}': needs a table with kind = real | integer | choice")
            kind = spec["kind"]
            try:
                if kind == "real":
                    variables.append(Real(name, float(spec["low"]), float(spec["high"])))
                elif kind == "integer":
                    variables.append(Integer(name, int(spec["low"]), int(spec["high"])))
                elif kind == "choice":
                    variables.append(Choice(name, tuple(spec["options"])))
                else:
                    raise ScatterfitError(f"search variable '{name}': unknown kind '{kind}' (real, integer, choice)")
            except KeyError as exc:
                raise ScatterfitError(f"search variable '{name}': missing {exc}") from None
        return cls(variables)

"""The package's import layers (docs: DESIGN.md): no module imports a layer above its own, and no two modules
import each other, directly or through others (imports inside functions count too)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scatterfit"
LAYERS = [("errors", "structure"), ("io", "scattering", "datasets"), ("energy", "constraints", "analysis"),
          ("loss",), ("optim",), ("solve",), ("report",), ("config",),
          ("commands", "cli", "__main__", "service", "testing")]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The scatterfit modules a file imports ("from pkg import name" counts as pkg.name when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scatterfit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scatterfit"):
            for alias in node.names:
                candidate = PACKAGE.parent.joinpath(*f"{node.module}.{alias.name}".split("."))
                is_module = candidate.with_suffix(".py").is_file() or candidate.is_dir()
                found.add(f"{node.module}.{alias.name}" if is_module else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{m} imports {n}" for m, targets in _graph().items() for n in sorted(targets)
              if _layer(m) is not None and _layer(n) is not None and _layer(n) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph or target == module:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_every_package_folder_is_placed_in_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert (folders | modules) - set(RANK) == set()

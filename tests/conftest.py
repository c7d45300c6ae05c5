import importlib.util
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def cmi_file(rel: str) -> Path:
    spec = importlib.util.find_spec("diffpy.cmi")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("diffpy.cmi (example data wheel) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "docs" / "examples" / rel
    if not path.is_file():
        pytest.skip(f"{rel} not found in diffpy.cmi")
    return path


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"../shared/data/{name} is not present on this machine")
    return path

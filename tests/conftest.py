from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def cmi_file(rel: str) -> Path:
    from scatterfit.datasets import cmi_example
    from scatterfit.errors import ScatterfitError

    try:
        return cmi_example(rel)
    except ScatterfitError as exc:
        pytest.skip(str(exc))


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"../shared/data/{name} is not present on this machine")
    return path

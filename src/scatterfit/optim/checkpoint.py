"""The one checkpoint format of refinements and searches: a torch.save'd dict written atomically (temporary file,
then rename) with its kind and the problem's fingerprint, read back with one clear line for every problem."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from scatterfit.errors import ScatterfitError


def save_checkpoint(path: Path, kind: str, fingerprint: str | None, payload: dict) -> None:
    """Write ``payload`` (tensors, numbers, plain Python objects) as a ``kind`` checkpoint ("refine" or "search")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**payload, "kind": kind, "fingerprint": fingerprint}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, kind: str, fingerprint: str | None) -> dict:
    """The payload of a ``kind`` checkpoint.

    Raises:
        ScatterfitError: the file is missing, unreadable, of another kind, or written for another problem (its
            fingerprint differs from ``fingerprint``, when one is given).
    """
    path = Path(path)
    if not path.is_file():
        raise ScatterfitError(f"cannot resume: checkpoint {path} not found")
    try:
        saved = torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 (any unreadable file is one message)
        raise ScatterfitError(f"{path}: not a readable scatterfit checkpoint ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("kind") != kind:
        raise ScatterfitError(f"{path}: not a scatterfit {kind} checkpoint")
    if fingerprint is not None and saved.get("fingerprint") != fingerprint:
        raise ScatterfitError(f"{path}: the checkpoint was written by a different config or data; run without "
                              "--resume (or with another --out) to start afresh")
    return saved

"""Safe output folders: checked before any computation, locked while a run writes, and filled atomically.

A result set is written into a staging folder inside the output folder first; only when every file is complete
are they moved into place, with ``summary.json`` (or another marker file) moved last. A run killed while writing
therefore leaves either the previous complete set (staging not yet committed) or a set without its marker, which
the next run replaces; never a 0-byte file, and never new curves beside an older run's summary.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from scatterfit.errors import ScatterfitError

LOCK_NAME = ".scatterfit.lock"
MANIFEST_KEY = "files"


def check_output_dir(path: str | Path, *, what: str = "output folder") -> Path:
    """Make sure ``path`` is (or can become) a writable folder, before anything is computed.

    Raises:
        ScatterfitError: the path is a file, lies under a file, or cannot be written.
    """
    out = Path(path)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == out else f"lies under the file {parent}"
            raise ScatterfitError(f"{out}: the {what} {where}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ScatterfitError(f"{out}: cannot write to the {what} ({exc.strerror or exc})") from None
    return out


def check_output_file(path: str | Path, *, what: str = "output file") -> Path:
    """The folder of ``path`` must exist and be writable, and ``path`` must not be a folder."""
    p = Path(path)
    if p.is_dir():
        raise ScatterfitError(f"{p}: the {what} is a folder")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ScatterfitError(f"{p}: the folder of the {what} does not exist ({parent})")
    if not os.access(parent, os.W_OK):
        raise ScatterfitError(f"{p}: cannot write to the folder {parent}")
    return p


def atomic_write(path: str | Path, writer) -> Path:
    """Write a single file by ``writer(tmp_path)`` into a temporary name beside it, then rename it into place."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


class OutputLock:
    """An exclusive lock on an output folder while one run writes to it (a second run into the same folder is
    refused with a clear message, instead of the two overwriting each other).

    The lock is a file holding the owner's process id; a lock left by a process that no longer runs is taken
    over.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def __enter__(self) -> "OutputLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _lock_owner(self.path)
                if owner is not None and _alive(owner):
                    raise ScatterfitError(f"{self.path.parent}: another scatterfit run (process {owner}) is writing to "
                                          "this output folder; wait for it or choose another --out") from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return self
        raise ScatterfitError(f"{self.path}: cannot take the output folder's lock")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultSet:
    """Files of one result, staged and committed together.

    Use ``stage(name)`` for the path to write each file to, then ``commit(marker_name, marker_dict)``: the marker
    (a JSON file listing every file of the set under "files") is written last. Files of the previous set that
    the new set does not have are removed, so no stale curve survives beside a new summary.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=".staging-"))
        self.names: list[str] = []

    def stage(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ScatterfitError(f"unsafe output file name '{name}'")
        self.names.append(name)
        return self.staging / name

    def commit(self, marker_name: str, marker: dict) -> None:
        marker = {**marker, MANIFEST_KEY: sorted(set(self.names) | {marker_name})}
        (self.staging / marker_name).write_text(json.dumps(marker, indent=2, default=str))
        old_marker = self.folder / marker_name
        old = _manifest(old_marker)
        old_marker.unlink(missing_ok=True)  # from here on the folder holds no complete set until the new marker
        for name in self.names:
            src = self.staging / name
            if src.exists():
                os.replace(src, self.folder / name)
        for name in old - set(self.names) - {marker_name}:
            if "/" not in name and not name.startswith("."):
                (self.folder / name).unlink(missing_ok=True)
        os.replace(self.staging / marker_name, self.folder / marker_name)
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _manifest(marker: Path) -> set:
    try:
        return set(json.loads(marker.read_text()).get(MANIFEST_KEY, []))
    except (OSError, ValueError, AttributeError):
        return set()

"""Helpers and fixtures of the service tests, loaded as a plugin by tests/conftest.py (a second conftest.py would
shadow that one's module name): a real `scatterfit serve` on a free localhost port, started as its own process,
and small jobs for it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

TOKEN = "test-token-0123456789"

NI_CONFIG = """
[structure]
bulk = { name = "Ni", crystalstructure = "fcc", a = 3.52, cubic = true }
[[datasets]]
name = "Ni"
file = "ni.gr"
[[terms]]
kind = "data"
dataset = "Ni"
model = "pdf"
xmin = 1.5
xmax = 12.0
[parameters]
free = ["lattice", "biso", "qdamp", "delta2"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`scatterfit serve` in a subprocess over ``data_dir``; start(), kill() (SIGKILL) and start() again."""

    def __init__(self, data_dir: Path, workers: int = 1, extra=()):
        self.data_dir, self.workers, self.extra = data_dir, workers, list(extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Server":
        env = {**os.environ, "SCATTERFIT_API_TOKEN": TOKEN}
        self.log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "scatterfit", "serve", "--port", str(self.port),
                                         "--data-dir", str(self.data_dir), "--workers", str(self.workers),
                                         *self.extra], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, (self.data_dir.parent / f"server-{self.port}.log").read_text()
            time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for tests that must leave it without jobs."""
    s = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def ni_file(tmp_path_factory) -> Path:
    """The measured Ni.gr (diffpy.cmi), copied to a plain name."""
    from scatterfit.datasets import cmi_example

    path = tmp_path_factory.mktemp("ni") / "ni.gr"
    path.write_bytes(cmi_example("pdf/ch03NiModelling/data/Ni.gr").read_bytes())
    return path


@pytest.fixture(scope="session")
def copper_file(tmp_path_factory) -> Path:
    """A simulated fcc Cu G(r) to 16 Å (Qmax 25 Å⁻¹ in the header, 1 % noise) for small solves."""
    from scatterfit.scattering.pdf import pdf
    from scatterfit.structure.library import candidates

    (truth,) = [c for c in candidates("Cu") if c.label == "fcc Cu"]
    s = truth.structure().with_uiso(0.008)
    r = torch.arange(0.5, 16.0, 0.02, dtype=torch.float64)
    g = pdf(s, r, qdamp=0.03, qmax=25.0, delta2=1.0).numpy()
    g = g + 0.01 * np.abs(g).max() * np.random.default_rng(0).standard_normal(len(g))
    path = tmp_path_factory.mktemp("cu") / "cu.gr"
    np.savetxt(path, np.column_stack([r.numpy(), g]), header="qmax = 25.0\n#### start data\n#S 1\n#L r G", comments="")
    return path


def submit(client: httpx.Client, files, request: dict) -> httpx.Response:
    import json

    opened = [("files", (Path(f).name, Path(f).read_bytes())) for f in files]
    return client.post("/v1/jobs", data={"request": json.dumps(request)}, files=opened)


def wait(client: httpx.Client, job_id: str, timeout: float = 240, states=("done", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {status['state']} after {timeout} s")

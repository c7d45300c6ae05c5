"""A client of `scatterfit serve`, for lab scripts:

    from scatterfit.service.client import Client
    client = Client("http://127.0.0.1:8765", token="...")
    solution = client.wait(client.submit(["sample.gr"], composition="Ni"))["solution"]

Errors from the server (4xx) and an unreachable server are raised as ScatterfitError with the server's one-line
reason.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scatterfit.errors import ScatterfitError

FINAL = ("done", "failed", "cancelled")


class Client:
    """Args:
        url: the server, e.g. "http://127.0.0.1:8765".
        token: the API token (default: the environment variable SCATTERFIT_API_TOKEN).
        timeout: seconds per HTTP call.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        import httpx

        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get("SCATTERFIT_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs):
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ScatterfitError(f"{self.url}: cannot reach the scatterfit server ({exc})") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise ScatterfitError(f"{self.url}{path}: {response.status_code} {detail}")
        return response

    def submit(self, files, composition: str | None = None, *, kind: str = "solve", config: str | None = None,
               label: str = "", **hints) -> str:
        """Queue a job; returns its id. ``files``: data files (and candidate CIFs); a solve needs
        ``composition`` (hints: qmax, qmin, budget, radiation, qdamp, qbroad, density, in_solution,
        temperature), a refine the ``config`` TOML text naming the files."""
        request = {"kind": kind, "label": label, **hints}
        if kind == "solve":
            request["composition"] = composition
        else:
            request["config"] = Path(config).read_text() if config and Path(config).is_file() else config
        opened = []
        try:
            for f in files:
                path = Path(f)
                if not path.is_file():
                    raise ScatterfitError(f"{path}: no such file")
                opened.append(("files", (path.name, open(path, "rb"))))
            response = self._call("POST", "/v1/jobs", data={"request": json.dumps(request)}, files=opened)
        finally:
            for _, (_, handle) in opened:
                handle.close()
        return response.json()["id"]

    def status(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}").json()

    def jobs(self, **filters) -> list[dict]:
        return self._call("GET", "/v1/jobs", params={k: v for k, v in filters.items() if v is not None}).json()["jobs"]

    def solution(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}/solution").json()

    def cancel(self, job_id: str) -> dict:
        return self._call("DELETE", f"/v1/jobs/{job_id}").json()

    def archive(self, job_id: str, path) -> Path:
        path = Path(path)
        path.write_bytes(self._call("GET", f"/v1/jobs/{job_id}/archive").content)
        return path

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 1.0, on_status=None) -> dict:
        """Poll until the job ends; returns its status, with "solution" when it is done."""
        t0 = time.monotonic()
        while True:
            status = self.status(job_id)
            if on_status is not None:
                on_status(status)
            if status["state"] in FINAL:
                if status["state"] == "done":
                    status["solution"] = self.solution(job_id)
                return status
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise ScatterfitError(f"job {job_id} still {status['state']} after {timeout:.0f} s")
            time.sleep(poll)

    def close(self) -> None:
        self.http.close()

"""`scatterfit serve` under load, on this machine:

1. latency of GET /v1/jobs/{id} from 50 concurrent pollers, each asking every 0.5 s (100 calls/s offered, a lab
   scheduler polls once a second or less), while two solves run (2 workers); and the throughput when the 50
   ask back to back (closed loop: then the latency is 50 / throughput, by Little's law);
2. the overhead of a solve submitted through the service (submission to done, as a client polling every 0.2 s
   sees it) against the same solve on the command line, run one after the other on an idle machine.

The solve is `--composition Ni` on the measured Ni.gr (diffpy.cmi). Prints a table; issue 17's targets: p99
under 100 ms, overhead under 5 %.

    python benchmarks/service.py [--pollers 50] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "benchmark-token"
WARM_UP = 2.0  # s of polling before the measurement (the 50 clients connect)


def start_server(data_dir: Path, port: int, workers: int) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "SCATTERFIT_API_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "scatterfit", "serve", "--port", str(port), "--data-dir",
                                str(data_dir), "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def submit(client, path: Path) -> str:
    with open(path, "rb") as f:
        r = client.post("/v1/jobs", data={"request": json.dumps({"kind": "solve", "composition": "Ni"})},
                        files=[("files", (path.name, f))])
    r.raise_for_status()
    return r.json()["id"]


def wait_done(client, job: str, poll: float = 0.2) -> dict:
    while (status := client.get(f"/v1/jobs/{job}").json())["state"] not in ("done", "failed", "cancelled"):
        time.sleep(poll)
    return status


async def pollers(url: str, jobs: list, n: int, seconds: float, interval: float) -> list[float]:
    """Latencies (s) of ``n`` pollers asking for a job's status every ``interval`` s (0: back to back)."""
    import random

    import httpx

    latencies = []
    warm = time.perf_counter() + WARM_UP  # connections opened, then measured
    stop = warm + seconds

    async def one(k: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
            await asyncio.sleep(random.uniform(0, interval))
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await c.get(f"/v1/jobs/{jobs[k % len(jobs)]}")
                if t0 > warm:
                    latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200
                await asyncio.sleep(max(interval - (time.perf_counter() - t0), 0.0))

    await asyncio.gather(*(one(k) for k in range(n)))
    return latencies


def main() -> None:
    import httpx
    import numpy as np

    from scatterfit.datasets import cmi_example

    parser = argparse.ArgumentParser()
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scatterfit-bench-"))
    data = work / "Ni.gr"
    data.write_bytes(cmi_example("pdf/ch03NiModelling/data/Ni.gr").read_bytes())
    headers = {"Authorization": f"Bearer {TOKEN}"}

    # 1. status calls under load
    port = 8900 + os.getpid() % 90
    server = start_server(work / "load", port, workers=2)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            jobs = [submit(c, data) for _ in range(6)]  # two run at a time, four wait: work through the measurement
            while sum(c.get(f"/v1/jobs/{j}").json()["state"] == "running" for j in jobs) < 2:
                time.sleep(0.1)
            latencies = np.array(asyncio.run(pollers(url, jobs, args.pollers, args.seconds, 0.5)))
            closed = np.array(asyncio.run(pollers(url, jobs, args.pollers, args.seconds, 0.0)))
            running = sum(c.get(f"/v1/jobs/{j}").json()["state"] == "running" for j in jobs)
            for j in jobs:
                wait_done(c, j)
    finally:
        server.terminate()
        server.wait()

    # 2. one solve through the service against the command line, alternately, REPEATS times each (medians)
    server = start_server(work / "one", port + 1, workers=1)
    clis, services, own = [], [], []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port + 1}", headers=headers, timeout=30) as c:
            for k in range(args.repeats):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "scatterfit", "solve", str(data), "--composition", "Ni",
                                "--out", str(work / f"cli{k}")], check=True, capture_output=True)
                clis.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                status = wait_done(c, submit(c, data))
                services.append(time.perf_counter() - t0)
                own.append(services[-1] - (status["finished"] - status["started"]))  # queueing and reporting
    finally:
        server.terminate()
        server.wait()
    cli, service = float(np.median(clis)), float(np.median(services))

    ms = latencies * 1e3
    print("\n| measurement | value | target |\n|---|---|---|")
    print(f"| status calls, {args.pollers} pollers every 0.5 s for {args.seconds:.0f} s ({running} jobs running at "
          "the end) | "
          f"{len(ms)} calls | – |")
    print(f"| status latency p50 / p90 / p99 / max | {np.percentile(ms, 50):.1f} / {np.percentile(ms, 90):.1f} / "
          f"{np.percentile(ms, 99):.1f} / {ms.max():.1f} ms | p99 < 100 ms |")
    cms = closed * 1e3
    print(f"| {args.pollers} pollers back to back: throughput; latency p50 / p99 | {len(cms) / args.seconds:.0f} "
          f"calls/s; {np.percentile(cms, 50):.1f} / {np.percentile(cms, 99):.1f} ms | – |")
    print(f"| solve Ni.gr, command line (median of {args.repeats}) | {cli:.1f} s "
          f"({', '.join(f'{v:.1f}' for v in clis)}) | – |")
    print(f"| solve Ni.gr, through the service, submit to done (median of {args.repeats}) | {service:.1f} s "
          f"({', '.join(f'{v:.1f}' for v in services)}) | – |")
    print(f"| overhead of the service | {100 * (service / cli - 1):+.1f} % | < 5 % |")
    print(f"| the service's own part: submit to start plus end to seen done (median) | {np.median(own):.2f} s "
          f"({100 * np.median(own) / cli:.1f} % of the command line's time) | – |")


if __name__ == "__main__":
    main()

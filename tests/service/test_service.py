"""`scatterfit serve` over real HTTP: jobs from several clients, the queue's order and its worker bound, cancel,
a server killed with SIGKILL in the middle of a solve and restarted (the job resumes from its checkpoint and ends
with the same result as an uninterrupted run), the client and its commands, and every bad request's 4xx."""

import json
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from servers import NI_CONFIG, TOKEN, Server, submit, wait


def _refine(client, ni_file, label=""):
    return submit(client, [ni_file], {"kind": "refine", "config": NI_CONFIG, "label": label})


def test_refine_jobs_from_concurrent_clients_keep_the_queue_order_and_the_worker_bound(tmp_path, ni_file):
    server = Server(tmp_path / "data", workers=2).start()
    try:
        ids, errors = {}, []

        def one(k: int) -> None:
            with server.client() as c:
                time.sleep(0.15 * k)  # submitted in the order of k
                r = _refine(c, ni_file, label=f"client {k}")
                if r.status_code != 201:
                    errors.append(r.text)
                else:
                    ids[k] = r.json()["id"]

        threads = [threading.Thread(target=one, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(ids) == 4
        most = 0
        with server.client() as c:
            while True:
                jobs = c.get("/v1/jobs").json()["jobs"]
                most = max(most, sum(j["state"] == "running" for j in jobs))
                if all(j["state"] in ("done", "failed") for j in jobs):
                    break
                time.sleep(0.1)
            jobs = {j["id"]: j for j in c.get("/v1/jobs", params={"kind": "refine"}).json()["jobs"]}
            assert [jobs[ids[k]]["state"] for k in range(4)] == ["done"] * 4
            assert most <= 2
            started = [jobs[ids[k]]["started"] for k in range(4)]
            assert started == sorted(started)  # first in, first out
            summary = c.get(f"/v1/jobs/{ids[0]}/solution").json()
            assert summary["terms"]["Ni"]["rw"] < 0.05
            assert c.get("/v1/jobs", params={"state": "done", "limit": 2}).json()["jobs"].__len__() == 2
            status = c.get(f"/v1/jobs/{ids[3]}").json()
            assert status["label"] == "client 3" and status["progress"]["step"] == "done"
            names = c.get(f"/v1/jobs/{ids[0]}/files").json()["files"]
            assert "refined.cif" in names and "fit_Ni.png" in names
            assert c.get(f"/v1/jobs/{ids[0]}/files/refined.cif").text.startswith("data_")
            archive = tmp_path / "job.zip"
            archive.write_bytes(c.get(f"/v1/jobs/{ids[0]}/archive").content)
            with zipfile.ZipFile(archive) as z:
                assert f"{ids[0]}/out/summary.json" in z.namelist() and f"{ids[0]}/inputs/ni.gr" in z.namelist()
    finally:
        server.stop()


def test_cancel_a_queued_and_a_running_job(server, ni_file, copper_file):
    with server.client() as c:
        running = submit(c, [copper_file], {"kind": "solve", "composition": "Cu"}).json()["id"]
        queued = _refine(c, ni_file).json()["id"]
        wait(c, running, 60, states=("running",))
        assert c.delete(f"/v1/jobs/{queued}").json()["state"] == "cancelled"
        c.delete(f"/v1/jobs/{running}")
        assert wait(c, running, 30)["state"] == "cancelled"
        assert c.delete(f"/v1/jobs/{running}").status_code == 409
        assert c.get(f"/v1/jobs/{running}/solution").status_code == 409
    out = server.data_dir / "jobs" / running / "out"
    assert not (out / "solution.json").exists()
    assert subprocess.run(["pgrep", "-f", str(out)], capture_output=True).returncode == 1  # its process is gone


def test_a_solve_killed_with_the_server_resumes_and_ends_as_an_uninterrupted_run(tmp_path, copper_file):
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, "-m", "scatterfit", "solve", str(copper_file), "--composition",
                           "Cu", "--out", str(reference)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    server = Server(tmp_path / "data").start()
    try:
        with server.client() as c:
            job = submit(c, [copper_file], {"kind": "solve", "composition": "Cu"}).json()["id"]
            checkpoint = server.data_dir / "jobs" / job / "out" / "solve_checkpoint.pt"
            deadline = time.monotonic() + 120
            while not checkpoint.exists():  # at least one hypothesis refined and saved
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.get(f"/v1/jobs/{job}").json()["state"] == "running"
        server.kill()
        time.sleep(1.0)
        assert subprocess.run(["pgrep", "-f", f"jobs/{job}/out"], capture_output=True).returncode == 1
        server.start()
        with server.client() as c:
            status = wait(c, job, 240)
            assert status["state"] == "done", status
            assert status["attempts"] == 2
            got = c.get(f"/v1/jobs/{job}/solution").json()
        log = (server.data_dir / "jobs" / job / "log.txt").read_text()
        lines = [line.split(":")[0].strip() for line in log.splitlines() if line.startswith("  crystal ")]
        assert len(lines) == len(set(lines)), log  # no hypothesis refined twice: the first run's were kept
    finally:
        server.stop()
    want = json.loads((reference / "solution.json").read_text())
    assert [(h["label"], h["rw"]) for h in got["hypotheses"]] == [(h["label"], h["rw"]) for h in want["hypotheses"]]
    assert got["hypotheses"][0]["label"] == "fcc Cu"


def test_the_client_and_its_commands(server, copper_file, tmp_path):
    from scatterfit.service.client import Client

    client = Client(server.url, token=TOKEN)
    job = client.submit([copper_file], composition="Cu", label="three lines", budget=600)
    status = client.wait(job, timeout=240, poll=0.5)
    assert status["state"] == "done" and status["solution"]["hypotheses"][0]["label"] == "fcc Cu"
    assert client.jobs(state="done")[0]["id"] == job
    token = tmp_path / "token"
    token.write_text(TOKEN)
    sub = subprocess.run([sys.executable, "-m", "scatterfit", "submit", str(copper_file), "--composition", "Cu",
                          "--server", server.url, "--token-file", str(token), "--budget", "1"],
                         capture_output=True, text=True)
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip()
    shown = subprocess.run([sys.executable, "-m", "scatterfit", "status", job, "--server", server.url, "--token-file",
                            str(token), "--wait"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{job}: done") and "best: fcc Cu" in shown.stdout
    wrong = subprocess.run([sys.executable, "-m", "scatterfit", "status", job, "--server", server.url],
                           capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert wrong.returncode == 2 and "401" in wrong.stderr and "Traceback" not in wrong.stderr


def _files_left(server) -> list:
    return sorted(p.name for p in (server.data_dir / "jobs").iterdir())


@pytest.mark.parametrize("case", ["no-token", "wrong-token", "not-json", "unknown-kind", "unknown-key", "no-files",
                                  "binary", "wrong-type", "path-trick", "dotdot", "same-name", "bad-composition",
                                  "bad-qmax", "bad-qdamp", "bad-radiation", "bad-density-unit", "bad-density",
                                  "bad-in-solution", "bad-qmin", "bad-temperature",
                                  "unreadable-data", "config-path",
                                  "config-calculator", "config-unknown-file", "config-invalid"])
def test_bad_requests_get_a_4xx_and_leave_nothing_behind(shared_server, ni_file, case):
    server = shared_server
    good = {"kind": "solve", "composition": "Ni"}
    data = ni_file.read_bytes()
    cases = {
        "no-token": (None, good, [("ni.gr", data)], 401),
        "wrong-token": ("wrong", good, [("ni.gr", data)], 401),
        "not-json": (TOKEN, "{kind: solve", [("ni.gr", data)], 422),
        "unknown-kind": (TOKEN, {"kind": "rm -rf"}, [("ni.gr", data)], 422),
        "unknown-key": (TOKEN, {**good, "executor": "dask://evil:8786"}, [("ni.gr", data)], 422),
        "no-files": (TOKEN, good, [], 422),
        "binary": (TOKEN, good, [("ni.gr", b"\x7fELF\x00\x00\x01")], 415),
        "wrong-type": (TOKEN, good, [("ni.exe", data)], 415),
        "path-trick": (TOKEN, good, [("../../etc/ni.gr", data)], 400),
        "dotdot": (TOKEN, good, [("..ni.gr", data)], 400),
        "same-name": (TOKEN, good, [("ni.gr", data), ("ni.gr", data)], 400),
        "bad-composition": (TOKEN, {"kind": "solve", "composition": "Xx2"}, [("ni.gr", data)], 422),
        "bad-qmax": (TOKEN, {**good, "qmax": -3}, [("ni.gr", data)], 422),
        "bad-qdamp": (TOKEN, {**good, "qdamp": 2.5}, [("ni.gr", data)], 422),
        "bad-radiation": (TOKEN, {**good, "radiation": "gamma"}, [("ni.gr", data)], 422),
        "bad-density-unit": (TOKEN, {**good, "density": "8.9 kg/m3"}, [("ni.gr", data)], 422),
        "bad-density": (TOKEN, {**good, "density": [8.9]}, [("ni.gr", data)], 422),
        "bad-in-solution": (TOKEN, {**good, "in_solution": "yes"}, [("ni.gr", data)], 422),
        "bad-qmin": (TOKEN, {**good, "qmax": 20, "qmin": 25}, [("ni.gr", data)], 422),
        "bad-temperature": (TOKEN, {**good, "temperature": -20}, [("ni.gr", data)], 422),
        "unreadable-data": (TOKEN, good, [("ni.gr", b"not numbers at all\n")], 422),
        "config-path": (TOKEN, {"kind": "refine", "config": NI_CONFIG.replace('"ni.gr"', '"/etc/passwd"')},
                        [("ni.gr", data)], 422),
        "config-calculator": (TOKEN, {"kind": "refine", "config": NI_CONFIG + '\n[energy]\ncalculator = "os:system"\n'},
                              [("ni.gr", data)], 422),
        "config-unknown-file": (TOKEN, {"kind": "refine", "config": NI_CONFIG.replace('"ni.gr"', '"other.gr"')},
                                [("ni.gr", data)], 422),
        "config-invalid": (TOKEN, {"kind": "refine", "config": NI_CONFIG.replace("[parameters]", "[nonsense]")},
                           [("ni.gr", data)], 422),
    }
    token, request, files, code = cases[case]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    import httpx

    body = request if isinstance(request, str) else json.dumps(request)
    r = httpx.post(f"{server.url}/v1/jobs", headers=headers, data={"request": body},
                   files=[("files", f) for f in files] or None, timeout=30)
    assert r.status_code == code, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail and len(detail.splitlines()) == 1
    assert _files_left(server) == []
    with server.client() as c:
        assert c.get("/v1/jobs").json()["jobs"] == []


def test_oversized_uploads_and_too_many_files_are_refused(tmp_path, ni_file):
    server = Server(tmp_path / "data", extra=["--max-upload-mb", "0.05", "--max-request-mb", "0.5"]).start()
    try:
        with server.client() as c:
            big = submit(c, [ni_file], {"kind": "solve", "composition": "Ni"})  # Ni.gr is about 0.1 MB
            assert big.status_code == 413 and "larger than" in big.json()["detail"]
            boundary = "b0undary"
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.gr"\r\n\r\n').encode()

            def chunked():  # no Content-Length: counted as it arrives
                yield head
                for _ in range(64):
                    yield b"1.0 2.0\n" * 4096

            huge = c.post("/v1/jobs", content=chunked(),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
            many = c.post("/v1/jobs", data={"request": json.dumps({"kind": "solve", "composition": "Ni"})},
                          files=[("files", (f"d{k}.gr", b"1 2\n")) for k in range(17)])
            assert many.status_code == 413
            assert c.get("/v1/jobs/0123456789abcdef").status_code == 404
            assert c.get("/v1/jobs/..%2F..%2Fetc").status_code in (404, 422)
            assert c.get("/v1/jobs/0123456789abcdef/files/..%2Fjobs.sqlite").status_code in (404, 422)
        assert _files_left(server) == []
    finally:
        server.stop()


def test_the_server_refuses_to_start_without_a_token(tmp_path):
    env = {"PATH": "/usr/bin"}
    base = [sys.executable, "-m", "scatterfit", "serve", "--data-dir", str(tmp_path / "d"), "--port", "1"]
    done = subprocess.run(base, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "no API token" in done.stderr
    done = subprocess.run(base + ["--no-auth", "--host", "0.0.0.0"], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "only on localhost" in done.stderr


def test_the_queue_database_is_migrated_from_its_first_schema(tmp_path):
    import sqlite3

    from scatterfit.service.store import MIGRATIONS, SCHEMA_VERSION, JobStore

    db = sqlite3.connect(tmp_path / "jobs.sqlite")
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO jobs (id, kind, state, request, created) VALUES ('0123456789abcdef', 'solve', 'running', "
               "'{\"composition\": \"Ni\"}', 1.0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = JobStore(tmp_path / "jobs.sqlite")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.requeue_orphans() == ["0123456789abcdef"]
    job = store.claim()
    assert job.request == {"composition": "Ni"} and job.state == "running" and job.label == "" and job.attempts == 1
    assert store.claim() is None
    store.close()


def test_a_server_stopped_gracefully_queues_its_running_job_again(tmp_path, copper_file):
    from scatterfit.service.store import JobStore

    server = Server(tmp_path / "data").start()
    try:
        with server.client() as c:
            job = submit(c, [copper_file], {"kind": "solve", "composition": "Cu"}).json()["id"]
            wait(c, job, 60, states=("running",))
        server.stop()  # SIGTERM
        store = JobStore(server.data_dir / "jobs.sqlite")
        assert store.get(job).state == "queued"
        store.close()
        server.start()
        with server.client() as c:
            assert wait(c, job, 240)["state"] == "done"
    finally:
        server.stop()


def test_the_job_command_lines():
    from types import SimpleNamespace

    from scatterfit.service.dispatcher import command

    folder = __import__("pathlib").Path("/data/jobs/0123456789abcdef")
    job = SimpleNamespace(kind="solve", request={"data": ["a.gr"], "cifs": ["c.cif"], "composition": "Ti O",
                                                 "qmax": 22.0, "budget": None, "radiation": "neutron",
                                                 "qdamp": 0.045, "density": "4.2 g/cm3", "in_solution": True,
                                                 "qmin": 0.7, "temperature": 85.0})
    args = command(job, folder, "dask://scheduler:8786")
    assert args[3:] == ["solve", f"{folder}/inputs/a.gr", "--composition", "Ti O", "--cif", f"{folder}/inputs/c.cif",
                        "--qmax", "22.0", "--qmin", "0.7", "--radiation", "neutron", "--qdamp", "0.045",
                        "--density", "4.2 g/cm3", "--temperature", "85.0",
                        "--in-solution", "--executor",
                        "dask://scheduler:8786", "--out",
                        f"{folder}/out", "--status-file", f"{folder}/status.json"]
    refine = command(SimpleNamespace(kind="refine", request={"files": ["a.gr"]}), folder, None)
    assert refine[3:5] == ["refine", f"{folder}/inputs/config.toml"] and "--executor" not in refine


def test_a_server_configured_with_a_dask_cluster_runs_the_solves_hypotheses_there(tmp_path, copper_file):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        server = Server(tmp_path / "data", extra=["--executor", cluster.scheduler_address]).start()
        try:
            with server.client() as c:
                job = submit(c, [copper_file], {"kind": "solve", "composition": "Cu"}).json()["id"]
                assert wait(c, job, 240)["state"] == "done"
                solution = c.get(f"/v1/jobs/{job}/solution").json()
        finally:
            server.stop()
    assert solution["workers"] == 2  # the cluster's, not the job's own process
    assert solution["hypotheses"][0]["label"] == "fcc Cu"


def test_a_job_that_cannot_start_fails_with_the_reason_instead_of_staying_running(tmp_path):
    """A claimed job whose folder is missing (before this session a submission inserted its row before moving
    its upload into place, and a dispatcher that claimed it in between left it 'running' forever) fails, and says
    why; a submission now puts the folder in place first."""
    from scatterfit.service.dispatcher import Dispatcher
    from scatterfit.service.store import JobStore

    (tmp_path / "jobs").mkdir()
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.add("refine", {"files": []})
    Dispatcher(store, tmp_path, workers=1).step()
    done = store.get(job.id)
    assert done.state == "failed" and "could not start" in done.error
    store.close()

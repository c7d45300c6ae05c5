"""Runs queued jobs: a bounded pool of worker processes, each one `scatterfit solve` or `scatterfit refine` run
on the job's folder, with --status-file for its progress and --resume when its checkpoint exists (a job
interrupted by a crash resumes, never starts from zero).

A job's folder under the data directory:
    inputs/       the uploaded files (and config.toml of a refine job)
    out/          what the command writes (solution.json, report.html, structures, plots; its checkpoint)
    status.json   the progress record the command rewrites (report/progress.StatusFile)
    log.txt       the command's output

Each worker is its own process group, killed with the server (Linux: PR_SET_PDEATHSIG), and the command locks
its output folder (report/files.OutputLock): a job never runs twice at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from scatterfit.service.store import JobStore

POLL = 0.1  # s between looks at the queue and the workers (a submission wakes the dispatcher at once)
CHECKPOINTS = ("solve_checkpoint.pt", "checkpoint.pt", "search_checkpoint.pt")


NICE = 10  # jobs are batch work: they yield the CPU to the server, so status calls stay fast under load


def _prepare_child() -> None:
    """In the child before exec: get SIGKILL when the server that started it dies (Linux prctl), and run at a
    lower priority than the server — its own session is its own scheduling group where the kernel groups
    sessions (autogroup), so that group's priority is lowered too, else the niceness would not count against the
    server."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass
    os.nice(NICE)
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(NICE))
    except OSError:
        pass


def job_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir) / "jobs" / job_id


def command(job, folder: Path, executor: str | None) -> list[str]:
    """The command line that runs ``job`` in ``folder`` (its request was checked when it was submitted)."""
    request, inputs, out = job.request, folder / "inputs", folder / "out"
    args = [sys.executable, "-m", "scatterfit"]
    if job.kind == "solve":
        args += ["solve", *[str(inputs / name) for name in request["data"]], "--composition", request["composition"]]
        args += [a for name in request.get("cifs", []) for a in ("--cif", str(inputs / name))]
        for key in ("qmax", "qmin", "budget", "radiation", "qdamp", "qbroad", "density", "temperature"):
            if request.get(key) is not None:
                args += [f"--{key}", str(request[key])]
        if request.get("in_solution"):
            args.append("--in-solution")
        if executor:
            args += ["--executor", executor]
    else:
        args += ["refine", str(inputs / "config.toml")]
    args += ["--out", str(out), "--status-file", str(folder / "status.json")]
    if any((out / name).is_file() for name in CHECKPOINTS):
        args.append("--resume")
    return args


def _last_error(log: Path) -> str:
    """The command's one-line error (the last line of its log that says so), or a generic one."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "the job's process ended without a log"
    for line in reversed(lines):
        if line.startswith("error:") or "Error" in line:
            return line[:500]
    return (lines[-1][:500] if lines else "the job's process failed")


class Dispatcher:
    """Takes queued jobs while fewer than ``workers`` run; ends them as they finish; stops cancelled ones.

    Args:
        store: the queue.
        data_dir: where the jobs' folders are.
        workers: at most this many jobs run at once.
        executor: where a solve runs its hypotheses (e.g. "dask://host:8786"); None: in the job's process.
    """

    def __init__(self, store: JobStore, data_dir, workers: int = 1, executor: str | None = None):
        self.store, self.data_dir, self.workers, self.executor = store, Path(data_dir), int(workers), executor
        self.running: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set by a submission: look at the queue now
        self.thread = threading.Thread(target=self._loop, name="scatterfit-dispatcher", daemon=True)

    def start(self) -> None:
        self.store.requeue_orphans()
        self.thread.start()

    def _spawn(self, job) -> None:
        """Start a claimed job's process; a job that cannot start fails with the reason (never stays running)."""
        folder = job_dir(self.data_dir, job.id)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            with open(folder / "log.txt", "ab") as log:
                self.running[job.id] = subprocess.Popen(command(job, folder, self.executor), stdout=log,
                                                        stderr=subprocess.STDOUT, cwd=folder, env=env,
                                                        start_new_session=True, preexec_fn=_prepare_child)
        except OSError as exc:
            self.store.finish(job.id, "failed", f"could not start the job's process: {exc}")

    def _kill(self, job_id: str) -> None:
        process = self.running.pop(job_id, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def step(self) -> None:
        """One look: reap finished workers, stop cancelled jobs, start queued ones."""
        for job_id, process in list(self.running.items()):
            code = process.poll()
            if code is None:
                continue
            del self.running[job_id]
            if code == 0:
                self.store.finish(job_id, "done")
            else:
                self.store.finish(job_id, "failed", _last_error(job_dir(self.data_dir, job_id) / "log.txt"))
        for job_id in self.store.cancel_requested():
            self._kill(job_id)
            self.store.finish(job_id, "cancelled", "cancelled by request")
        while len(self.running) < self.workers and not self.stopping.is_set():
            job = self.store.claim()
            if job is None:
                break
            self._spawn(job)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad look (logged, retried)
                print(f"scatterfit serve: dispatcher: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self.wake.wait(POLL)
            self.wake.clear()

    def stop(self) -> None:
        """Stop taking jobs; the running ones are stopped and queued again (they resume on the next start)."""
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        for job_id in list(self.running):
            self._kill(job_id)
            self.store.requeue(job_id)

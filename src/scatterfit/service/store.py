"""The persistent job queue: one SQLite file under the service's data directory.

A job goes queued → running → done | failed | cancelled. Claiming the next job is one IMMEDIATE transaction, so
two dispatchers can never take the same job; a job left "running" by a server that died is put back in the queue
when the next server starts (its run resumes from its checkpoint). The schema carries its version (PRAGMA
user_version) and is migrated step by step when it changes (MIGRATIONS).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
MIGRATIONS = (
    # version 1: the first queue
    ("CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, request TEXT NOT NULL, "
     "created REAL NOT NULL, started REAL, finished REAL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0)",
     "CREATE INDEX jobs_by_state ON jobs (state, created)"),
    # version 2: cancellation of running jobs, and a label to list jobs by
    ("ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
     "ALTER TABLE jobs ADD COLUMN label TEXT NOT NULL DEFAULT ''"),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class Job:
    """One row of the queue. Times are Unix seconds."""

    id: str
    kind: str
    state: str
    request: dict
    created: float
    started: float | None
    finished: float | None
    error: str | None
    attempts: int
    cancel_requested: bool
    label: str

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "label": self.label, "request": self.request,
                "created": self.created, "started": self.started, "finished": self.finished, "error": self.error,
                "attempts": self.attempts}


_COLUMNS = "id, kind, state, request, created, started, finished, error, attempts, cancel_requested, label"


def _job(row) -> Job:
    return Job(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], bool(row[9]),
               row[10])


def new_job_id() -> str:
    """A fresh job id: 16 hex digits."""
    return secrets.token_hex(8)


class JobStore:
    """The queue in the SQLite file ``path`` (created and migrated on open)."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.migrate()

    def migrate(self) -> int:
        """Bring the file to SCHEMA_VERSION, one version per transaction; returns the version found."""
        with self.lock:
            found = self.db.execute("PRAGMA user_version").fetchone()[0]
            for version in range(found, SCHEMA_VERSION):
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[version]:
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {version + 1}")
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
        return found

    def _one(self, sql: str, args=()) -> Job | None:
        with self.lock:
            row = self.db.execute(sql, args).fetchone()
        return _job(row) if row else None

    def add(self, kind: str, request: dict, label: str = "", job_id: str | None = None) -> Job:
        """A queued job (``job_id``: one from :func:`new_job_id` whose folder is already in place)."""
        job_id = job_id or new_job_id()
        with self.lock:
            self.db.execute("INSERT INTO jobs (id, kind, state, request, created, label) "
                            "VALUES (?, ?, 'queued', ?, ?, ?)", (job_id, kind, json.dumps(request), time.time(), label))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        return self._one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))

    def list(self, state: str | None = None, kind: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs, newest first, filtered by state and kind."""
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        sql = (f"SELECT {_COLUMNS} FROM jobs {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?")
        with self.lock:
            rows = self.db.execute(sql, (*args, int(limit), int(offset))).fetchall()
        return [_job(r) for r in rows]

    def claim(self) -> Job | None:
        """The oldest queued job, now running (None when the queue is empty)."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, rowid "
                                      "LIMIT 1").fetchone()
                if row is not None:
                    self.db.execute("UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1 "
                                    "WHERE id = ?", (time.time(), row[0]))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row else None

    def finish(self, job_id: str, state: str, error: str | None = None) -> None:
        """End a running job as ``state`` (done, failed or cancelled)."""
        with self.lock:
            self.db.execute("UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ? AND state = 'running'",
                            (state, time.time(), error, job_id))

    def requeue(self, job_id: str) -> None:
        """Put a running job back in the queue (a server stopping with work in hand)."""
        with self.lock:
            self.db.execute("UPDATE jobs SET state = 'queued' WHERE id = ? AND state = 'running'", (job_id,))

    def requeue_orphans(self) -> list[str]:
        """Jobs left running by a server that is gone, queued again (to resume from their checkpoints)."""
        with self.lock:
            ids = [r[0] for r in self.db.execute("SELECT id FROM jobs WHERE state = 'running'").fetchall()]
            self.db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'running'")
        return ids

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; mark a running one for the dispatcher to stop. None: no such job."""
        with self.lock:
            self.db.execute("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = 'queued'",
                            (time.time(), job_id))
            self.db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get(job_id)

    def cancel_requested(self) -> list[str]:
        with self.lock:
            rows = self.db.execute("SELECT id FROM jobs WHERE state = 'running' AND cancel_requested = 1").fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self.lock:
            self.db.close()

"""Progress of long runs, attached by the command line as observers (the library itself prints nothing).

On a terminal: a tqdm bar with rate and ETA. Elsewhere (a log file, a pipe, a job service): one plain line per
``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time


class StatusFile:
    """A JSON record of a run's progress, rewritten atomically (for a scheduler or the job service to read):
    {"step", "done", "total", "text", "best_rw", "elapsed_s", "eta_s", "updated"} — at most every ``interval``
    seconds, and always when ``final``."""

    def __init__(self, path, interval: float = 0.5):
        from pathlib import Path

        self.path, self.interval, self.last = Path(path), float(interval), 0.0
        self.t0 = time.perf_counter()

    def write(self, step: str, done: int, total: int, text: str = "", best_rw=None, final: bool = False) -> None:
        import json

        from scatterfit.report.files import atomic_write

        now = time.perf_counter()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.t0
        eta = elapsed * (total - done) / done if done and total >= done else None
        record = {"step": step, "done": int(done), "total": int(total), "text": text, "best_rw": best_rw,
                  "elapsed_s": round(elapsed, 2), "eta_s": None if eta is None else round(eta, 1),
                  "updated": time.time()}
        atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(record)))


class Progress:
    """A bar (terminal) or periodic lines (log) over ``total`` units.

    Args:
        total: expected number of units (steps, candidate evaluations).
        desc: label of the bar.
        unit: unit name.
        stream: where to write (default stderr).
        interval: seconds between lines when the stream is not a terminal.
    """

    def __init__(self, total: int, desc: str, unit: str, stream=None, interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.total, self.desc, self.unit, self.interval = int(total), desc, unit, float(interval)
        self.done, self.text = 0, ""
        self.t0 = self.last = time.perf_counter()
        self.bar = None
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)

    def advance_to(self, done: int, text: str) -> None:
        """Set the count of finished units to ``done`` with a status text."""
        done = min(int(done), self.total)
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix_str(text, refresh=False)
        self.done, self.text = done, text
        now = time.perf_counter()
        if self.bar is None and now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        self.stream.write(f"{self.desc}: {self.done}/{self.total} {self.unit}  {self.text}  "
                          f"{now - self.t0:.0f} s elapsed, ETA {eta:.0f} s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.done:
            self._line(time.perf_counter())


class RefineProgress(Progress):
    """Observer of optim.refine: (stage, step, loss, terms) → bar over the stages' total steps, showing the
    loss and every data term's Rw."""

    def __init__(self, stages, status: StatusFile | None = None, **kwargs):
        self.offsets = [0]
        for st in stages:
            self.offsets.append(self.offsets[-1] + st.steps)
        self.status, self.best_rw = status, None
        super().__init__(self.offsets[-1], "refine", "step", **kwargs)

    def __call__(self, stage: int, step: int, loss: float, terms: dict) -> None:
        rw = [v.breakdown["rw"] for v in terms.values() if "rw" in v.breakdown]
        rws = " ".join(f"Rw[{k}]={v.breakdown['rw']:.4f}" for k, v in terms.items() if "rw" in v.breakdown)
        text = f"stage {stage + 1} loss={loss:.6g} {rws}"
        self.advance_to(self.offsets[stage] + step + 1, text)
        if rw:  # the latest (a stage's range differs from the last one's: an earlier Rw is not comparable)
            self.best_rw = float(sum(rw) / len(rw))
        if self.status is not None:
            self.status.write(f"stage {stage + 1}/{len(self.offsets) - 1}", self.offsets[stage] + step + 1,
                              self.offsets[-1], text, self.best_rw)


class SearchProgress(Progress):
    """Observer of optim.search: (evaluations, generation, best loss, its Rw) → bar over the budget."""

    def __init__(self, budget: int, **kwargs):
        super().__init__(budget, "search", "eval", **kwargs)

    def __call__(self, evaluations: int, generation: int, best: float, rw) -> None:
        self.advance_to(evaluations, f"gen {generation} best {best:.5g} Rw {'–' if rw is None else f'{rw:.4f}'}")

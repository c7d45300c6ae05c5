"""Executors that evaluate a generation of candidates: in this process, in local worker processes, or on a Dask
cluster — the same search code runs on all of them.

    make_executor(None | "serial")         in-process, one after another
    make_executor("processes" | "processes:4")   a local process pool (spawned, one torch thread each)
    make_executor("dask-local:2")           a local Dask cluster of 2 single-threaded worker processes
    make_executor("dask://host:8786")       an existing Dask scheduler
    make_executor("ray-local:2")            a local Ray runtime of 2 single-threaded workers (optional extra
                                            scatterfit[ray])
    make_executor("ray://host:10001")       an existing Ray cluster (Ray client address)

Each executor has ``map(function, items, on_result=None) -> list`` (results in order; ``on_result(index,
result)`` is called as each one arrives, in the order they finish) and ``close()``; the function and items must
be picklable for every executor but the serial one.
"""

from __future__ import annotations

from scatterfit.errors import ScatterfitError, require

ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""A local worker's environment: one thread per library, set before numba starts its thread pool (idle pool
threads spin, and workers that share the cores then slow each other down)."""


KEEP_BELOW = 2**30  # bytes: allocations up to this come from the heap, and freed memory stays there


def reuse_freed_memory() -> bool:
    """Let glibc keep freed memory for the next allocation instead of returning it to the system: the pair ×
    r-grid arrays of a PDF (hundreds of MB) are otherwise mapped afresh, and zeroed page by page by the kernel,
    at every evaluation — on this 2-core machine a crystal hypothesis spent 15 s of its 20 s in the kernel
    (sys time), and 5 s with this. Sets M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (mallopt) for this process;
    the peak memory is unchanged, but it is kept until the process ends. Called by the command line and by
    local workers; API users may call it once. Returns False where the C library has no mallopt."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, KEEP_BELOW)) and bool(mallopt(m_trim_threshold, 2 * KEEP_BELOW - 1))


def _one_thread_environment() -> None:
    import os

    os.environ.update(ONE_THREAD)


def _single_thread_call(function, item):
    """``function(item)`` with one torch and one numba thread: the workers share the cores."""
    import numba
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    reuse_freed_memory()
    return function(item)


def _gather(finished, index: dict, on_result) -> list:
    """Results in submission order from futures as they finish (``index``: future → position)."""
    out = [None] * len(index)
    for future in finished:
        k = index[future]
        out[k] = future.result()
        if on_result is not None:
            on_result(k, out[k])
    return out


class SerialExecutor:
    workers = 1

    def map(self, function, items, on_result=None) -> list:
        out = []
        for k, item in enumerate(items):
            out.append(function(item))
            if on_result is not None:
                on_result(k, out[-1])
        return out

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of ``workers`` spawned local processes."""

    def __init__(self, workers: int = 2):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.workers = int(workers)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                        initializer=_one_thread_environment)

    def map(self, function, items, on_result=None) -> list:
        from concurrent.futures import as_completed

        futures = {self.pool.submit(_single_thread_call, function, item): k for k, item in enumerate(items)}
        return _gather(as_completed(futures), futures, on_result)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class DaskExecutor:
    """A Dask distributed client: ``address`` of a running scheduler, or a local cluster of ``workers``."""

    def __init__(self, address: str | None = None, workers: int = 2):
        distributed = require("dask.distributed", "the dask executor")
        Client, LocalCluster = distributed.Client, distributed.LocalCluster
        self.cluster = None
        if address is None:
            self.cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                        dashboard_address=None, env=ONE_THREAD)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout=10)
            except OSError as exc:
                raise ScatterfitError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        self.workers = max(len(self.client.scheduler_info().get("workers", {})), 1)

    def map(self, function, items, on_result=None) -> list:
        from dask.distributed import as_completed

        items = list(items)
        futures = self.client.map(_single_thread_call, [function] * len(items), items, pure=False)
        return _gather(as_completed(futures), {f: k for k, f in enumerate(futures)}, on_result)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class RayExecutor:
    """Ray tasks: a local runtime of ``workers`` CPUs, or the cluster at ``address`` (``ray://host:port``)."""

    def __init__(self, address: str | None = None, workers: int = 2):
        ray = require("ray", "the ray executor")
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            try:
                if address is None:
                    ray.init(num_cpus=int(workers), include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ScatterfitError(f"cannot start or reach Ray at {address or 'local'} ({exc})") from None
        self.workers = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self._remote = ray.remote(num_cpus=1)(_single_thread_call)

    def map(self, function, items, on_result=None) -> list:
        function_ref = self.ray.put(function)
        out = self.ray.get([self._remote.remote(function_ref, item) for item in items])
        for k, value in enumerate(out):
            if on_result is not None:
                on_result(k, value)
        return out

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def make_executor(spec=None):
    """An executor from a spec string (see the module docstring) or an object that already has ``map``."""
    if spec is None or spec == "serial":
        return SerialExecutor()
    if hasattr(spec, "map") and hasattr(spec, "close"):
        return spec
    if not isinstance(spec, str):
        raise ScatterfitError(f"executor must be a string such as 'processes:2', got {spec!r}")
    kind, _, arg = spec.partition(":")
    try:
        if kind == "processes":
            return ProcessExecutor(int(arg) if arg else 2)
        if kind == "dask-local":
            return DaskExecutor(None, int(arg) if arg else 2)
        if spec.startswith("dask://") or spec.startswith("tcp://"):
            return DaskExecutor(spec.replace("dask://", "tcp://", 1))
        if kind == "ray-local":
            return RayExecutor(None, int(arg) if arg else 2)
        if spec.startswith("ray://"):
            return RayExecutor(spec)
    except ValueError:
        raise ScatterfitError(f"executor '{spec}': the worker count must be an integer") from None
    raise ScatterfitError(f"unknown executor '{spec}' (serial, processes[:N], dask-local[:N], dask://host:port, "
                          "ray-local[:N], ray://host:port)")

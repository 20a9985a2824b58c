"""Batch-parallel recurrences: independent sequences on separate cores, no per-step sync.

The rows of a batch never interact inside the recurrence, so a large batch is
split into one chunk per thread and each chunk runs its whole time loop on its
own core (the kernels release the GIL).  Compared with letting BLAS thread the
per-step product, nothing waits for anything until the chunks finish, and the
elementwise gate work is split too.  While chunks run, SciPy's BLAS is held at
one thread so the chunks do not oversubscribe the cores.

The input projection and the backward's weight products stay whole, threaded
by BLAS as it sees fit: they are large single GEMMs.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import _blas

# A split costs a thread hand-off (tens of microseconds); below this many
# recurrent multiply-adds per call it cannot pay.  Tuned with fastrnn bench on
# this project's 2-core machines (see the closing notes of the speed issue).
PARALLEL_MIN_MACS = 1 << 22
# Fewer rows than this per chunk make the per-step products too thin to use well.
MIN_ROWS_PER_CHUNK = 2

_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_num_threads(threads: int) -> None:
    """Use at most ``threads`` threads for one call's recurrence (default: every available core).

    Raises
    ------
    TypeError
        ``threads`` is not an integer.
    ValueError
        ``threads`` is less than 1.
    """
    global _threads
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int; got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    _threads = threads


def get_num_threads() -> int:
    """The thread limit for one call's recurrence."""
    return _threads or available_cores()


def batch_chunks(B: int, recurrent_macs: float) -> list[tuple[int, int]] | None:
    """Row ranges that split a batch over threads, or None to run it whole on this thread."""
    chunks = min(get_num_threads(), B // MIN_ROWS_PER_CHUNK)
    if chunks < 2 or recurrent_macs < PARALLEL_MIN_MACS:
        return None
    bounds = [B * k // chunks for k in range(chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, available_cores() - 1), thread_name_prefix="fastrnn")
        return _pool


def run_chunks(steps, args: tuple, chunks: list[tuple[int, int]]) -> None:
    """``steps(*args, b0, b1)`` for every chunk, concurrently; the first on the calling thread."""
    pool = _executor()
    with _blas.single_threaded():
        futures = [pool.submit(steps, *args, b0, b1) for b0, b1 in chunks[1:]]
        steps(*args, *chunks[0])
        for future in futures:
            future.result()


def run(B: int, recurrent_macs: float, total_macs: float, whole, whole_args: tuple,
        steps, steps_args: tuple, before=None, after=None) -> None:
    """Run a cell's kernel: ``whole(*whole_args)`` on one thread of control, or, for a large batch,
    ``before()``, the steps kernel over batch chunks in parallel, then ``after()``."""
    chunks = batch_chunks(B, recurrent_macs)
    if chunks is None:
        _blas.call_kernel(total_macs, whole, *whole_args)
        return
    if before is not None:
        before()
    run_chunks(steps, steps_args, chunks)
    if after is not None:
        after()

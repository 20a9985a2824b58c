"""Interleaved timing of several implementations of the same case.

Shared machines are noisy and their speed drifts, so implementations are
compared only within one run: every round times each implementation once, in
a rotating order, and the figure reported is the median over rounds.

Each library's idle worker threads keep spinning for a while after its call
returns: OpenBLAS's (fastrnn and the NumPy reference) for about 0.1 s, torch's
OpenMP threads and XLA's for several milliseconds.  On a 2-core machine those
spinners take a core from whichever library is timed next.  Measured (LSTM
fwd+bwd, T=32, B=32, H=32, medians of 15): torch took 105 ms right after
fastrnn and 101 ms right after JAX, against 1.0 ms after itself; fastrnn took
4.6 ms right after torch against 1.0 ms after itself.  So before every sample
:func:`settle` waits until no thread of the process is busy, and the runner is
then called untimed until it runs at its steady speed (:func:`warm_up`: its own
threads awake, as they would be in a program that uses only that library).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._blas import openblas_functions


@dataclass
class Timing:
    seconds: float  # median time per call
    samples: list = field(default_factory=list)  # time per call of each round
    calls_per_sample: int = 1


def _time_calls(run: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls


@functools.lru_cache(maxsize=None)
def _openblas_shutdowns() -> tuple:
    """``blas_thread_shutdown_`` of NumPy's and SciPy's OpenBLAS (those that export it)."""
    return tuple(openblas_functions("blas_thread_shutdown_", ("numpy", "scipy")))


def _threads_running() -> int | None:
    """How many of this process's threads, other than the caller, are running or waiting for a
    core right now (state ``R`` in ``/proc/self/task/*/stat``); None where there is no such
    file (not Linux)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    me = str(threading.get_native_id())
    running = 0
    for tid in tasks:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        state = stat.rindex(b")") + 2  # the state follows the name, which may hold spaces or ")"
        running += stat[state:state + 1] == b"R"
    return running


def settle(quantum: float = 0.0005, idle_looks: int = 2, max_wait: float = 0.3) -> float:
    """Wait until no other thread of this process is running (at most ``max_wait`` seconds);
    returns the wait.

    Threads are waited for -- torch's OpenMP, XLA's, and OpenBLAS's when they
    go to sleep within milliseconds (:func:`openblas_spins_briefly`, as under
    ``fastrnn bench``): looks at every thread's state ``quantum`` apart until
    ``idle_looks`` looks in a row find none running.  OpenBLAS's workers with
    their default timeout spin for 103 ms after a product, too long to wait
    for before every sample, so there they are stopped outright; but then the
    next call that sets OpenBLAS's thread count -- each small fastrnn call does
    -- starts a new worker that spins beside it for those 103 ms (see
    :func:`openblas_spins_briefly` for what that cost).

    Why thread states and not the process's CPU time: Linux adds the time of a
    thread running on another core to the process's total only at scheduler
    ticks (4 ms here), so a 2 ms window read 0.02 ms of CPU time while torch's
    OpenMP worker spun through it (``time.process_time`` over ``time.sleep(0.002)``
    right after an LSTM call, three times).  Judged that way, the process looked
    idle while the worker went on spinning for several more milliseconds, and
    fastrnn's LSTM fwd+bwd at T=32, B=1, H=128 was timed beside it at 584-588 us
    a call in ``fastrnn bench`` against 293-303 us without torch in the process
    (two runs each); with this check, 309-322 us beside torch.  Where ``/proc``
    is missing, the CPU time is used over windows of ``CPU_TIME_WINDOW``, long
    enough to span a tick.
    """
    start = time.perf_counter()
    if not openblas_spins_briefly():
        for shutdown in _openblas_shutdowns():
            shutdown()
    by_state = _threads_running() is not None
    idle = 0
    while True:
        if by_state:
            time.sleep(quantum)
            quiet = _threads_running() == 0
        else:
            cpu = time.process_time()
            time.sleep(CPU_TIME_WINDOW)
            quiet = time.process_time() - cpu < 0.2 * CPU_TIME_WINDOW
        idle = idle + 1 if quiet else 0
        now = time.perf_counter()
        if idle >= idle_looks or now - start > max_wait:
            return now - start


CPU_TIME_WINDOW = 0.012  # longer than a scheduler tick at 100 Hz or more; see settle

# OpenBLAS's idle workers spin for 2**OPENBLAS_THREAD_TIMEOUT TSC cycles after their last
# product before they sleep (default 2**28: 103 ms here).  ``fastrnn bench`` runs with 22
# (1.5-1.6 ms here) unless the variable is set; see openblas_spins_briefly.
BRIEF_SPIN_TIMEOUT = 22
BRIEF_SPIN_AT_MOST = 24  # 2**24 cycles: 6 ms here, still short enough to wait for in settle


def openblas_spins_briefly() -> bool:
    """Whether OpenBLAS's workers sleep within milliseconds of their last product: the process
    started with ``OPENBLAS_THREAD_TIMEOUT`` of at most ``BRIEF_SPIN_AT_MOST`` (OpenBLAS reads
    it once, when it loads; values below 4 count as 4).

    Why ``fastrnn bench`` starts that way: with the default timeout :func:`settle` has to stop
    the workers, and a small fastrnn call (one BLAS thread, set through OpenBLAS's thread
    count) then starts a new one, which spins for 103 ms beside it.  The scheduler at times
    queued that worker on the core of the thread being timed for a whole 4 ms tick: fastrnn's
    LSTM fwd+bwd at T=32, B=1, H=128 took 0.98 ms a call instead of 0.30 in such samples, and
    ``fastrnn bench --seq-len 32 256`` reported that case at 594 us in one run and 314 us in
    another (647 us with ``--cell lstm --mode fwdbwd`` added).  A program that uses the library does not stop
    OpenBLAS's workers, so it never pays this.  With the short timeout nothing is stopped:
    fastrnn's threaded products ran as fast as with the default (LSTM T=256 B=32 H=128,
    B=32 H=512 T=32, B=1 H=512 T=256 and RNN B=32 H=512 T=256, fwd and bwd, alternating
    processes, three each: within the noise either way), and the workers are asleep again
    1.5-1.6 ms after a product."""
    try:
        return 0 < int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")) <= BRIEF_SPIN_AT_MOST  # 0: the default
    except ValueError:
        return False


WARM_UP_SLACK = 1.5  # a call within this factor of the runner's fastest counts as warm ...
WARM_UP_LIMIT = 0.010  # ... and untimed calls stop after this many seconds regardless ...
WARM_UP_BELOW = 0.2  # ... and a runner whose calls take this long gets none (see warm_up)


def warm_up(run: Callable[[], None], fastest: float) -> float:
    """Call ``run`` untimed until one call takes at most ``WARM_UP_SLACK`` times ``fastest`` (the
    runner's fastest single call so far), for at most ``WARM_UP_LIMIT`` seconds; returns the new
    fastest.

    Why more than one call: after :func:`settle` the first calls of a runner can be slow for
    reasons of the harness, not of the library.  fastrnn's LSTM forward at T=256, B=32, H=32
    took 6.5-9.7 ms for its first one to three calls after ``settle`` (which stops OpenBLAS's
    workers) once torch had run in the process, against 1.0-1.2 ms from then on; a sample
    taken after a single untimed call sometimes held those slow calls, and ``fastrnn bench
    --cell rnn lstm --batch 32 --hidden 32 --seq-len 256 --mode fwd --impl fastrnn torch``
    reported fastrnn's LSTM at 1.18-4.49 ms in four runs (1.16-1.24 ms with this warm-up,
    three runs).  A program calling one library in a loop runs at the steady speed, which is
    what the samples are meant to measure.

    Calls of ``WARM_UP_BELOW`` seconds or more get no untimed call: such a transient is a few
    per cent of them, and the default grid's largest cases would otherwise spend about as
    long warming up as timing (with it they kept ``fastrnn bench --seq-len 32 256`` under a
    minute: 55-57 s for its 48 cases, against 58-59 s with warm-up calls for all and
    52-54 s with one untimed call before every sample)."""
    if fastest >= WARM_UP_BELOW:
        return fastest
    deadline = time.perf_counter() + WARM_UP_LIMIT
    while True:
        seconds = _time_calls(run, 1)
        fastest = min(fastest, seconds)
        if seconds <= WARM_UP_SLACK * fastest or time.perf_counter() > deadline:
            return fastest


def measure(runners: dict[str, Callable[[], None]], *, min_sample: float = 2e-3, rounds: int = 7,
            budget: float = 1.0, min_rounds: int = 3, cold: tuple = ("reference",)) -> dict[str, Timing]:
    """Median seconds per call of each runner, measured interleaved.

    Each runner is called once first (compilation, caches, allocator warm-up)
    and then timed once; runners named in ``cold`` (plain NumPy, nothing to
    compile) skip the warm-up call.  A runner whose single call already exceeds
    ``budget`` keeps that one timing (a slow reference must not stall the run);
    the others take samples, each repeating the call until it lasts
    ``min_sample`` seconds, for ``rounds`` rounds -- fewer, but at least
    ``min_rounds``, once they have used ``budget`` seconds.  Before each sample
    the process is left to :func:`settle` and the runner is called untimed
    until it runs at its steady speed (:func:`warm_up`), so no implementation is
    timed against another's spinning threads or the harness's own restarts.
    """
    calls = {}
    fastest = {}  # each runner's fastest single call so far (the target of ``warm_up``)
    samples: dict[str, list] = {}
    for name, run in runners.items():
        settle()
        if name not in cold:
            run()
        once = _time_calls(run, 1)
        # A runner that can be repeated gets warm_up's further calls (cold ones excepted, as
        # above), so that neither its target speed nor its calls per sample come from a transient.
        fastest[name] = once if once > budget or name in cold else warm_up(run, once)
        calls[name] = max(1, int(np.ceil(min_sample / max(fastest[name], 1e-9))))
        samples[name] = [once] if once > budget else []
    finished = {name for name in runners if samples[name]}  # too slow to repeat
    spent = dict.fromkeys(runners, 0.0)
    names = list(runners)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        active = [n for n in order if n not in finished and (len(samples[n]) < min_rounds or spent[n] < budget)]
        if not active:
            break
        for name in active:
            settle()
            if name not in cold:
                fastest[name] = warm_up(runners[name], fastest[name])
            seconds = _time_calls(runners[name], calls[name])
            samples[name].append(seconds)
            spent[name] += seconds * calls[name]
    return {name: Timing(float(np.median(s)), s, calls[name]) for name, s in samples.items()}


def gemm_gflops(dtype, n: int = 1024, repeats: int = 5) -> float:
    """This machine's GEMM rate (best of ``repeats``) for an n x n x n ``np.matmul``: the peak figure."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    np.matmul(a, b, out=out)
    best = min(_time_calls(lambda: np.matmul(a, b, out=out), 1) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9

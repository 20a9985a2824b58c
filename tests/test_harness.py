"""The timing harness: interleaved medians, and slow runners timed once instead of stalling the run."""

from __future__ import annotations

import time

import pytest

from fastrnn.bench import harness


def test_medians_and_slow_runners_are_cut_short():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.05)

    timings = harness.measure({"fast": fast, "slow": slow}, min_sample=1e-4, rounds=5, budget=0.02)
    assert calls["slow"] == 2 and len(timings["slow"].samples) == 1  # warm-up + one timed call
    assert timings["slow"].seconds >= 0.05
    assert len(timings["fast"].samples) >= 3
    assert timings["fast"].seconds < timings["slow"].seconds


def _spin_on(seconds: float):
    """A thread spinning outside the GIL for about ``seconds``, as another library's idle worker
    does after its call (a Python-level spinner would give the GIL up every 5 ms and so wake
    the waiting thread late, hiding what the check under test sees); returns (thread, done)."""
    import threading

    import numba

    @numba.njit(nogil=True, cache=False)
    def spin(n):
        x = 1.0
        for _ in range(n):
            x = x * 1.0000001 + 1e-9
        return x

    spin(1000)  # compile first
    calibration = time.perf_counter()
    spin(1_000_000)
    per_iteration = max(time.perf_counter() - calibration, 1e-6) / 1_000_000
    done = threading.Event()

    def run():
        spin(int(seconds / per_iteration))
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    return worker, done


def test_settle_waits_while_a_thread_of_the_process_is_busy():
    """A spinner outside the GIL on another core: the process's CPU time, which Linux brings up to
    date only at scheduler ticks, let the old check pass in a 2 ms window while it still spun."""
    worker, done = _spin_on(0.1)
    time.sleep(0.005)  # let it get going
    waited = harness.settle(max_wait=2.0)
    finished_first = done.is_set()
    worker.join()
    assert finished_first, f"settle returned after {waited * 1e3:.1f} ms while the spinner still ran"
    assert harness.settle(max_wait=2.0) < 2.0  # an idle process settles without hitting the cap


def test_running_threads_are_counted():
    if harness._threads_running() is None:
        pytest.skip("no /proc/self/task here")
    harness.settle(max_wait=2.0)
    worker, done = _spin_on(0.05)
    time.sleep(0.005)
    during = harness._threads_running()
    worker.join()
    assert during >= 1


def test_settle_without_thread_states_uses_cpu_time_over_a_tick(monkeypatch):
    """Where /proc is missing the CPU time is read over windows longer than a tick; still waits."""
    monkeypatch.setattr(harness, "_threads_running", lambda: None)
    worker, done = _spin_on(0.1)
    time.sleep(0.005)
    harness.settle(max_wait=2.0)
    finished_first = done.is_set()
    worker.join()
    assert finished_first


def test_samples_are_taken_after_the_runner_is_warm_again(monkeypatch):
    """A runner whose first calls after each ``settle`` are slow (as fastrnn's were while OpenBLAS
    restarted its workers) is timed at its steady speed, not at the transient; one untimed
    call would leave the second slow call inside the sample."""
    since_settle = {"calls": 0}

    def fake_settle(*args, **kwargs):
        since_settle["calls"] = 0
        return 0.0

    def runner():
        since_settle["calls"] += 1
        time.sleep(0.004 if since_settle["calls"] <= 2 else 0.0002)

    monkeypatch.setattr(harness, "settle", fake_settle)
    timing = harness.measure({"fastrnn": runner}, min_sample=1e-4, rounds=5, budget=1.0)["fastrnn"]
    assert len(timing.samples) == 5
    assert timing.seconds < 0.002  # the steady 0.2 ms call, not the 4 ms transient
    assert max(timing.samples) < 0.002


def test_warm_up_gives_up_after_its_time_limit():
    """A runner that never gets back to its fastest call is warmed for at most WARM_UP_LIMIT."""
    fastest = 1e-6  # an impossible target: every call is slower

    def runner():
        time.sleep(0.002)

    start = time.perf_counter()
    assert harness.warm_up(runner, fastest) == fastest
    assert time.perf_counter() - start < harness.WARM_UP_LIMIT + 0.01


@pytest.mark.parametrize("timeout, stops", [(None, True), ("28", True), ("0", True), ("22", False), ("24", False)])
def test_settle_stops_openblas_only_when_its_workers_spin_long(monkeypatch, timeout, stops):
    """With OpenBLAS's default timeout (or one too long to wait for) settle stops its workers;
    when they sleep within milliseconds it waits instead, so no call has to start them again."""
    if timeout is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", timeout)
    stopped = []
    monkeypatch.setattr(harness, "_openblas_shutdowns", lambda: (lambda: stopped.append(1),))
    harness.settle(max_wait=0.5)
    assert bool(stopped) == stops


def _bench_note(env_timeout):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_timeout
    command = [sys.executable, "-m", "fastrnn", "bench", "--quick", "--impl", "fastrnn", "--cell", "rnn", "--mode", "fwd",
               "--batch", "1", "--hidden", "4", "--seq-len", "3", "--json", os.devnull]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("OpenBLAS workers"))


def test_bench_command_restarts_with_a_brief_openblas_spin():
    assert _bench_note(None) == "OpenBLAS workers sleep after 2^22 cycles idle (OPENBLAS_THREAD_TIMEOUT=22)"


def test_bench_command_keeps_a_timeout_the_user_set():
    assert _bench_note("28").startswith("OpenBLAS workers spin about 0.1 s")
    assert _bench_note("20") == "OpenBLAS workers sleep after 2^20 cycles idle (OPENBLAS_THREAD_TIMEOUT=20)"

"""The timing harness: interleaved medians, and slow runners timed once instead of stalling the run."""

from __future__ import annotations

import time

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


def test_settle_waits_while_a_thread_of_the_process_is_busy():
    import threading

    stop = time.perf_counter() + 0.1

    def spin():  # another library's idle worker, spinning after its call
        while time.perf_counter() < stop:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    waited = harness.settle(max_wait=2.0)
    worker.join()
    assert waited >= 0.05  # not before the spinner had (nearly) stopped
    assert harness.settle(max_wait=2.0) < 2.0  # an idle process settles without hitting the cap


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

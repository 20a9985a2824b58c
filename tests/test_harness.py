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

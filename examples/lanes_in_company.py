"""Two lanes in company: LSTM fwd+bwd with the cores free, beside a busy thread, and called
from several Python threads at once.

The batch split runs by default for large calls (README, "Two lanes"); this script is how the
decision was measured.  Run it with lanes off and on, alternating:

    FASTRNN_LANES=0 python examples/lanes_in_company.py
    python examples/lanes_in_company.py

For each case (T, B, H; float32, D = H) it prints milliseconds per call:

* ``free``: the median and 90th percentile of ``calls`` calls;
* ``busy``: the same beside a thread that spins outside the GIL, as another library's idle
  BLAS worker does after its product;
* ``callers``: wall time over ``callers`` Python threads making ``calls // 3`` calls each
  (rounded up), divided by the number of calls.
"""

from __future__ import annotations

import threading
import time

import numba
import numpy as np

import fastrnn as fr

CASES = ((256, 32, 32), (64, 8, 64), (256, 32, 128), (32, 32, 128))


@numba.njit(nogil=True)  # not cached: the tests load this file under another module name
def _spin(n):
    x = 1.0
    for _ in range(n):
        x = x * 1.0000001 + 1e-9
    return x


def _problem(T, B, H, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w = (rng.standard_normal((4 * H, H)) * 0.1).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)

    def call():
        out = fr.lstm_forward(x, w, w, b)
        fr.lstm_backward(dy, out.cache)

    return call


def _times(call, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * np.median(times), 1e3 * np.percentile(times, 90)


def _with_neighbour(func):
    stop = threading.Event()

    def neighbour():
        while not stop.is_set():
            _spin(2_000_000)  # about 1-2 ms a call, then a look at the flag

    _spin(10)  # compiled before the thread starts
    thread = threading.Thread(target=neighbour)
    thread.start()
    time.sleep(0.02)
    try:
        return func()
    finally:
        stop.set()
        thread.join()


def _callers(call, callers, calls):
    each = -(-calls // 3)

    def work():
        for _ in range(each):
            call()

    threads = [threading.Thread(target=work) for _ in range(callers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1e3 * (time.perf_counter() - start) / (callers * each)


def main(cases=CASES, calls: int = 30, callers: int = 4, verbose: bool = True) -> dict:
    """Return {(T, B, H): {"free": (median, p90), "busy": (median, p90), "callers": ms}}."""
    results = {}
    for T, B, H in cases:
        call = _problem(T, B, H)
        for _ in range(3):
            call()  # compile / load from cache, start Numba's pool
        results[(T, B, H)] = {
            "free": _times(call, calls),
            "busy": _with_neighbour(lambda: _times(call, calls)),
            "callers": _callers(call, callers, calls),
        }
        if verbose:
            r = results[(T, B, H)]
            print(f"T={T:<4d} B={B:<3d} H={H:<4d} free {r['free'][0]:7.2f} (p90 {r['free'][1]:7.2f})  "
                  f"busy {r['busy'][0]:7.2f} (p90 {r['busy'][1]:7.2f})  "
                  f"{callers} callers {r['callers']:7.2f} ms/call", flush=True)
    return results


if __name__ == "__main__":
    import os

    print(f"FASTRNN_LANES={os.environ.get('FASTRNN_LANES', '(unset: batch lanes for large calls)')}")
    main()

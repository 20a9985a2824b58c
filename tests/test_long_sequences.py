"""T = 100,000: forward + backward completes, is right at the end, and uses the documented memory.

Memory per time step (per batch row), in numbers of the input dtype, as
documented in ``fastrnn.cells`` and the README:

* forward, kept in the cache: a copy of ``x`` (D), ``h`` (H), for the LSTM
  ``c`` (H) and the four activated gates (4H), for the GRU the three activated
  gates (3H) and the recurrent term of n (H); returned ``y`` (H);
* backward: the pre-activation gradients (G*H; the GRU keeps its input- and
  recurrent-side ones, 2*3H) and ``dx`` (D).

So the peak while both results are alive is ``(11H + 2D)`` numbers per step for
the LSTM, ``(3H + 2D)`` for the RNN and ``(12H + 2D)`` for the GRU (observed exactly that, to 0.2%, with
tracemalloc, which sees NumPy's allocations; kernels allocate nothing).
Timing (2 cores, float32, H=64): LSTM ~3.3 s, RNN ~2.5 s forward+backward.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from conftest import assert_close, biases, make_problem
from fastrnn import release_memory


def documented_numbers_per_step(cell, D: int, H: int) -> int:
    cache = D + H + {"lstm": H + 4 * H, "rnn": 0, "gru": 3 * H + H}[cell.name]  # x copy, h, (c, gates, recurrent_n)
    forward_output = H  # y
    backward = {"lstm": 4 * H, "rnn": H, "gru": 2 * 3 * H}[cell.name] + D  # dgates (or da), dx
    return cache + forward_output + backward


@pytest.mark.parametrize("T,dtype", [(100_000, np.float32), (10_000, np.float64)],
                         ids=["T100000-float32", "T10000-float64"])
def test_long_sequence_memory_is_as_documented(cell, T, dtype):
    B, D, H = 1, 32, 64
    p = make_problem(cell, T, B, D, H, dtype, with_state=True, with_dstate=True, scale=1 / np.sqrt(H))
    params = (p["w_ih"], p["w_hh"], *biases(cell, p))
    cell.forward(p["x"][:1], *params, *p["states0"])  # compile/load outside the measurement
    release_memory()  # blocks pooled by earlier tests would serve part of this call unmeasured

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        out = cell.forward(p["x"], *params, *p["states0"])
        grads = cell.backward(p["dy"], out.cache, *p["dstates_n"])
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    documented = documented_numbers_per_step(cell, D, H) * T * B * np.dtype(dtype).itemsize
    # Weights, (B, H) states and small temporaries add a few kB on top of the per-step storage.
    assert documented <= peak <= 1.01 * documented + 1_000_000, (
        f"peak {peak / 1e6:.1f} MB, documented {documented / 1e6:.1f} MB")
    for array in (out.y, *cell.final_state(out), *grads):
        assert np.isfinite(array).all()

    # The last steps are right: the reference, restarted from the cached state 5 steps before
    # the end, gives the same outputs and the same dx over those steps (dx[t] depends only on
    # the future, and from T-5 on the reference sees the same future).
    tail = 5
    states = (out.cache.h[T - tail], out.cache.c[T - tail]) if cell.gates == 4 else (out.cache.h[T - tail],)
    ref = cell.ref_forward(p["x"][T - tail:], *params, *states)
    assert_close(out.y[T - tail:], ref.y, name="y tail")
    ref_grads = cell.ref_backward(p["dy"][T - tail:], ref.cache, *p["dstates_n"])
    assert_close(grads[0][T - tail:], ref_grads[0], name="dx tail")

"""Two lanes (kernels/lanes.py): the batch split on by default for large calls, everything with
FASTRNN_LANES=1, nothing with 0; every result matches the reference and the one-thread kernels
-- split by hidden units (B = 1; LSTM and RNN) or by batch rows (every cell) -- whether the two
lanes pair up or one of them ends up doing all the work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

import fastrnn as fr
import fastrnn.reference as ref
from fastrnn.kernels import gru, lanes, lstm, rnn

CELLS = {  # cell: (gates, forward, backward, reference forward, reference backward)
    "lstm": (4, fr.lstm_forward, fr.lstm_backward, ref.lstm_forward, ref.lstm_backward),
    "rnn": (1, fr.rnn_forward, fr.rnn_backward, ref.rnn_forward, ref.rnn_backward),
}
# The GRU's drivers split batches only.
BATCH_CELLS = {**CELLS, "gru": (3, fr.gru_forward, fr.gru_backward, ref.gru_forward, ref.gru_backward)}
# The smallest hidden size that takes lanes (G*H*H >= LANES_FROM_MACS), and one more that
# leaves lane 1 an odd number of units (tails in every row loop).
SIZES = {"lstm": (128, 131), "rnn": (256, 259)}
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
T = 7
FULL = np.full(1, T)  # the lengths of one unpadded sequence


def problem(cell, H, dtype, seed=0):
    G = CELLS[cell][0]
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(H)
    x = rng.standard_normal((T, 1, H)).astype(dtype)
    w_ih = rng.uniform(-scale, scale, (G * H, H)).astype(dtype)
    w_hh = rng.uniform(-scale, scale, (G * H, H)).astype(dtype)
    b = rng.uniform(-scale, scale, G * H).astype(dtype)
    dy = rng.standard_normal((T, 1, H)).astype(dtype)
    return (x, w_ih, w_hh, b), dy


def run(forward, backward, args, dy):
    out = forward(*args)
    final = out[1] if isinstance(out[1], tuple) else (out[1],)  # (h_n, c_n) or h_n
    return [out[0], *final, *backward(dy, out[-1])]


@pytest.fixture
def lanes_on(monkeypatch):
    monkeypatch.setenv(lanes.ENV_SWITCH, "1")
    if numba.get_num_threads() < 2 or not lanes._pool_is_thread_safe():
        pytest.skip("lanes need two Numba threads on a thread-safe pool")


def test_lanes_are_off_unless_switched_on(monkeypatch):
    monkeypatch.delenv(lanes.ENV_SWITCH, raising=False)
    assert not lanes.use_lanes(1, 128, 4, np.dtype(np.float32), FULL, T)
    monkeypatch.setenv(lanes.ENV_SWITCH, "0")
    assert not lanes.use_lanes(1, 128, 4, np.dtype(np.float32), FULL, T)


def test_which_calls_take_lanes(lanes_on):
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert lanes.use_lanes(1, 128, 4, f32, FULL, T)
    assert lanes.use_lanes(1, 256, 1, f64, FULL, T)
    assert not lanes.use_lanes(2, 128, 4, f32, np.full(2, T), T)  # a batch: the one-thread kernels' BLAS products
    assert not lanes.use_lanes(1, 128, 4, f32, np.full(1, T - 1), T)  # padded steps
    assert not lanes.use_lanes(1, 127, 4, f32, FULL, T)  # too small a step to split
    assert not lanes.use_lanes(1, 512, 4, f32, FULL, T)  # half of w_hh no longer fits a core's L2
    numba.set_num_threads(1)
    try:
        assert not lanes.use_lanes(1, 128, 4, f32, FULL, T)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_lanes_match_the_reference_and_one_thread(cell, dtype, lanes_on, monkeypatch):
    G, forward, backward, ref_forward, ref_backward = CELLS[cell]
    for H in SIZES[cell]:
        args, dy = problem(cell, H, dtype)
        assert lanes.use_lanes(1, H, G, np.dtype(dtype), FULL, T)
        copies = [a.copy() for a in (*args, dy)]
        got = run(forward, backward, args, dy)
        for before, after in zip(copies, (*args, dy)):
            np.testing.assert_array_equal(before, after)  # the caller's arrays are untouched
        want = run(ref_forward, ref_backward, args, dy)
        for g, w in zip(got, want):
            assert g.dtype == dtype
            np.testing.assert_allclose(g, w, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(w).max())
        monkeypatch.setenv(lanes.ENV_SWITCH, "0")
        one_thread = run(forward, backward, args, dy)
        monkeypatch.setenv(lanes.ENV_SWITCH, "1")
        tight = 1e-5 if dtype == np.float32 else 1e-13  # rounding only: the same row functions
        for g, o in zip(got, one_thread):
            np.testing.assert_allclose(g, o, rtol=tight, atol=tight * np.abs(o).max())


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_a_lane_alone_does_all_the_work(cell):
    """With one pool thread the two lanes run one after the other: the first gives up waiting,
    runs the one-thread kernel, and the second finds nothing left -- same bits, no hang."""
    dtype = np.float64
    H = SIZES[cell][1]
    (x, w_ih, w_hh, b), dy = problem(cell, H, dtype, seed=3)
    lengths = np.full(1, T, np.int64)
    G = CELLS[cell][0]
    cut = lanes.split(H, 8)

    def forward(driver, *extra):
        h = np.zeros((T + 1, 1, H))
        if cell == "lstm":
            c, gates, work = np.zeros((T + 1, 1, H)), np.empty((T, 1, G * H)), np.empty((1, G * H))
            driver(x, w_ih, w_hh, b, lengths, h, c, gates, work, *extra)
            return h, c, gates
        driver(x, w_ih, w_hh, b, lengths, h, np.empty((1, H)), *extra)
        return (h,)

    one = forward(lstm.lstm_forward_kernel if cell == "lstm" else rnn.rnn_forward_kernel)
    numba.set_num_threads(1)
    try:
        alone = forward(lstm.lstm_forward_lanes if cell == "lstm" else rnn.rnn_forward_lanes,
                        cut, np.zeros(lanes.CTL_SIZE, np.int64), False, False)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, o in zip(alone, one):
        np.testing.assert_array_equal(a, o)


def batch_problem(cell, B, H, T, dtype, seed=0):
    G = BATCH_CELLS[cell][0]
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    biases = ((G * H,), (G * H,)) if cell == "gru" else ((G * H,),)  # b_ih, b_hh or b
    weights = [rng.uniform(-scale, scale, shape).astype(dtype) for shape in ((G * H, H), (G * H, H), *biases)]
    return (x, *weights), rng.standard_normal((T, B, H)).astype(dtype), rng.integers(1, T + 1, B)


def test_which_batches_take_lanes(monkeypatch):
    f32 = np.dtype(np.float32)
    monkeypatch.setenv(lanes.ENV_SWITCH, "0")
    assert lanes.plan(32, 32, 4, f32, np.full(32, 256), 256, 32) is None  # switched off
    if numba.get_num_threads() < 2 or not lanes._pool_is_thread_safe():
        pytest.skip("lanes need two Numba threads on a thread-safe pool")
    for unset in (None, "auto", "yes"):  # by default: the batch split, for large calls only
        if unset is None:
            monkeypatch.delenv(lanes.ENV_SWITCH, raising=False)
        else:
            monkeypatch.setenv(lanes.ENV_SWITCH, unset)
        assert lanes.plan(32, 32, 4, f32, np.full(32, 256), 256, 32) == (16, True)  # exactly 2**26 multiply-adds
        assert lanes.plan(32, 32, 4, f32, np.full(32, 255), 255, 32) is None  # just below the default's size
        assert lanes.plan(32, 32, 1, f32, np.full(32, 256), 256, 32) is None  # 2**24
        assert lanes.plan(1, 128, 4, f32, np.full(1, 256), 256, 128) is None  # B = 1: opt-in only
    monkeypatch.setenv(lanes.ENV_SWITCH, "1")
    assert lanes.plan(32, 32, 4, f32, np.full(32, 256), 256, 32) == (16, True)
    assert lanes.plan(32, 32, 4, f32, np.full(32, 32), 32, 32) == (16, True)  # smaller calls too when on
    assert lanes.plan(5, 64, 4, f32, np.full(5, 256), 256, 64) == (3, True)  # lane 0 takes the odd row
    assert lanes.plan(32, 512, 4, f32, np.full(32, 256), 256, 512) is None  # OpenBLAS's threads do better
    assert lanes.plan(2, 8, 1, f32, np.full(2, 32), 32, 8) is None  # too small to wake the pool
    assert lanes.plan(1, 128, 4, f32, np.full(1, 256), 256, 128) == (lanes.split(128, 4), False)
    # A cell without the split of a single sequence (the GRU) gets the batch split only.
    assert lanes.plan(1, 128, 4, f32, np.full(1, 256), 256, 128, units=False) is None
    assert lanes.plan(32, 32, 3, f32, np.full(32, 32), 32, 32, units=False) == (16, True)
    numba.set_num_threads(1)
    try:
        assert lanes.plan(32, 32, 4, f32, np.full(32, 256), 256, 32) is None  # one Numba thread
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("split", [True, False], ids=["small-path", "no-small-path"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cell", sorted(BATCH_CELLS))
def test_batch_lanes_match_the_reference_and_one_thread(cell, dtype, split, lanes_on, monkeypatch):
    """Split by batch rows -- even and odd B, a lane of one row, padded and full sequences, and
    lanes of 16 rows whose step is too large for OpenBLAS's small path, which a lane computes as
    two halves where OpenBLAS has that path (HALVES; else, and in the one-thread kernel, the
    weights-on-the-left product).  Both ways whatever this machine's OpenBLAS runs."""
    from fastrnn.kernels.matmul import (FORWARD_TRANSPOSED_BELOW_BYTES, HALVES, WEIGHTS_LEFT_STEPS, grad_form,
                                        product_form)

    monkeypatch.setattr(lanes, "BATCH_LANES_FROM_MACS", 0)  # small problems, the same code path
    monkeypatch.setattr(lanes, "has_small_path", lambda: split)
    G, forward, backward, ref_forward, ref_backward = BATCH_CELLS[cell]
    wide = next(H for H in range(1, 1000) if 16 * G * H * H * 4 >= FORWARD_TRANSPOSED_BELOW_BYTES)
    rows = min(32, lanes.BATCH_LANES_UP_TO_MACS // (G * wide * wide))  # 31 for the GRU: lanes of 16 and 15 rows
    for form in (product_form, grad_form):  # lane 0's 16 rows
        assert form.py_func(16, G * wide, wide, WEIGHTS_LEFT_STEPS, np.dtype(dtype).itemsize, True) == HALVES
        assert form.py_func(16, G * wide, wide, WEIGHTS_LEFT_STEPS, np.dtype(dtype).itemsize, False) != HALVES
    for B, H, T_, padded in [(2, 16, 9, False), (5, 24, 13, True), (32, 8, 6, True), (3, 33, 11, False),
                             (rows, wide, WEIGHTS_LEFT_STEPS, True)]:
        args, dy, lengths = batch_problem(cell, B, H, T_, dtype, seed=B)
        lengths = lengths if padded else None
        assert lanes.plan(B, H, G, np.dtype(dtype), np.full(B, T_), T_, H, units=cell != "gru") == ((B + 1) // 2, True)
        copies = [a.copy() for a in (*args, dy)]
        got = run(lambda *a: forward(*a, lengths=lengths), backward, args, dy)
        for before, after in zip(copies, (*args, dy)):
            np.testing.assert_array_equal(before, after)
        want = run(lambda *a: ref_forward(*a, lengths=lengths), ref_backward, args, dy)
        for g, w in zip(got, want):
            assert g.dtype == dtype
            np.testing.assert_allclose(g, w, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(w).max())
        monkeypatch.setenv(lanes.ENV_SWITCH, "0")
        one_thread = run(lambda *a: forward(*a, lengths=lengths), backward, args, dy)
        monkeypatch.setenv(lanes.ENV_SWITCH, "1")
        tight = 1e-5 if dtype == np.float32 else 1e-13
        for g, o in zip(got, one_thread):
            np.testing.assert_allclose(g, o, rtol=tight, atol=tight * np.abs(o).max())


DRIVERS = {  # cell: (one-thread forward, backward kernels), (two-lane forward, backward drivers)
    "lstm": ((lstm.lstm_forward_kernel, lstm.lstm_backward_kernel), (lstm.lstm_forward_lanes, lstm.lstm_backward_lanes)),
    "rnn": ((rnn.rnn_forward_kernel, rnn.rnn_backward_kernel), (rnn.rnn_forward_lanes, rnn.rnn_backward_lanes)),
    "gru": ((gru.gru_forward_kernel, gru.gru_backward_kernel), (gru.gru_forward_lanes, gru.gru_backward_lanes)),
}


@pytest.mark.parametrize("cell", sorted(BATCH_CELLS))
def test_a_batch_lane_alone_does_all_the_work(cell):
    """As ``test_a_lane_alone_does_all_the_work``, for the drivers split by batch rows: a lane
    whose partner never came runs both shares in turn, so the result is the paired lanes' bit for
    bit (and the one-thread kernel's to rounding)."""
    B, H, T_ = 5, 12, 8
    (x, w_ih, w_hh, *biases), dy, lengths = batch_problem(cell, B, H, T_, np.float64, seed=4)
    G = BATCH_CELLS[cell][0]

    def both(extra):
        forward_driver, backward_driver = DRIVERS[cell][1 if extra else 0]
        ctl = [np.zeros(lanes.CTL_SIZE, np.int64), np.zeros(lanes.CTL_SIZE, np.int64)]
        fwd_extra = (extra[0], ctl[0], True, True) if extra else ()
        bwd_extra = (extra[0], ctl[1], True, True) if extra else ()
        h = np.zeros((T_ + 1, B, H))
        dh = np.zeros((B, H))
        dx, dw_ih, dw_hh = np.empty_like(x), np.empty_like(w_ih), np.empty_like(w_hh)
        dbs = [np.empty_like(b) for b in biases]
        if cell == "lstm":
            c, gates = np.zeros((T_ + 1, B, H)), np.empty((T_, B, G * H))
            forward_driver(x, w_ih, w_hh, *biases, lengths, h, c, gates, np.empty((B, G * H)), *fwd_extra)
            dc = np.zeros((B, H))
            backward_driver(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, np.empty((T_, B, G * H)),
                            np.empty((B, H)), dx, dw_ih, dw_hh, *dbs, *bwd_extra)
            return h, c, gates, dh, dc, dx, dw_ih, dw_hh, *dbs
        if cell == "gru":
            gates, recurrent_n = np.empty((T_, B, G * H)), np.empty((T_, B, H))
            forward_driver(x, w_ih, w_hh, *biases, lengths, h, gates, recurrent_n, np.empty((B, G * H)), *fwd_extra)
            backward_driver(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, np.zeros((B, H)),
                            np.empty((T_, B, G * H)), np.empty((T_, B, G * H)), dx, dw_ih, dw_hh, *dbs, *bwd_extra)
            return h, gates, recurrent_n, dh, dx, dw_ih, dw_hh, *dbs
        forward_driver(x, w_ih, w_hh, *biases, lengths, h, np.empty((B, H)), *fwd_extra)
        backward_driver(dy, x, w_ih, w_hh, lengths, h, dh, np.empty((T_, B, H)), np.empty((B, H)),
                        dx, dw_ih, dw_hh, *dbs, *bwd_extra)
        return h, dh, dx, dw_ih, dw_hh, *dbs

    one = both(())
    numba.set_num_threads(1)
    try:
        alone = both(((B + 1) // 2,))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    paired = both(((B + 1) // 2,))  # two lanes where the pool has two threads
    for a, p, o in zip(alone, paired, one):
        np.testing.assert_array_equal(a, p)  # the lone lane ran both shares: the paired result
        np.testing.assert_allclose(a, o, rtol=1e-13, atol=1e-13 * np.abs(o).max())


def test_pairing_protocol():
    ctl = np.zeros(lanes.CTL_SIZE, np.int64)
    assert lanes.pair_up(ctl) == lanes.SOLO  # nobody came: the first takes everything
    assert lanes.pair_up(ctl) == lanes.DONE  # ... and the late one has nothing to do
    ctl = np.zeros(lanes.CTL_SIZE, np.int64)
    ctl[0] = lanes.ARRIVED  # a partner is waiting
    assert lanes.pair_up(ctl) == lanes.PAIRED
    assert ctl[0] == lanes.PAIRED


def test_split_keeps_each_lane_on_its_own_cache_lines():
    for H, itemsize in [(128, 4), (131, 4), (256, 8), (10, 4), (1, 8)]:
        cut = lanes.split(H, itemsize)
        assert 0 <= cut <= H
        assert cut * itemsize % 64 == 0 or cut == H


def test_concurrent_calls_with_lanes_match_serial(lanes_on):
    problems = [problem("lstm", 128, np.float64, seed=s) for s in range(3)]
    serial = [run(fr.lstm_forward, fr.lstm_backward, *p) for p in problems]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: run(fr.lstm_forward, fr.lstm_backward, *p), problems))
    for got, want in zip(results, serial):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13 * np.abs(w).max())


FORK_SCRIPT = """
import os, sys
os.environ["FASTRNN_LANES"] = "1"
import numpy as np
import fastrnn as fr
from fastrnn.kernels import lanes

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 32, 32)).astype(np.float32)
w = (rng.standard_normal((128, 32)) * 0.1).astype(np.float32)
b = np.zeros(128, np.float32)
y = fr.lstm_forward(x, w, w, b).y  # on two lanes: Numba's threading layer is now in use
if not lanes._launched:
    sys.exit(0)  # no lanes here (one thread, or no thread-safe pool): nothing to test
pid = os.fork()
if pid == 0:  # the child: the same call, on one thread, with the same result
    ok = False
    try:
        ok = np.allclose(fr.lstm_forward(x, w, w, b).y, y, rtol=1e-4, atol=1e-6)  # lanes agree to rounding
    finally:
        os._exit(0 if ok else 1)
"""


def test_a_forked_child_of_a_process_that_ran_lanes_still_computes():
    """GNU OpenMP cannot run a parallel region in a forked child of a process that ran one, and
    Numba ends such a child; the child runs the one-thread kernels instead."""
    from conftest import run_forking_script

    run_forking_script(FORK_SCRIPT, "the forked child hung")

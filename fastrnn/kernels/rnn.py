"""Vanilla (tanh) RNN forward and BPTT kernels.  Shapes: see ``fastrnn.cells``.

Elementwise loops run on 1-D rows for the reason given in ``kernels/lstm.py``.
"""

from __future__ import annotations

import numpy as np

from numba import prange

from .._jit import jit, jit_inline, jit_lanes
from .activations import tanh
from .lanes import (PAIRED, SOLO, batch_rows, meet, pair_up, products_half, products_halves, project_half,
                    project_halves)
from .matmul import (backward_products, grad_operands, matrix_times_row, project, recurrent_grad,
                     product_form, step_operands, step_product)


@jit
def _tanh_row(row, recurrent, b):
    """row (H,) <- tanh(row + recurrent + b), in place.

    One array for input and output on purpose: as two arguments that alias,
    LLVM's runtime overlap check fails and the scalar loop runs -- 4.2 ns per
    unit against 0.42 in place (float32, H=128, a standalone copy of the step
    loop, min of 20)."""
    for j in range(row.shape[0]):
        row[j] = tanh(row[j] + recurrent[j] + b[j])


_tanh_row_inline = jit_inline(_tanh_row.py_func)  # for a batch's steps, see rnn_forward_steps


@jit
def rnn_forward_steps(w_hh, b, lengths, h, work, b0, b1, split):
    """The recurrence for batch rows b0:b1: h (T+1,B,H) has h[0] set and x@w_ih.T parked in h[1:]
    on entry, the states on exit; work (B,H) scratch.  Steps t >= lengths[b] carry the state.
    ``split``: a step too large for OpenBLAS's small path may run as two halves (``matmul.halves``)."""
    T = h.shape[0] - 1
    H = w_hh.shape[1]
    form = product_form(b1 - b0, H, H, T, w_hh.itemsize, split)
    w_hh_t, landing = step_operands(w_hh, form, b1 - b0)
    # As in the LSTM's forward, a batch's steps where every row is active take the inlined row.
    # The step loops alone, both forms alternated in one process (float32, medians of 20
    # rounds): T=256 B=32 H=32 351 -> 199 us, B=8 H=64 166 -> 137 us, T=32 B=32 H=128 1.03x.
    # (The GRU's gate row, inlined the same way, lost its vector loop: 0.65-0.68x.)
    shortest = lengths[b0:b1].min() if b1 - b0 > 1 else 0
    for t in range(T):
        step_product(h[t, b0:b1], w_hh, w_hh_t, landing, form, work[b0:b1], t % 2 == 1)  # (b,H) @ (H,H) -> (b,H)
        if t < shortest:
            for bi in range(b0, b1):
                _tanh_row_inline(h[t + 1, bi], work[bi], b)
            continue
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _tanh_row(h[t + 1, bi], work[bi], b)
            else:
                h[t + 1, bi, :] = h[t, bi]


@jit
def rnn_forward_kernel(x, w_ih, w_hh, b, lengths, h, work):
    """x (T,B,D), w_ih (H,D), w_hh (H,H), b (H,), lengths (B,); h (T+1,B,H) with h[0] set; writes
    h[1:], which first holds the input projection of every step; work (B,H) scratch."""
    project(x, w_ih, h[1:])
    rnn_forward_steps(w_hh, b, lengths, h, work, 0, x.shape[1], False)


# Inlined: as a call it cost more than its work.  Public backward, T=256, alternating
# processes: B=32 H=32 827-835 -> 478-508 us, B=8 H=64 (T=64) 141-144 -> 124-126 us, B=32
# H=128 5.1-5.4 -> 4.6-4.8 ms, B=1 H=32 52-53 -> 42-43 us; unchanged at B=1 H=128 and 512.
@jit_inline
def _tanh_backward_row(h_next, dy, dh, da):
    """da (H,) = (dh + dy) * (1 - h_next**2): the gradient at the pre-activation."""
    one = dy.dtype.type(1.0)
    for j in range(da.shape[0]):
        da[j] = (dh[j] + dy[j]) * (one - h_next[j] * h_next[j])


@jit
def rnn_backward_steps(dy, w_hh, lengths, h, dh, da, work, b0, b1, split):
    """The dh recurrence for batch rows b0:b1: dy (T,B,H); h from the forward; dh (B,H) holds dh_n
    on entry and dh0 on exit; writes da (T,B,H) (pre-activation grads); work (B,H) scratch.
    Padded steps pass dh through and ignore dy.  ``split`` as in ``rnn_forward_steps``."""
    T = da.shape[0]
    shortest = lengths[b0:b1].min() if b1 > b0 else T
    form, w_hh_t, landing = grad_operands(w_hh, b1 - b0, T, split)
    for t in range(T - 1, -1, -1):
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _tanh_backward_row(h[t + 1, bi], dy[t, bi], dh[bi], da[t, bi])
            else:
                da[t, bi, :] = 0
        recurrent_grad(da[t], w_hh, w_hh_t, landing, form, lengths, t, t < shortest, dh, work, b0, b1)


@jit
def rnn_backward_kernel(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db):
    """dy (T,B,H); cache arrays as in the forward; dh (B,H) holds dh_n on entry and dh0 on exit;
    da (T,B,H), work (B,H) scratch; writes dx (T,B,D), dw_ih (H,D), dw_hh (H,H), db (H,)."""
    rnn_backward_steps(dy, w_hh, lengths, h, dh, da, work, 0, x.shape[1], False)
    backward_products(x, w_ih, h, da, da, dx, dw_ih, dw_hh, db)


# --- two lanes (B == 1; see kernels/lanes.py) ---------------------------------------------


@jit
def _forward_lane(x, w_ih, w_hh, b, h, work, lane, cut, ctl):
    """Lane ``lane``'s share of ``rnn_forward_kernel`` with B == 1 and no padding: half of the
    input projection's rows, then hidden units [0, cut) or [cut, H) of every step."""
    T = h.shape[0] - 1
    H = w_hh.shape[1]
    j0, j1 = (0, cut) if lane == 0 else (cut, H)
    project_half(x, w_ih, h[1:], lane, ctl)
    for t in range(T):
        matrix_times_row(w_hh[j0:j1], h[t, 0], work[0, j0:j1])
        _tanh_row(h[t + 1, 0, j0:j1], work[0, j0:j1], b[j0:j1])
        meet(ctl, lane, t + 2)  # the other half of h[t + 1] is written


@jit
def _forward_half(x, w_ih, w_hh, b, lengths, h, work, lane, cut, ctl, split):
    """Lane ``lane``'s share of ``rnn_forward_kernel`` split by batch rows (see the LSTM's)."""
    project_half(x, w_ih, h[1:], lane, ctl)
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    rnn_forward_steps(w_hh, b, lengths, h, work, b0, b1, split)


@jit
def _forward_shares_alone(x, w_ih, w_hh, b, lengths, h, work, cut, split):
    """Both lanes' shares of the batch split in turn on one thread (see the LSTM's)."""
    project_halves(x, w_ih, h[1:])
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        rnn_forward_steps(w_hh, b, lengths, h, work, b0, b1, split)


@jit_lanes
def rnn_forward_lanes(x, w_ih, w_hh, b, lengths, h, work, cut, ctl, by_batch, split):
    """``rnn_forward_kernel`` on two threads; ``cut`` splits the batch rows (``by_batch``) or,
    for B == 1 with no padding, the hidden units; ``ctl`` is ``lanes.CTL_SIZE`` int64 zeros;
    ``split`` lets a batch lane's step run as two halves (``matmul.halves``).  Falls back to one
    thread by itself."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO and by_batch:
            _forward_shares_alone(x, w_ih, w_hh, b, lengths, h, work, cut, split)
        elif mode == SOLO:
            rnn_forward_kernel(x, w_ih, w_hh, b, lengths, h, work)
        elif mode == PAIRED and by_batch:
            _forward_half(x, w_ih, w_hh, b, lengths, h, work, lane, cut, ctl, split)
        elif mode == PAIRED:
            _forward_lane(x, w_ih, w_hh, b, h, work, lane, cut, ctl)


@jit
def _backward_lane(dy, x, w_ih, w_hh, h, dh, da, dx, dw_ih, dw_hh, db, lane, cut, ctl):
    """Lane ``lane``'s share of ``rnn_backward_kernel`` with B == 1 and no padding."""
    T = da.shape[0]
    H = w_hh.shape[1]
    j0, j1 = (0, cut) if lane == 0 else (cut, H)
    columns = np.ascontiguousarray(w_hh[:, j0:j1])  # (H, j1-j0): dh[j0:j1] = da @ columns
    part = np.empty((1, j1 - j0), dh.dtype)
    for t in range(T - 1, -1, -1):
        _tanh_backward_row(h[t + 1, 0, j0:j1], dy[t, 0, j0:j1], dh[0, j0:j1], da[t, 0, j0:j1])
        meet(ctl, lane, T - t)  # all of da[t] is written
        np.dot(da[t], columns, part)  # BLAS, as the one-thread kernel
        dh[0, j0:j1] = part[0]
    products_half(x, w_ih, h, da, da, dx, dw_ih, dw_hh, db, lane)


@jit
def _backward_half(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db, lane, cut, ctl, split):
    """Lane ``lane``'s share of ``rnn_backward_kernel`` split by batch rows (see the LSTM's)."""
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    rnn_backward_steps(dy, w_hh, lengths, h, dh, da, work, b0, b1, split)
    meet(ctl, lane, 1)  # all of da is written
    products_half(x, w_ih, h, da, da, dx, dw_ih, dw_hh, db, lane)


@jit
def _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db, cut, split):
    """Both lanes' shares of ``_backward_half`` in turn on one thread (see the LSTM's)."""
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        rnn_backward_steps(dy, w_hh, lengths, h, dh, da, work, b0, b1, split)
    products_halves(x, w_ih, h, da, da, dx, dw_ih, dw_hh, db)


@jit_lanes
def rnn_backward_lanes(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db, cut, ctl, by_batch, split):
    """``rnn_backward_kernel`` on two threads; see ``rnn_forward_lanes``."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO and by_batch:
            _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db, cut, split)
        elif mode == SOLO:
            rnn_backward_kernel(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db)
        elif mode == PAIRED and by_batch:
            _backward_half(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db, lane, cut, ctl, split)
        elif mode == PAIRED:
            _backward_lane(dy, x, w_ih, w_hh, h, dh, da, dx, dw_ih, dw_hh, db, lane, cut, ctl)

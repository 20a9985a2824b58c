"""Vanilla (tanh) RNN forward and BPTT kernels.  Shapes: see ``fastrnn.cells``.

Elementwise loops run on 1-D rows for the reason given in ``kernels/lstm.py``.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .activations import tanh
from .lstm import column_sums
from .matmul import row_times_matrix, use_loops


@jit
def _tanh_row(pre, recurrent, b, out):
    """out (H,) = tanh(pre + recurrent + b); out may be pre."""
    for j in range(out.shape[0]):
        out[j] = tanh(pre[j] + recurrent[j] + b[j])


@jit
def rnn_forward_kernel(x, w_ih, w_hh, b, lengths, h, work):
    """x (T,B,D), w_ih (H,D), w_hh (H,H), b (H,), lengths (B,); h (T+1,B,H) with h[0] set; writes
    h[1:], which doubles as the buffer for the input projection; work (B,H) scratch.
    Steps t >= lengths[b] carry sequence b's state unchanged."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    # One GEMM for the input projection of all steps, parked in h[1:] until
    # each step overwrites it with the activated state.
    np.dot(x.reshape(T * B, D), w_ih.T, h[1:].reshape(T * B, H))
    loops = use_loops(B, H, H)
    w_hh_t = np.ascontiguousarray(w_hh.T) if loops else w_hh[:0]  # (H, H) for the loop path
    for t in range(T):
        if loops:
            row_times_matrix(h[t, 0], w_hh_t, work[0])
        else:
            np.dot(h[t], w_hh.T, work)  # (B,H) @ (H,H) -> (B,H)
        for bi in range(B):
            if t < lengths[bi]:
                _tanh_row(h[t + 1, bi], work[bi], b, h[t + 1, bi])
            else:
                h[t + 1, bi, :] = h[t, bi]


@jit
def _tanh_backward_row(h_next, dy, dh, da):
    """da (H,) = (dh + dy) * (1 - h_next**2): the gradient at the pre-activation."""
    one = dy.dtype.type(1.0)
    for j in range(da.shape[0]):
        da[j] = (dh[j] + dy[j]) * (one - h_next[j] * h_next[j])


@jit
def rnn_backward_kernel(dy, x, w_ih, w_hh, lengths, h, dh, da, work, dx, dw_ih, dw_hh, db):
    """dy (T,B,H); cache arrays as in the forward; dh (B,H) holds dh_n on entry and dh0 on exit;
    da (T,B,H) (pre-activation grads), work (B,H) scratch; writes dx (T,B,D), dw_ih (H,D),
    dw_hh (H,H), db (H,).  Padded steps pass dh through and ignore dy."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    shortest = lengths.min() if B else T
    for t in range(T - 1, -1, -1):
        for bi in range(B):
            if t < lengths[bi]:
                _tanh_backward_row(h[t + 1, bi], dy[t, bi], dh[bi], da[t, bi])
            else:
                da[t, bi, :] = 0
        if t < shortest:  # every sequence is active: the product is the new dh
            np.dot(da[t], w_hh, dh)  # (B,H) @ (H,H) -> (B,H)
        else:
            np.dot(da[t], w_hh, work)
            for bi in range(B):
                if t < lengths[bi]:
                    dh[bi, :] = work[bi]
    rows = da.reshape(T * B, H)
    np.dot(rows, w_ih, dx.reshape(T * B, D))
    np.dot(rows.T, x.reshape(T * B, D), dw_ih)
    np.dot(rows.T, h[:T].reshape(T * B, H), dw_hh)
    column_sums(rows, db)

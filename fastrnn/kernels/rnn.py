"""Vanilla (tanh) RNN forward and BPTT kernels.  Shapes: see ``fastrnn.cells``."""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .activations import tanh


@jit
def rnn_forward_kernel(x, w_ih, w_hh, b, h, work):
    """x (T,B,D), w_ih (H,D), w_hh (H,H), b (H,); h (T+1,B,H) with h[0] set; writes h[1:].
    h[1:] doubles as the buffer for the input projection; work (B,H) scratch."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    # One GEMM for the input projection of all steps, parked in h[1:] until
    # each step overwrites it with the activated state.
    np.dot(x.reshape(T * B, D), w_ih.T, h[1:].reshape(T * B, H))
    for t in range(T):
        np.dot(h[t], w_hh.T, work)  # (B,H) @ (H,H) -> (B,H)
        for bi in range(B):
            for j in range(H):
                h[t + 1, bi, j] = tanh(h[t + 1, bi, j] + work[bi, j] + b[j])


@jit
def rnn_backward_kernel(dy, x, w_ih, w_hh, h, dh, da, dx, dw_ih, dw_hh, db):
    """dy (T,B,H); cache arrays as in the forward; dh (B,H) holds dh_n on entry and dh0 on exit;
    da (T,B,H) scratch (pre-activation grads); writes dx (T,B,D), dw_ih (H,D), dw_hh (H,H), db (H,)."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    one = dy.dtype.type(1.0)
    for t in range(T - 1, -1, -1):
        for bi in range(B):
            for j in range(H):
                h_t = h[t + 1, bi, j]
                da[t, bi, j] = (dh[bi, j] + dy[t, bi, j]) * (one - h_t * h_t)
        np.dot(da[t], w_hh, dh)  # (B,H) @ (H,H) -> (B,H)
    rows = da.reshape(T * B, H)
    np.dot(rows, w_ih, dx.reshape(T * B, D))
    np.dot(rows.T, x.reshape(T * B, D), dw_ih)
    np.dot(rows.T, h[:T].reshape(T * B, H), dw_hh)
    db[:] = 0
    for r in range(T * B):
        for k in range(H):
            db[k] += rows[r, k]

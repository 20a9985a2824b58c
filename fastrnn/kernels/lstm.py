"""LSTM forward and BPTT kernels.  Shapes and gate order: see ``fastrnn.cells``."""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .activations import sigmoid, tanh


@jit
def lstm_forward_kernel(x, w_ih, w_hh, b, h, c, gates, work):
    """x (T,B,D), w_ih (4H,D), w_hh (4H,H), b (4H,); h, c (T+1,B,H) with h[0], c[0] set;
    writes h[1:], c[1:] and gates (T,B,4H, activated i f g o); work (B,4H) scratch."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    # The input projection does not depend on the recurrence: one GEMM for all
    # T*B rows, written straight into the gate buffer.
    np.dot(x.reshape(T * B, D), w_ih.T, gates.reshape(T * B, 4 * H))
    for t in range(T):
        np.dot(h[t], w_hh.T, work)  # (B,H) @ (H,4H) -> (B,4H)
        for bi in range(B):
            for j in range(H):
                i = sigmoid(gates[t, bi, j] + work[bi, j] + b[j])
                f = sigmoid(gates[t, bi, H + j] + work[bi, H + j] + b[H + j])
                g = tanh(gates[t, bi, 2 * H + j] + work[bi, 2 * H + j] + b[2 * H + j])
                o = sigmoid(gates[t, bi, 3 * H + j] + work[bi, 3 * H + j] + b[3 * H + j])
                c_new = f * c[t, bi, j] + i * g
                c[t + 1, bi, j] = c_new
                h[t + 1, bi, j] = o * tanh(c_new)
                gates[t, bi, j] = i
                gates[t, bi, H + j] = f
                gates[t, bi, 2 * H + j] = g
                gates[t, bi, 3 * H + j] = o


@jit
def lstm_backward_kernel(dy, x, w_ih, w_hh, h, c, gates, dh, dc, dgates, dx, dw_ih, dw_hh, db):
    """dy (T,B,H); cache arrays as in the forward; dh, dc (B,H) hold dh_n, dc_n on entry and
    dh0, dc0 on exit; dgates (T,B,4H) scratch; writes dx (T,B,D), dw_ih (4H,D), dw_hh (4H,H), db (4H,)."""
    T, B, D = x.shape
    H = w_hh.shape[1]
    one = dy.dtype.type(1.0)
    # Only the dh/dc recurrence is sequential.
    for t in range(T - 1, -1, -1):
        for bi in range(B):
            for j in range(H):
                i = gates[t, bi, j]
                f = gates[t, bi, H + j]
                g = gates[t, bi, 2 * H + j]
                o = gates[t, bi, 3 * H + j]
                tc = tanh(c[t + 1, bi, j])
                dh_t = dh[bi, j] + dy[t, bi, j]
                dc_t = dc[bi, j] + dh_t * o * (one - tc * tc)
                # Derivatives with respect to the pre-activations.
                dgates[t, bi, j] = dc_t * g * i * (one - i)
                dgates[t, bi, H + j] = dc_t * c[t, bi, j] * f * (one - f)
                dgates[t, bi, 2 * H + j] = dc_t * i * (one - g * g)
                dgates[t, bi, 3 * H + j] = dh_t * tc * o * (one - o)
                dc[bi, j] = dc_t * f
        np.dot(dgates[t], w_hh, dh)  # (B,4H) @ (4H,H) -> (B,H)
    # Everything else is one GEMM (or reduction) over all T*B rows.
    rows = dgates.reshape(T * B, 4 * H)
    np.dot(rows, w_ih, dx.reshape(T * B, D))
    np.dot(rows.T, x.reshape(T * B, D), dw_ih)
    np.dot(rows.T, h[:T].reshape(T * B, H), dw_hh)
    db[:] = 0
    for r in range(T * B):
        for k in range(4 * H):
            db[k] += rows[r, k]

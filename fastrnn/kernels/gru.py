"""GRU forward and BPTT kernels.  Shapes and gate order (r, z, n): see ``fastrnn.cells``.

Same structure as ``kernels/lstm.py``: one GEMM for the input projection of all
steps, one product per step for the recurrence (loop form for a single small
sequence, see ``kernels/matmul.py``), the elementwise work on 1-D rows
(for the vectorization reason given there), and in backward only the
recurrence is sequential.

The GRU differs from the LSTM in one place: ``r`` scales the recurrent term of
``n`` *after* the matrix product, ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``,
so the gradient of the pre-activations differs on the input side
(``[dr dz dn]``) and the recurrent side (``[dr dz r*dn]``).  Both are kept, one
(T, B, 3H) buffer each, so that every weight and bias gradient stays one
hoisted GEMM or reduction.
"""

from __future__ import annotations

import numpy as np

from numba import prange

from .._jit import jit, jit_inline, jit_lanes
from .activations import sigmoid, tanh
from .lanes import PAIRED, SOLO, batch_rows, meet, pair_up, products_half, project_half, project_halves
from .matmul import (backward_products, column_sums, grad_operands, project, product_form, recurrent_grad,
                     step_operands, step_product)


@jit
def _gates_forward_row(gates, recurrent, b_ih, b_hh, h_prev, h_next, recurrent_n):
    """gates (3H,) holds x@w_ih.T on entry and the activated [r z n] on exit; recurrent (3H,) = h@w_hh.T;
    b_ih, b_hh (3H,); h_prev (H,); writes h_next (H,) and recurrent_n (H,) = W_hn h + b_hn."""
    H = h_prev.shape[0]
    one = h_prev.dtype.type(1.0)
    # r and z as one pass of 2H: at small H a loop of H runs mostly in LLVM's scalar remainder
    # (the forward row took 242 ns at H=32 with one loop of H, 177 with this pass; public
    # forward, T=256, alternating processes: B=32 H=32 2.28-2.50 -> 1.95-2.00 ms, B=1 H=32
    # 123-142 -> 104-114 us, B=32 H=128 T=64 2.27-2.35 -> 2.15-2.21 ms).
    for k in range(2 * H):
        gates[k] = sigmoid(gates[k] + b_ih[k] + recurrent[k] + b_hh[k])
    for j in range(H):
        r = gates[j]
        z = gates[H + j]
        hn = recurrent[2 * H + j] + b_hh[2 * H + j]
        n = tanh(gates[2 * H + j] + b_ih[2 * H + j] + r * hn)
        # Not n + z*(h - n) (one multiply fewer, torch's form): with a closed
        # update gate (z == 1) that drifts h by an ulp per step, while this
        # form carries h exactly -- tests/test_stability.py::test_fully_saturated_gru_is_exact.
        h_next[j] = (one - z) * n + z * h_prev[j]
        recurrent_n[j] = hn
        gates[2 * H + j] = n


@jit
def gru_forward_steps(w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, b0, b1, split):
    """The recurrence for batch rows b0:b1: gates (T,B,3H) holds x@w_ih.T on entry and the activated
    [r z n] on exit; h (T+1,B,H) with h[0] set; writes recurrent_n (T,B,H); work (B,3H) scratch.
    Steps t >= lengths[b] carry sequence b's state; their gates and recurrent_n are zero.
    ``split``: a step too large for OpenBLAS's small path may run as two halves (``matmul.halves``)."""
    T = gates.shape[0]
    H = w_hh.shape[1]
    form = product_form(b1 - b0, 3 * H, H, T, w_hh.itemsize, split)
    w_hh_t, landing = step_operands(w_hh, form, b1 - b0)
    for t in range(T):
        step_product(h[t, b0:b1], w_hh, w_hh_t, landing, form, work[b0:b1], t % 2 == 1)  # (b,H) @ (H,3H) -> (b,3H)
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _gates_forward_row(gates[t, bi], work[bi], b_ih, b_hh, h[t, bi], h[t + 1, bi], recurrent_n[t, bi])
            else:
                h[t + 1, bi, :] = h[t, bi]
                gates[t, bi, :] = 0
                recurrent_n[t, bi, :] = 0


@jit
def gru_forward_kernel(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work):
    """x (T,B,D), w_ih (3H,D), w_hh (3H,H), b_ih, b_hh (3H,), lengths (B,); h (T+1,B,H) with h[0]
    set; writes h[1:], gates (T,B,3H, activated r z n) and recurrent_n (T,B,H); work (B,3H) scratch."""
    project(x, w_ih, gates)
    gru_forward_steps(w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, 0, x.shape[1], False)


# Inlined into the step loop: as a called function it cost about 350 ns a row whatever H
# (11.8 ns per hidden unit at H=32, 1.8 at H=256, in a standalone loop), which made the
# backward at B=32 H=32 twice the forward.  Public backward, T=256, alternating processes:
# B=32 H=32 4.9-5.9 -> 2.3 ms, B=1 H=32 165-175 -> 82 us.  The forward row stays a call:
# inlined, the B=32 H=32 forward went from 2.4-2.7 to 4.3 ms.
@jit_inline
def _gates_backward_row(gates, recurrent_n, h_prev, dy, dh, carry, dgates_ih, dgates_hh):
    """gates (3H,) activated [r z n]; recurrent_n, h_prev, dy (H,); dh + carry (H,) is the gradient
    from the step after; writes dgates_ih, dgates_hh (3H,) (input- and recurrent-side pre-activation
    gradients) and carry <- the direct part z*dh of the gradient reaching h_prev."""
    H = h_prev.shape[0]
    one = dy.dtype.type(1.0)
    for j in range(H):
        r = gates[j]
        z = gates[H + j]
        n = gates[2 * H + j]
        dh_t = dh[j] + carry[j] + dy[j]
        # h' = (1 - z)*n + z*h
        dn = dh_t * (one - z) * (one - n * n)  # at n's pre-activation
        dz = dh_t * (h_prev[j] - n) * z * (one - z)
        # n = tanh(a_in + r * recurrent_n)
        dr = dn * recurrent_n[j] * r * (one - r)
        dgates_ih[j] = dr
        dgates_ih[H + j] = dz
        dgates_ih[2 * H + j] = dn
        dgates_hh[j] = dr
        dgates_hh[H + j] = dz
        dgates_hh[2 * H + j] = dn * r
        carry[j] = dh_t * z


@jit
def gru_backward_steps(dy, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh, b0, b1, split):
    """The dh recurrence for batch rows b0:b1: dy (T,B,H); h, gates, recurrent_n from the forward;
    dh (B,H) holds dh_n on entry and dh0 on exit; carry (B,H) zeroed scratch; writes dgates_ih,
    dgates_hh (T,B,3H).  Padded steps pass the gradient through and ignore dy.  ``split`` as in
    ``gru_forward_steps``."""
    T = gates.shape[0]
    # The gradient reaching h[t] is dgates_hh[t] @ w_hh plus z*dh; the GEMM
    # writes dh and the direct part waits in carry, which the next row (or the
    # end) adds, so no extra pass over (B, H) is made per step.  A padded step
    # moves all of dh into carry before the GEMM (of its zero row) clears dh.
    form, w_hh_t, landing = grad_operands(w_hh, b1 - b0, T, split)
    for t in range(T - 1, -1, -1):
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _gates_backward_row(gates[t, bi], recurrent_n[t, bi], h[t, bi], dy[t, bi], dh[bi], carry[bi],
                                    dgates_ih[t, bi], dgates_hh[t, bi])
            else:
                _add_row(carry[bi], dh[bi])
                dgates_ih[t, bi, :] = 0
                dgates_hh[t, bi, :] = 0
        # (b,3H) @ (3H,H) -> (b,H), every row (see above), so no scratch is needed
        recurrent_grad(dgates_hh[t], w_hh, w_hh_t, landing, form, lengths, t, True, dh, dh, b0, b1)
    for bi in range(b0, b1):
        _add_row(dh[bi], carry[bi])


@jit
def gru_backward_kernel(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh,
                        dx, dw_ih, dw_hh, db_ih, db_hh):
    """dy (T,B,H); cache arrays as in the forward; dh (B,H) holds dh_n on entry and dh0 on exit;
    carry (B,H) zeroed scratch; dgates_ih, dgates_hh (T,B,3H) scratch; writes dx (T,B,D),
    dw_ih (3H,D), dw_hh (3H,H), db_ih, db_hh (3H,)."""
    gru_backward_steps(dy, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh, 0, x.shape[1], False)
    backward_products(x, w_ih, h, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih)
    T, B = x.shape[0], x.shape[1]
    column_sums(dgates_hh.reshape(T * B, dgates_hh.shape[2]), db_hh)


@jit
def _add_row(out, addend):
    """out (H,) += addend (H,)."""
    for j in range(out.shape[0]):
        out[j] += addend[j]


# --- two lanes split by batch rows (B >= 2; see kernels/lanes.py) ---------------------------
# The GRU has no split of a single sequence's hidden units: ``lanes.plan`` is asked for the
# batch split only.


@jit
def _forward_half(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, lane, cut, ctl, split):
    """Lane ``lane``'s share of ``gru_forward_kernel``: half of the input projection, a meeting,
    then the recurrence of rows [0, cut) or [cut, B), with no further meeting."""
    project_half(x, w_ih, gates, lane, ctl)
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    gru_forward_steps(w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, b0, b1, split)


@jit
def _forward_shares_alone(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, cut, split):
    """Both lanes' shares in turn on one thread (a lane whose partner never came): the paired
    lanes' products over the same rows, so their result bit for bit (see the LSTM's)."""
    project_halves(x, w_ih, gates)
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        gru_forward_steps(w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, b0, b1, split)


@jit_lanes
def gru_forward_lanes(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, cut, ctl, by_batch, split):
    """``gru_forward_kernel`` on two threads splitting the batch rows at ``cut``; ``ctl`` is
    ``lanes.CTL_SIZE`` int64 zeros; ``by_batch`` is True (the drivers' common signature, see
    ``lanes.run``); ``split`` as in ``lstm_forward_lanes``.  Falls back to one thread by itself."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO:
            _forward_shares_alone(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, cut, split)
        elif mode == PAIRED:
            _forward_half(x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, recurrent_n, work, lane, cut, ctl, split)


@jit
def _products_share(x, w_ih, h, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih, db_hh, lane):
    """This lane's share of the backward's products: ``lanes.products_half``, and db_hh with
    dw_hh on lane 1 (lane 0 forms dw_ih and db_ih)."""
    products_half(x, w_ih, h, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih, lane)
    if lane == 1:
        T, B = x.shape[0], x.shape[1]
        column_sums(dgates_hh.reshape(T * B, dgates_hh.shape[2]), db_hh)


@jit
def _backward_half(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh,
                   dx, dw_ih, dw_hh, db_ih, db_hh, lane, cut, ctl, split):
    """Lane ``lane``'s share of ``gru_backward_kernel``: the recurrence of rows [0, cut) or
    [cut, B), a meeting, then its share of the products."""
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    gru_backward_steps(dy, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh, b0, b1, split)
    meet(ctl, lane, 1)  # all of dgates_ih and dgates_hh is written
    _products_share(x, w_ih, h, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih, db_hh, lane)


@jit
def _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh,
                           dx, dw_ih, dw_hh, db_ih, db_hh, cut, split):
    """Both lanes' shares of ``_backward_half`` in turn on one thread; see ``_forward_shares_alone``."""
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        gru_backward_steps(dy, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh, b0, b1, split)
    for lane in range(2):
        _products_share(x, w_ih, h, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih, db_hh, lane)


@jit_lanes
def gru_backward_lanes(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh,
                       dx, dw_ih, dw_hh, db_ih, db_hh, cut, ctl, by_batch, split):
    """``gru_backward_kernel`` on two threads; see ``gru_forward_lanes``."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO:
            _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih,
                                   dgates_hh, dx, dw_ih, dw_hh, db_ih, db_hh, cut, split)
        elif mode == PAIRED:
            _backward_half(dy, x, w_ih, w_hh, lengths, h, gates, recurrent_n, dh, carry, dgates_ih, dgates_hh,
                           dx, dw_ih, dw_hh, db_ih, db_hh, lane, cut, ctl, split)

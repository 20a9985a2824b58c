"""LSTM forward and BPTT kernels.  Shapes and gate order: see ``fastrnn.cells``.

The elementwise work is done on 1-D rows (one batch element of one step) by
``_gates_forward_row``/``_gates_backward_row``.  Written with 3-D indexing
(``gates[t, bi, H + j]``) the same loop ran scalar -- 26 ns per hidden unit
against 2.9 ns for the row form (float32, B=32, H=128, measured with a
standalone copy of both loops) -- because LLVM could not prove the 3-D
accesses independent; distinct 1-D arrays get ordinary runtime alias checks.
"""

from __future__ import annotations

import numpy as np

from numba import prange

from .._jit import jit, jit_inline, jit_lanes
from .activations import activate, tanh
from .lanes import (PAIRED, SOLO, batch_rows, meet, pair_up, products_half, products_halves, project_half,
                    project_halves)
from .matmul import (ROWS, backward_products, grad_operands, matrix_times_row, project, recurrent_grad,
                     product_form, row_times_matrix_inline, step_operands, step_product)


@jit
def _gates_forward_row(gates, recurrent, b, c_prev, c_next, h_next):
    """gates (4H,) holds x@w_ih.T on entry and the activated [i f g o] on exit;
    recurrent (4H,) = h@w_hh.T; b (4H,); c_prev (H,); writes c_next, h_next (H,).

    The activations run as one pass over all 4H gates (the g block is tanh,
    see ``activate``), so that the vector loop is 4H long, not H."""
    H = c_prev.shape[0]
    for k in range(4 * H):
        gates[k] = activate(gates[k] + recurrent[k] + b[k], (k >= 2 * H) & (k < 3 * H))
    _cell_update(gates, c_prev, c_next, h_next, 0, H)


@jit_inline  # into the per-row functions, as the loop was before it was shared with the lanes
def _cell_update(gates, c_prev, c_next, h_next, j0, j1):
    """c' = f*c + i*g and h' = o*tanh(c') for hidden units j0:j1 (gates activated)."""
    H = c_prev.shape[0]
    for j in range(j0, j1):
        c_new = gates[H + j] * c_prev[j] + gates[j] * gates[2 * H + j]  # f*c + i*g
        c_next[j] = c_new
        h_next[j] = gates[3 * H + j] * tanh(c_new)


@jit
def _gates_forward_part(gates, recurrent, b, c_prev, c_next, h_next, j0, j1):
    """``_gates_forward_row`` for hidden units j0:j1 only (a lane's share): the same
    expressions, gate block by gate block."""
    H = c_prev.shape[0]
    for q in range(4):
        lo = q * H + j0
        row, rec, bias = gates[lo:lo + j1 - j0], recurrent[lo:lo + j1 - j0], b[lo:lo + j1 - j0]
        for j in range(j1 - j0):
            row[j] = activate(row[j] + rec[j] + bias[j], q == 2)
    _cell_update(gates, c_prev, c_next, h_next, j0, j1)


_gates_forward_row_inline = jit_inline(_gates_forward_row.py_func)


@jit
def carry_row(h_prev, h_next, c_prev, c_next, gates):
    """A padded step: the state passes through unchanged and the step's gates are zero."""
    h_next[:] = h_prev
    c_next[:] = c_prev
    gates[:] = 0


@jit
def _forward_steps_smallest(w_hh, b, length, h, c, gates, work, bi):
    """``lstm_forward_steps`` for sequence bi alone in the ROWS form (the smallest sizes), with
    the step's product and gate row inlined; work (4H,).  The two calls were about 45 ns of
    a 215 ns step at H=10; inlined into the general loop, though, the same helpers made the
    B=1 H=32 forward 4-7% slower (both measured in alternating processes), so only this
    form gets the inlined copies."""
    w_hh_t, _ = step_operands(w_hh, ROWS, 1)
    for t in range(gates.shape[0]):
        if t < length:
            row_times_matrix_inline(h[t, bi], w_hh_t, work)  # (H,) @ (H,4H) -> (4H,)
            _gates_forward_row_inline(gates[t, bi], work, b, c[t, bi], c[t + 1, bi], h[t + 1, bi])
        else:
            carry_row(h[t, bi], h[t + 1, bi], c[t, bi], c[t + 1, bi], gates[t, bi])


@jit
def lstm_forward_steps(w_hh, b, lengths, h, c, gates, work, b0, b1, split):
    """The recurrence for batch rows b0:b1 (0:B, or a lane's share of the batch): gates
    (T,B,4H) holds x@w_ih.T on entry and the activated [i f g o] on exit; h, c (T+1,B,H) with
    [0] set; work (B,4H) scratch.  Steps t >= lengths[b] carry sequence b's state.  ``split``: a
    step too large for OpenBLAS's small path may run as two halves (``matmul.halves``)."""
    T = gates.shape[0]
    H = w_hh.shape[1]
    form = product_form(b1 - b0, 4 * H, H, T, w_hh.itemsize, split)
    if form == ROWS:
        _forward_steps_smallest(w_hh, b, lengths[b0], h, c, gates, work[b0], b0)
        return
    w_hh_t, landing = step_operands(w_hh, form, b1 - b0)
    # A batch's steps where every row is active take the inlined gate row: the call per row
    # was about a third of a B=32 H=32 step.  The forward's step loops alone, both forms
    # alternated in one process (float32, medians of 20 rounds): T=256 B=32 H=32 1283 -> 864
    # us, B=8 H=64 665 -> 572 us, B=2 H=32 97 -> 72 us, B=32 H=128 1.05x, H=512 1.01x.  Inlined
    # next to the padding branch, the gain fell to 1.01-1.08x; B == 1 keeps the call (see
    # _forward_steps_smallest).
    shortest = lengths[b0:b1].min() if b1 - b0 > 1 else 0
    for t in range(T):
        step_product(h[t, b0:b1], w_hh, w_hh_t, landing, form, work[b0:b1], t % 2 == 1)  # (b,H) @ (H,4H) -> (b,4H)
        if t < shortest:
            for bi in range(b0, b1):
                _gates_forward_row_inline(gates[t, bi], work[bi], b, c[t, bi], c[t + 1, bi], h[t + 1, bi])
            continue
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _gates_forward_row(gates[t, bi], work[bi], b, c[t, bi], c[t + 1, bi], h[t + 1, bi])
            else:
                carry_row(h[t, bi], h[t + 1, bi], c[t, bi], c[t + 1, bi], gates[t, bi])


@jit
def lstm_forward_kernel(x, w_ih, w_hh, b, lengths, h, c, gates, work):
    """x (T,B,D), w_ih (4H,D), w_hh (4H,H), b (4H,), lengths (B,); h, c (T+1,B,H) with h[0], c[0]
    set; writes h[1:], c[1:] and gates (T,B,4H, activated i f g o); work (B,4H) scratch."""
    project(x, w_ih, gates)
    lstm_forward_steps(w_hh, b, lengths, h, c, gates, work, 0, x.shape[1], False)


@jit
def _gates_backward_row(gates, c_prev, c_next, dy, dh, dc, dgates, dc_prev):
    """gates (4H,) activated [i f g o]; c_prev, c_next (H,); dy (H,); dh, dc (H,) hold the
    gradient from the step after; writes dgates (4H,) (pre-activation) and dc_prev (H,), the
    cell gradient for the step before.

    dc_prev is an array of its own, not dc updated in place: with dc read and written
    by the same loop the row ran 1.3-2x slower (float32, B=32, T=256, the loop over
    all rows of both forms alternated in one process: H=32 150-192 -> 97-118 ns per
    row, H=128 348-414 -> 229-234 ns)."""
    _gates_backward_span(gates, c_prev, c_next, dy, dh, dc, dgates, dc_prev, 0, c_prev.shape[0])


@jit_inline  # see _cell_update
def _gates_backward_span(gates, c_prev, c_next, dy, dh, dc, dgates, dc_prev, j0, j1):
    """``_gates_backward_row`` for hidden units j0:j1."""
    H = c_prev.shape[0]
    one = dy.dtype.type(1.0)
    for j in range(j0, j1):
        i = gates[j]
        f = gates[H + j]
        g = gates[2 * H + j]
        o = gates[3 * H + j]
        tc = tanh(c_next[j])
        dh_t = dh[j] + dy[j]
        dc_t = dc[j] + dh_t * o * (one - tc * tc)
        dgates[j] = dc_t * g * i * (one - i)
        dgates[H + j] = dc_t * c_prev[j] * f * (one - f)
        dgates[2 * H + j] = dc_t * i * (one - g * g)
        dgates[3 * H + j] = dh_t * tc * o * (one - o)
        dc_prev[j] = dc_t * f


@jit
def lstm_backward_steps(dy, w_hh, lengths, c, gates, dh, dc, dgates, work, b0, b1, split):
    """The dh/dc recurrence for batch rows b0:b1: dy (T,B,H); c, gates from the forward; dh, dc
    (B,H) hold dh_n, dc_n on entry and dh0, dc0 on exit; writes dgates (T,B,4H) (pre-activation);
    work (B,H) scratch.  Padded steps pass dh, dc through and ignore dy.  ``split`` as in
    ``lstm_forward_steps``."""
    T = gates.shape[0]
    shortest = lengths[b0:b1].min() if b1 > b0 else T
    form, w_hh_t, landing = grad_operands(w_hh, b1 - b0, T, split)
    after, before = dc, np.empty_like(dc)  # the cell gradients of steps t+1 and t, swapped each step
    for t in range(T - 1, -1, -1):
        for bi in range(b0, b1):
            if t < lengths[bi]:
                _gates_backward_row(gates[t, bi], c[t, bi], c[t + 1, bi], dy[t, bi], dh[bi], after[bi], dgates[t, bi],
                                    before[bi])
            else:
                dgates[t, bi, :] = 0
                before[bi, :] = after[bi]
        recurrent_grad(dgates[t], w_hh, w_hh_t, landing, form, lengths, t, t < shortest, dh, work, b0, b1)
        after, before = before, after
    if T % 2:  # dc0 ended in the spare array
        dc[b0:b1] = after[b0:b1]


@jit
def lstm_backward_kernel(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db):
    """dy (T,B,H); cache arrays as in the forward; dh, dc (B,H) hold dh_n, dc_n on entry and
    dh0, dc0 on exit; dgates (T,B,4H), work (B,H) scratch; writes dx (T,B,D), dw_ih (4H,D),
    dw_hh (4H,H), db (4H,).  Only the dh/dc recurrence is sequential."""
    lstm_backward_steps(dy, w_hh, lengths, c, gates, dh, dc, dgates, work, 0, x.shape[1], False)
    backward_products(x, w_ih, h, dgates, dgates, dx, dw_ih, dw_hh, db)


# --- two lanes (B == 1; see kernels/lanes.py) ---------------------------------------------


@jit
def _forward_lane(x, w_ih, w_hh, b, h, c, gates, work, lane, cut, ctl):
    """Lane ``lane``'s share of ``lstm_forward_kernel`` with B == 1 and no padding: half of the
    input projection's rows, then hidden units [0, cut) or [cut, H) of every step."""
    T = gates.shape[0]
    H = w_hh.shape[1]
    j0, j1 = (0, cut) if lane == 0 else (cut, H)
    project_half(x, w_ih, gates, lane, ctl)
    for t in range(T):
        for q in range(4):  # this lane's rows of each gate block: (j1-j0, H) @ (H,)
            matrix_times_row(w_hh[q * H + j0:q * H + j1], h[t, 0], work[0, q * H + j0:q * H + j1])
        _gates_forward_part(gates[t, 0], work[0], b, c[t, 0], c[t + 1, 0], h[t + 1, 0], j0, j1)
        meet(ctl, lane, t + 2)  # the other half of h[t + 1] is written


@jit
def _forward_half(x, w_ih, w_hh, b, lengths, h, c, gates, work, lane, cut, ctl, split):
    """Lane ``lane``'s share of ``lstm_forward_kernel`` split by batch rows: half of the input
    projection, a meeting, then rows [0, cut) or [cut, B) of every step, with no further meeting."""
    project_half(x, w_ih, gates, lane, ctl)
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    lstm_forward_steps(w_hh, b, lengths, h, c, gates, work, b0, b1, split)


@jit
def _forward_shares_alone(x, w_ih, w_hh, b, lengths, h, c, gates, work, cut, split):
    """Both lanes' shares of the batch split, in turn on one thread (a lane whose partner never
    came): the same products over the same rows as two paired lanes, so the same result, bit
    for bit -- a call's result does not depend on how the lanes were scheduled."""
    project_halves(x, w_ih, gates)
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        lstm_forward_steps(w_hh, b, lengths, h, c, gates, work, b0, b1, split)


@jit_lanes
def lstm_forward_lanes(x, w_ih, w_hh, b, lengths, h, c, gates, work, cut, ctl, by_batch, split):
    """``lstm_forward_kernel`` on two threads; ``cut`` splits the batch rows (``by_batch``) or,
    for B == 1 with no padding, the hidden units; ``ctl`` is ``lanes.CTL_SIZE`` int64 zeros;
    ``split`` lets a batch lane's step run as two halves (``matmul.halves``).  Falls back to one
    thread by itself."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO and by_batch:
            _forward_shares_alone(x, w_ih, w_hh, b, lengths, h, c, gates, work, cut, split)
        elif mode == SOLO:
            lstm_forward_kernel(x, w_ih, w_hh, b, lengths, h, c, gates, work)
        elif mode == PAIRED and by_batch:
            _forward_half(x, w_ih, w_hh, b, lengths, h, c, gates, work, lane, cut, ctl, split)
        elif mode == PAIRED:
            _forward_lane(x, w_ih, w_hh, b, h, c, gates, work, lane, cut, ctl)


@jit
def _backward_lane(dy, x, w_ih, w_hh, h, c, gates, dh, dc, dgates, spare, dx, dw_ih, dw_hh, db, lane, cut, ctl):
    """Lane ``lane``'s share of ``lstm_backward_kernel`` with B == 1 and no padding: hidden units
    [0, cut) or [cut, H) of every step, then half of dx's rows and one of the weight gradients.
    spare (1,H) takes turns with dc as the previous step's cell gradient."""
    T = gates.shape[0]
    H = w_hh.shape[1]
    j0, j1 = (0, cut) if lane == 0 else (cut, H)
    columns = np.ascontiguousarray(w_hh[:, j0:j1])  # (4H, j1-j0): dh[j0:j1] = dgates @ columns
    part = np.empty((1, j1 - j0), dh.dtype)
    after, before = dc[0], spare[0]
    for t in range(T - 1, -1, -1):
        _gates_backward_span(gates[t, 0], c[t, 0], c[t + 1, 0], dy[t, 0], dh[0], after, dgates[t, 0], before, j0, j1)
        meet(ctl, lane, T - t)  # all of dgates[t] is written
        np.dot(dgates[t], columns, part)  # BLAS: faster here than the loop forms (see matmul.py)
        dh[0, j0:j1] = part[0]
        after, before = before, after
    if T % 2:
        dc[0, j0:j1] = after[j0:j1]
    products_half(x, w_ih, h, dgates, dgates, dx, dw_ih, dw_hh, db, lane)


@jit
def _backward_half(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db, lane, cut,
                   ctl, split):
    """Lane ``lane``'s share of ``lstm_backward_kernel`` split by batch rows: the recurrence of
    rows [0, cut) or [cut, B), a meeting, then its share of the products."""
    b0, b1 = batch_rows(lane, cut, x.shape[1])
    lstm_backward_steps(dy, w_hh, lengths, c, gates, dh, dc, dgates, work, b0, b1, split)
    meet(ctl, lane, 1)  # all of dgates is written
    products_half(x, w_ih, h, dgates, dgates, dx, dw_ih, dw_hh, db, lane)


@jit
def _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db, cut,
                           split):
    """Both lanes' shares of ``_backward_half`` in turn on one thread; see ``_forward_shares_alone``."""
    for share in range(2):
        b0, b1 = batch_rows(share, cut, x.shape[1])
        lstm_backward_steps(dy, w_hh, lengths, c, gates, dh, dc, dgates, work, b0, b1, split)
    products_halves(x, w_ih, h, dgates, dgates, dx, dw_ih, dw_hh, db)


@jit_lanes
def lstm_backward_lanes(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db, cut, ctl,
                        by_batch, split):
    """``lstm_backward_kernel`` on two threads; see ``lstm_forward_lanes``."""
    for lane in prange(2):
        mode = pair_up(ctl)
        if mode == SOLO and by_batch:
            _backward_shares_alone(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db,
                                   cut, split)
        elif mode == SOLO:
            lstm_backward_kernel(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db)
        elif mode == PAIRED and by_batch:
            _backward_half(dy, x, w_ih, w_hh, lengths, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db, lane,
                           cut, ctl, split)
        elif mode == PAIRED:
            _backward_lane(dy, x, w_ih, w_hh, h, c, gates, dh, dc, dgates, work, dx, dw_ih, dw_hh, db, lane, cut, ctl)

"""Softmax cross-entropy in loop form, for ``fastrnn.nn.cross_entropy``.

NumPy's row reductions are slow for short rows: on the character task's
864 x 40 logits the NumPy version took 185 us, 44 of them in ``max(axis=1)``
and 24 in ``sum(axis=1)`` (median of 500 calls each).  Here each row is one
pass for its maximum, one vectorized pass for the exponentials (the kernels'
``exp_split``, within 2.5 ulp), and one for the gradient.
"""

from __future__ import annotations

import math

from .._jit import jit
from .activations import exp_split


# The reductions keep four running values: one chain of C dependent adds (or
# compares) was half of the kernel's time at C=40.

@jit
def _row_max(row):
    """max(row), NaN if any element is NaN."""
    C = row.shape[0]
    m0 = m1 = m2 = m3 = row[0]
    k = 0
    while k + 4 <= C:
        if not row[k] <= m0:  # NaN wins, so it reaches every element of the row
            m0 = row[k]
        if not row[k + 1] <= m1:
            m1 = row[k + 1]
        if not row[k + 2] <= m2:
            m2 = row[k + 2]
        if not row[k + 3] <= m3:
            m3 = row[k + 3]
        k += 4
    for i in range(k, C):
        if not row[i] <= m0:
            m0 = row[i]
    for m in (m1, m2, m3):
        if not m <= m0:
            m0 = m
    return m0


@jit
def _row_sum(row):
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    s0 = s1 = s2 = s3 = zero
    k = 0
    while k + 4 <= C:
        s0 += row[k]
        s1 += row[k + 1]
        s2 += row[k + 2]
        s3 += row[k + 3]
        k += 4
    for i in range(k, C):
        s0 += row[i]
    return (s0 + s1) + (s2 + s3)


@jit
def softmax_cross_entropy(rows, labels, losses, dlogits):
    """rows (N,C) logits, labels (N,) int64 in [0, C) -> losses (N,) = -log softmax(rows)[label]
    and dlogits (N,C) = (softmax(rows) - onehot(labels)) / N.

    Each row's maximum is subtracted first, so no exponential overflows.  A NaN
    or +Inf logit makes its row's loss and gradient NaN; a -Inf logit is a
    class of probability 0 (loss Inf only if it is the target)."""
    N, C = rows.shape
    one = rows.dtype.type(1.0)
    count = rows.dtype.type(N)
    for n in range(N):
        row = rows[n]
        out = dlogits[n]
        top = _row_max(row)
        for k in range(C):
            scale, p = exp_split(row[k] - top)  # exp of a value <= 0 (NaN passes through)
            out[k] = scale + scale * p
        norm = _row_sum(out)
        label = labels[n]
        losses[n] = math.log(norm) - (row[label] - top)
        # One scaling pass, by reciprocals (1-2 ulp from dividing twice): the divisions
        # were a quarter of the kernel's time at C=40.
        scale = (one / norm) / count
        for k in range(C):
            out[k] = out[k] * scale
        out[label] -= one / count

"""The affine layer's products, for ``fastrnn.nn.Linear``.

The same BLAS products NumPy would run, with the bias added and the bias
gradient summed in loops: on the character task's head (864 x 10 -> 40,
float32) ``rows @ weight.T + bias`` took 22.5 us against 14.3 us here, and
``dy.sum(axis=0)`` 16.7 us against 3.7 us (medians of 2000, one process).
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .matmul import column_sums


@jit
def linear_forward(rows, weight, bias, out):
    """out (N, D_out) = rows (N, D_in) @ weight (D_out, D_in).T + bias (D_out,)."""
    np.dot(rows, weight.T, out)
    for n in range(out.shape[0]):
        row = out[n]
        for k in range(row.shape[0]):
            row[k] += bias[k]


@jit
def linear_backward(dy, x, weight, dweight, dbias, dx):
    """dy (N, D_out), x (N, D_in), weight (D_out, D_in): dweight += dy.T @ x, dbias += the
    column sums of dy, dx (N, D_in) = dy @ weight."""
    dw = np.dot(dy.T, x)
    db = np.empty_like(dbias)
    dweight += dw
    column_sums(dy, db)
    dbias += db
    np.dot(dy, weight, dx)

"""Optimizer updates in one pass per parameter, for ``fastrnn.nn.optim``.

Written with NumPy operators, an Adam update is nine array operations per
parameter, each a pass over memory plus about 1 us of call overhead; for the
small layers of the character task (six arrays, the largest 40 x 40) that was
48 us of a 0.83 ms training step (median of 400, ``Adam.step`` alone).  Here
each update is one loop over the flattened arrays.

The arithmetic is the NumPy form's, in the parameter's dtype (the Python-float
scalars are cast to it first, as NumPy casts a scalar next to an array), so
float32 updates stay float32; LLVM may contract a
multiply-add into an FMA (``contract`` in ``_jit``), which changes the last bit
of some elements.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, jit_sum


@jit
def sgd_update(param, grad, velocity, lr, momentum):
    """velocity = momentum*velocity + grad;  param -= lr*velocity.  1-D arrays of one length."""
    cast = param.dtype.type
    lr, momentum = cast(lr), cast(momentum)
    for k in range(param.shape[0]):
        v = velocity[k] * momentum + grad[k]
        velocity[k] = v
        param[k] -= lr * v


@jit
def adagrad_update(param, grad, sum_sq, lr, eps):
    """sum_sq += grad**2;  param -= lr*grad / (sqrt(sum_sq) + eps).  1-D arrays of one length."""
    cast = param.dtype.type
    lr, eps = cast(lr), cast(eps)
    for k in range(param.shape[0]):
        g = grad[k]
        s = sum_sq[k] + g * g
        sum_sq[k] = s
        param[k] -= lr * g / (np.sqrt(s) + eps)


@jit
def adam_update(param, grad, exp_avg, exp_avg_sq, beta1, keep1, beta2, keep2, step_size, correction2, eps):
    """m = beta1*m + keep1*g;  v = beta2*v + keep2*g**2;
    param -= step_size * m / (sqrt(v / correction2) + eps), with keep = 1 - beta and
    step_size = lr / correction1 (formed in float64 by the caller, as NumPy forms them).
    1-D arrays of one length."""
    cast = param.dtype.type
    beta1, keep1, beta2, keep2 = cast(beta1), cast(keep1), cast(beta2), cast(keep2)
    step_size, correction2, eps = cast(step_size), cast(correction2), cast(eps)
    for k in range(param.shape[0]):
        g = grad[k]
        m = exp_avg[k] * beta1 + keep1 * g
        v = exp_avg_sq[k] * beta2 + keep2 * g * g
        exp_avg[k] = m
        exp_avg_sq[k] = v
        param[k] -= step_size * m / (np.sqrt(v / correction2) + eps)


@jit_sum
def sum_of_squares(flat):
    """The sum of ``flat``'s squares (1-D, float32 or float64), accumulated in float64.

    Why not ``np.dot(flat, flat)``: NumPy's OpenBLAS threads a dot product of more than
    10,000 elements, and its worker then spins for about 0.1 s (103 ms here) -- so a training
    loop that clips every step kept a thread busy for good, taking the second core from the
    kernels' own threaded products (``fastrnn train`` showed a third thread at about 44% of a
    core).  The loop may be reassociated (``jit_sum``), which only reorders the additions."""
    total = 0.0
    for k in range(flat.shape[0]):
        v = np.float64(flat[k])
        total += v * v
    return total

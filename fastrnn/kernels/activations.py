"""Scalar activations used inside the kernels, in the precision of their argument.

Constants are built with ``type(v)(...)`` so that a float32 kernel never
promotes to float64 (a bare ``1.0`` literal is a float64 in Numba).
"""

from __future__ import annotations

import math

from .._jit import jit


@jit
def sigmoid(v):
    """1 / (1 + exp(-v)) without overflow: exp is only ever taken of -|v|."""
    one = type(v)(1.0)
    z = math.exp(-abs(v))
    r = one / (one + z)
    return r if v >= 0 else z * r


@jit
def tanh(v):
    return math.tanh(v)

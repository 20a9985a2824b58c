"""Scalar activations for the kernels, written so that LLVM vectorizes the gate loops.

llvmlite from PyPI ships no SVML, so ``math.exp``/``math.tanh`` stay scalar
libm calls (about 2 ns per element in the gate loop).  Here ``exp`` is built
from arithmetic LLVM can vectorize:

    u = n*ln2 + r,  |r| <= ln2/2,  n = round(u / ln2)      (Cody-Waite: ln2 = hi + lo)
    exp(u) = 2**n * (1 + expm1(r)),  expm1(r) = r + r**2/2! + ... + r**k/k!

and ``2**n`` is written straight into the exponent bits.  The Taylor degree
``k`` is chosen per dtype so that the truncation error
``|r|**(k+1)/(k+1)! * e**|r|`` is below half an ulp relative to ``expm1(r)``:
k = 7 for float32 (1.5e-8 < 6.0e-8) and k = 13 for float64 (1.7e-17 < 1.1e-16).
Only ``u <= 0`` is ever needed (``exp(-|x|)``, ``expm1(-2|x|)``), so nothing
overflows; where ``exp(u)`` falls below the smallest normal number it is
flushed to zero (an absolute error below 1.2e-38 / 2.2e-308).

Measured maximum errors (``tests/test_activations.py`` checks them on a dense
sample against an extended-precision reference):

* sigmoid: 2.3 ulp (float32), 2.1 ulp (float64) where the result is normal;
* tanh: 2.5 ulp (float32), 2.5 ulp (float64);

the test bound is 3 ulp for both, in both dtypes.

NaN propagates; +-inf saturate to the limits.  Constants are typed per dtype:
a bare ``1.0`` would turn float32 work into float64 (``tests/test_parity.py``
checks the float32 kernels' IR for any widening).
"""

from __future__ import annotations


import numpy as np

from .._jit import by_float_type, float_from_bits, jit


def _exp_split_f32(value):
    """(scale, p) with exp(u) = scale*(1 + p) and expm1(u) = (scale - 1) + scale*p, for u = value <= 0 (float32)."""
    u = value
    # Below lo, n would leave the exponent field; at lo, n = -127 gives scale = 0,
    # so exp flushes to zero only where it is below the smallest normal (1.2e-38).
    lo = np.float32(-88.0)
    uc = lo if u < lo else u  # a NaN stays NaN (the comparison is false)
    n = np.floor(uc * np.float32(1.44269504) + np.float32(0.5))
    n = n if n == n else np.float32(0.0)  # keep the int conversion defined for NaN; r carries the NaN
    r = (uc - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)  # ln2 = hi + lo
    p = r * (np.float32(1.0) + r * (np.float32(1 / 2) + r * (np.float32(1 / 6) + r * (np.float32(1 / 24) + r * (
        np.float32(1 / 120) + r * (np.float32(1 / 720) + r * np.float32(1 / 5040)))))))
    scale = float_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
    return scale, p


def _exp_split_f64(value):
    """(scale, p) with exp(u) = scale*(1 + p) and expm1(u) = (scale - 1) + scale*p, for u = value <= 0 (float64)."""
    u = value
    lo = -709.0  # as for float32: n = -1023 gives scale = 0, below the smallest normal (2.2e-308)
    uc = lo if u < lo else u
    n = np.floor(uc * 1.4426950408889634 + 0.5)
    n = n if n == n else 0.0
    # ln2 split with the low 32 bits of hi zero, so n*hi is exact (fdlibm's constants).
    r = (uc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
    p = r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (
        1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 + r * (
            1 / 6227020800)))))))))))))
    scale = float_from_bits(np.int64((np.int64(n) + np.int64(1023)) << np.int64(52)))
    return scale, p


exp_split = by_float_type(_exp_split_f32, _exp_split_f64)


@jit
def activate(x, is_tanh):
    """tanh(x) if ``is_tanh`` else sigmoid(x), from one exp(-a|x|) (a = 2 for tanh, 1 for sigmoid).

    One formula for both lets a loop over all four LSTM gates (i f g o, the
    g block tanh) vectorize as a single pass of 4H elements.  Split per gate,
    the passes are H long, and at small H LLVM's vector body never runs: the
    LSTM forward's gate work went from 19.4 to 11.4 ns per hidden unit at
    H=10 and from 5.0 to 3.9 at H=32, and stayed at 3.0 at H=128 (float32,
    B=1, a standalone copy of both loops, min of 20).

    With z = exp(-a|x|) and e = expm1(-a|x|) (computed without the
    cancellation of z - 1), each is one division with selected operands:
    sigmoid(|x|) = 1 / (1 + z), sigmoid(-|x|) = z / (1 + z), and
    tanh(|x|) = -e / (2 + e), accurate down to tiny |x|.  (A shared
    reciprocal, or 2 + e for the sigmoid, measured up to 3.06 ulp.)
    """
    one = type(x)(1.0)
    two = type(x)(2.0)
    a = two if is_tanh else one
    scale, p = exp_split(-a * abs(x))
    z = scale + scale * p  # exp(-a|x|), in (0, 1]
    e = (scale - one) + scale * p  # expm1(-a|x|), in (-1, 0]
    if is_tanh:
        return np.copysign(-e / (two + e), x)
    return (one if x >= 0 else z) / (one + z)


@jit
def sigmoid(x):
    """1 / (1 + exp(-x)), computed from exp(-|x|) so that nothing overflows."""
    return activate(x, False)


@jit
def tanh(x):
    """tanh(|x|) = -expm1(-2|x|) / (1 + exp(-2|x|)), with the sign of x."""
    return activate(x, True)

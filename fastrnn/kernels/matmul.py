"""The forward's per-step product in loop form, for single sequences too small for BLAS to pay.

A BLAS call through Numba's ``np.dot`` costs about 0.1-0.3 us before any
work.  Measured per step (float32, 1 thread, 256 steps, min of 7, both forms
interleaved in one process, ``h @ w_hh.T`` with B=1): H=10: 0.09 us in loops
vs 0.16 us via BLAS; H=32: 0.20 vs 0.34; H=64: 0.86 vs 0.99; H=128: 2.9 vs 3.2.
With B > 1, and for the backward's ``dgates @ w_hh``, BLAS was as fast or
faster (B=4, H=64: 2.6 vs 2.0 forward, 4.3 vs 1.2 backward), so only the
forward with B == 1 and at most ``SMALL_STEP_MACS`` multiply-adds per step
takes this path.

Four rows are combined per pass so that each load/store of the accumulator
row serves four multiply-adds.
"""

from __future__ import annotations

from .._jit import jit

SMALL_STEP_MACS = 1 << 16


@jit
def use_loops(B, rows, inner):
    """True when the forward's per-step (B x inner) @ (inner x rows) product should skip BLAS."""
    return B == 1 and rows * inner <= SMALL_STEP_MACS


@jit
def row_times_matrix(v, m, out):
    """out (N,) = v (K,) @ m (K, N), m C-contiguous; vectorized along N."""
    K = v.shape[0]
    out[:] = 0
    k = 0
    while k + 4 <= K:
        a0, a1, a2, a3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        r0, r1, r2, r3 = m[k], m[k + 1], m[k + 2], m[k + 3]
        for n in range(out.shape[0]):
            out[n] += a0 * r0[n] + a1 * r1[n] + a2 * r2[n] + a3 * r3[n]
        k += 4
    while k < K:
        a0 = v[k]
        r0 = m[k]
        for n in range(out.shape[0]):
            out[n] += a0 * r0[n]
        k += 1

"""Matrix products of the kernels.

The forward's per-step product in loop form, for single sequences too small for BLAS to pay.

A BLAS call through Numba's ``np.dot`` costs about 0.1-0.3 us before any
work.  Measured per step (float32, 1 thread, 256 steps, min of 7, both forms
interleaved in one process, ``h @ w_hh.T`` with B=1): H=10: 0.09 us in loops
vs 0.16 us via BLAS; H=32: 0.20 vs 0.34; H=64: 0.86 vs 0.99; H=128: 2.9 vs 3.2.
With B > 1, and for the backward's ``dgates @ w_hh``, BLAS was as fast or
faster (B=4, H=64: 2.6 vs 2.0 forward, 4.3 vs 1.2 backward), so only the
forward with B == 1 and at most ``SMALL_STEP_MACS`` multiply-adds per step
takes a loop form.  That limit is where OpenBLAS starts to thread the product
(2**18); up to it the loop form stayed ahead (per step, 256 steps, medians of
9: 512 x 512 9.1 vs 9.9 us, 1024 x 256 9.3 vs 10.8), and beyond it BLAS's two
threads win (1536 x 512: 16 vs 30 us).  Raising the limit from 2**16 made the
public forward (B=1, T=256, alternating processes, medians of 20) of the LSTM
at H=256 go from 3.62-3.69 to 3.15-3.26 ms and of the RNN at H=512 from
3.20-3.24 to 2.98-3.13 ms.  There are two loop forms (``product_form``):

* ``ROWS``: ``h @ w_hh.T`` as a sum of rows of the transposed weights,
  vectorized along the output.  Fastest per step at the smallest sizes, but
  the transposed copy is made on every call (``transposed``: 12 us at
  4H x H = 512 x 128; Numba's ``np.ascontiguousarray(w.T)``, used before, took 41).
* ``DOTS``: one dot product per output row, straight from ``w_hh``, vectorized
  along the sum (``jit_sum``).  No copy; per step it measured alike or faster
  from about 4096 weights up (K=128: N=128 0.74 vs 0.76 us, N=512 2.27 vs
  2.82, N=384 2.06 vs 1.79) and slower below (K=10, N=40: 0.054 vs 0.039).

Four rows are combined per pass in either form so that each load/store of the
accumulators serves four multiply-adds.

The backward's per-step ``dgates @ w_hh`` with B == 1 at small sizes is
faster as ``DOTS`` on a transposed copy of ``w_hh`` (vectorized along the
G*H sum) than through BLAS.  Measured per step of the LSTM backward recurrence
(float32, T=864, median of 200, both forms in one process): H=10: 129 vs 203
ns; H=32: 295 vs 464; H=64: 740 vs 982; H=128: 3100 vs 3320.  The copy cost
about 0.6 ns per weight when these thresholds were set (0.95 us at 4H x H = 40 x
10, 10.4 us at 256 x 64; ``transposed`` now takes 0.77 and 3.6 us), so
``grad_form`` takes the loop only up to ``GRAD_LOOP_MACS`` weights and only
when there are enough steps to pay for the copy: ``T * 256 >= weights`` (at
H=64 the copy paid back after about 44 steps).  With the cheaper copy the loop
form was extended from 2**14 to 2**16 weights (``GRAD_LOOP_MACS``), which takes
in the LSTM at H=128 from T=256 on: public backward, B=1, T=256, alternating
processes, medians of 50: LSTM H=128 981-1011 -> 911-950 us, GRU H=128
859-862 -> 769-829 us.  Counting T at 1024 per weight instead (T >= 64 at
H=128) made the LSTM's T=64 backward slower (312-321 -> 323-330 us), so the
step rule stayed.

Either DOTS product goes one row at a time (``LONG_DOTS``, ``long_rows_times_row``) on a
matrix past L1 (``LONG_DOTS_FROM_BYTES``) whose rows hold 1 to 2 KB (``LONG_DOTS_ROW_BYTES``,
``LONG_DOTS_ROW_BYTES_BELOW``) and start on cache lines.  There four rows in step -- four
streams through L2 -- ran slower than one row, whose sum LLVM splits over four vector
accumulators.  Per product, 256 products, medians of 15, the better of three rounds, four
rows / one row (scratch copies compiled without the cache): float32 128 x 384 (the GRU's
H=128 backward) 1433 / 1147 ns, 256 x 256 (the RNN's H=256, both ways) 1935 / 1316, 1024 x
256 (the LSTM's H=256 forward) 8327 / 8033; float64 128 x 128 952 / 760, 512 x 128 3853 /
2999.  Outside the limits four rows won or tied: float32 64 x 256 (64 KB) 483 / 511, 512 x
128 (512-byte rows) 1393 / 1511, 147 x 441 (rows off the lines) 1953 / 2062; float64 32 x
128 106 / 199, 64 x 192 718 / 749.  Rows of 2 KB and more also ran faster one at a time in
such loops (float32 128 x 512, the LSTM's H=128 backward: 1869 / 1490 ns; with the gate row
in the loop 2031 / 1425 ns a step), but not in the kernels: the LSTM's public backward at
T=256 B=1 H=128 took 858-879 us that way against 848-859 us (alternating processes, medians
of 300), and float64 at H=256 (2 KB rows) moved by nothing or lost (``fastrnn bench``, LSTM
forward T=32 815-874 -> 877-914 us); why, this was not found, so the form stops there.  (Chosen
per call as a form: the same test inside ``matrix_times_row`` made its four-row loop about
6% slower.)

A DOTS matrix of at most ``ZIGZAG_UP_TO_BYTES`` (twice L1) is read last row first on every
other step (``zigzag``, ``matrix_times_row_backwards``), so that a step starts on the rows the
step before ended on, which L1 still holds, instead of on those it evicted longest ago.  Per
product, 256 products alternating as the kernels do against one direction, medians of 15,
the better of three rounds (scratch copies): float32 128 x 128 (the RNN's H=128) 388 -> 344
ns, 64 x 256 477 -> 311, 256 x 64 475 -> 411, 192 x 64 424 -> 366; float64 96 x 96 652 ->
526; but 256 x 128 (128 KB) 770 -> 834 and 512 x 128 1519 -> 1779, and up to 36 KB even.
Public calls, alternating processes, medians of 300: RNN T=256 B=1 H=128 forward 165 ->
157-160 us, backward 198-200 -> 192-197 us.  Each row is summed as in ``matrix_times_row``, so
the order changes no result.

At the other end, with B == 1 and at least ``GRAD_TRANSPOSED_MACS`` weights,
``dgates @ w_hh`` is BLAS's matrix-vector product either way, but OpenBLAS runs
it faster, and splits it better across its two threads, as dot products along
contiguous rows (``dgates @ w_hh_t.T``, the forward's orientation) than as sums
of scaled rows of ``w_hh``; ``BLAS_T`` is the former, on a ``transposed`` copy.
Per step, 2048 x 512 float32, 256 steps, medians of 9: 22.8 us against 33-63 on
two threads, 41.1 against 44.6 on one; 1024 x 256: 8.9 against 10.3; 512 x 128:
2.17 both ways. The copy (0.74 ms at 2048 x 512 then; 0.24 ms since ``transpose_into``
writes whole lines there) pays from about 64 steps (``GRAD_TRANSPOSED_STEPS``; with the
cheaper copy, 32 steps was still slower at H=512: 1.71-1.83 -> 2.12-2.21 ms, medians of
20).  Public backward, alternating processes against the plain BLAS form, OpenBLAS
choosing its own kernels, medians of 15-20 calls: LSTM H=512 T=256 12.1-12.2 -> 10.9-11.1
ms, T=64 5.1-5.8 -> 4.2-4.5 ms, T=32 3.0-3.2 -> 3.2-3.4 ms (hence the step limit); GRU H=512 T=256 9.3-9.5 -> 7.8
ms, T=64 3.9-4.3 -> 2.8-2.9 ms; RNN H=512 (2**18 weights) T=64 1.14-1.29 ->
1.29-1.32 ms (hence ``GRAD_TRANSPOSED_MACS`` = 2**19).

A batch's forward (B > 1) also takes ``BLAS_T`` while its step is small:
``h_t @ w_hh_t`` on the (H, G*H) ``transposed`` copy instead of ``h_t @
w_hh.T``.  OpenBLAS ran the transposed-operand form of small products
slower, mostly at about half the speed.  Time of ``h_t @ w_hh.T`` over the copy's, 32 steps
with the copy included, float32, medians of 15: B=32 H=32 G=4 2.05, G=1 1.81;
B=32 H=64 G=4 (2**19 multiply-adds) 1.84; B=16 H=128 G=3 2.49; B=8 H=128 G=4
3.46; B=2 H=64 G=4 1.09.  From about 2**20 multiply-adds per step on, the
plain form was as fast or faster, down to 0.83 of the copy's time (B=32 H=128
G=4 0.98, B=4 H=256 G=4 0.85, B=8 H=256 G=4 0.83), and in float64 from 2**19 (B=32 H=64 G=4 0.83), hence the limit
in bytes, ``FORWARD_TRANSPOSED_BELOW_BYTES``.  With few steps the copy does
not pay (T=4: B=2 H=64 G=4 0.52, B=32 H=64 G=4 1.48), hence
``FORWARD_TRANSPOSED_ROWS``: T*B*64 >= G*H*H.  Public forward, alternating
processes against the plain form, float32, T=256 B=32: LSTM H=32 1.85 ->
1.52 ms, RNN H=32 0.50 -> 0.44 ms, RNN H=128 5.1 -> 3.4-3.7 ms; T=32 B=32
H=32: LSTM 257 -> 221 us, RNN 80 -> 72 us.  The forward's step loops alone,
both forms alternated in one process (B=32, medians of 20 rounds), ran 1.24x
(LSTM H=32, T=32 and 256), 1.14-1.24x (GRU H=32) and 1.41x (GRU H=64, T=32)
faster on the copy.

That step rule was too cautious wherever the plain form leaves OpenBLAS's small-matrix path.
OpenBLAS's SkylakeX kernels (which it picks on this machine when ``OPENBLAS_CORETYPE`` is
unset; see README, "Performance") compute a product of at most 100**3 multiply-adds without
packing its operands, but take the operand ``h_t @ w_hh.T`` reads transposed that way only
while the output has at most 1200 numbers (``sgemm_small_kernel_permit_skylakex.c``,
OpenBLAS 0.3.x).  Beyond that, the plain form is packed on every step and the copy paid even
over two steps.  Time of the plain form over the copy's, copy included, one thread, medians
of 9: float32 B*G*H > 1200 -- G=4 H=128 B=3 T=2 1.80, T=32 3.83; B=4 1.92 / 5.45; G=3 H=128
B=4 2.03 / 6.45; G=4 H=64 B=8 1.90 / 4.06; G=1 H=256 B=8 1.84 / 3.60; G=4 H=32 B=16 1.57 /
2.67 -- against B*G*H <= 1200, where the plain form won over few steps (G=4 H=128 B=2 T=2
0.33, T=32 0.93; G=3 H=64 B=4 0.48 / 1.54); float64 alike (G=4 H=64 B=8 1.66 / 2.65; G=4
H=128 B=4 1.27 / 2.72).  Hence ``PLAIN_OUTPUTS_UP_TO``: with more outputs a batch's step
takes the copy from two steps on.  Public forward, alternating processes against the step
rule alone (three each, medians of 30-200 calls): float32 LSTM T=32 B=4 H=128 663-835 ->
272-280 us, B=8 622-962 -> 381-397 us, T=8 B=4 H=128 205-207 -> 107-115 us; GRU T=32 B=8
H=128 684-742 -> 335-391 us, B=32 (two lanes of 16 rows) 978-1218 -> 643-698 us; RNN T=32 B=8
H=256 579-910 -> 341-398 us; float64 LSTM T=32 B=4 H=128 882-924 -> 418-452 us; at B*G*H <=
1200 unchanged (LSTM T=32 B=2 H=128, T=8 B=2 H=64).  With ``OPENBLAS_CORETYPE=Haswell``,
which has no small-matrix path, the same calls moved within 3% but for LSTM T=8 B=4 H=128
(277-283 -> 294-320 us): there the copy does not pay back over 8 steps.

Past that size (B*G*H*H*itemsize of at least ``FORWARD_TRANSPOSED_BELOW_BYTES``), a float32
batch of 2 to 32 rows puts the weights on the left: ``BLAS_W`` computes ``w_hh @ h_t.T``
into a (G*H, B) landing array and moves it into the (B, G*H) rows (``transpose_into``), and
the backward computes ``w_hh_t @ dgates_t.T`` (H, B) on the transposed copy the same way.
OpenBLAS ran these small-N products much faster than the same products with the batch
on the left: the forward's step (product only) at B=32 G=4 ran at 153-174 GMAC/s against
75-106 for ``h_t @ w_hh.T`` (H=128 to 512, two runs), the backward's at B=32 H=512 at 159
against 96.
Time of the previous form over BLAS_W with the transposition included, 32 steps, medians
of 9, forward / backward: G=4 H=128 B=16 1.93 / 1.69, B=32 1.31 / 1.22, B=64 1.02 / 0.90,
B=128 0.90 / 1.00; G=4 H=512 B=2 1.66 / 1.86, B=32 1.23 / 1.48, B=64 0.92 / 1.14, B=128 0.86 /
1.05; G=1 H=512 B=16 2.11 / 2.06; G=3 H=256 B=16 2.05 / 2.10.  Below the size limit the
batch's own forms won (G=4 H=128 B=8: 0.67 of BLAS_T's speed), hence the rows limit
``WEIGHTS_LEFT_UP_TO_ROWS`` and the shared size limit.  In float64 the same grid was mixed
where BLAS_W would apply (forward 0.74-1.43, backward 0.69-1.69, one run), so float64 keeps
BLAS.  The backward's copy (0.4-0.7 ms at
2048 x 512 when this was measured, 0.24 ms since) pays from about 16 steps
(``WEIGHTS_LEFT_STEPS``): public backward, alternating processes, medians of 30, LSTM B=2
H=512 T=8 2.13-2.17 -> 2.42-2.44 ms but T=16 3.89-3.93 -> 3.41-3.57 ms; LSTM B=32 H=128 T=16
1.33-1.38 -> 1.27-1.29 ms.  With the cheaper copy, 8 steps paid at H=512 (B=2: 2.17-2.43 ->
1.88-1.98 ms; B=32: 6.67 -> 6.28-6.40 ms) but not at B=32 H=128 (520-529 -> 523-556 us), so
the limit stayed.  Public forward / backward at T=256 (alternating processes,
medians of 8-15): LSTM B=32 H=128 11.4-13.7 / 18.6-22.3 -> 10.2-10.3 / 18.0-18.4 ms; LSTM
B=16 H=128 7.5-7.6 / 10.5-10.8 -> 5.4 / 8.7 ms; LSTM B=2 H=512 48.5-49.9 / 54.0-54.2 -> 30.3
/ 35.4-35.5 ms; RNN B=32 H=512 37.5 / 59.6-60.0 -> 28.3-28.9 / 51.2-51.6 ms; GRU B=32 H=128
11.1-11.2 / 19.4-19.5 -> 9.4-9.5 / 18.7-18.8 ms.

A batch of 2 or 3 rows whose weights hold at least ``PER_ROW_FROM_MACS`` numbers computes its
step as one matrix-vector product per row (``PER_ROW``): the forward's ``w_hh @ h_t[b]``
straight from ``w_hh``, the backward's ``w_hh_t @ dgates_t[b]`` on the transposed copy (from
``WEIGHTS_LEFT_STEPS`` on, as BLAS_W).  Weights that large do not fit a core's L2; OpenBLAS's
GEMM packs them on every step and so reads them about three times, where two or three
matrix-vector products read them two or three times and pack nothing; at four rows the two
came out even (float32 G=4 H=512 B=4 forward, one thread: BLAS_W 167, per row 175 us).
The limit, 460,800, is where OpenBLAS starts to run a matrix-vector product on two threads
(measured: 459,776 weights took the same time on one and two, 460,800 half); below it, where
OpenBLAS threads the GEMM but not the matrix-vector product, the rows lost (float64 G=4 H=320
B=3, two threads: 75 against 112 us forward).  Per step, 32 steps, medians of 9, forward /
backward, the form taken before against PER_ROW, one BLAS thread (two): float32 G=4 H=512
B=2 (BLAS_W) 176 / 184 against 89 / 99 us (103 / 108 against 46 / 55); B=3 256 / 272 against
131 / 132 (144 / 155 against 73 / 76); G=4 H=384 B=3 (BLAS_W) 136 / 143 against 75 / 78;
G=1 H=724 B=2 (BLAS_T / BLAS) 138 / 129 against 43 / 46; float64 G=4 H=512 B=2 (BLAS) 398 /
235 against 206 / 224 (243 / 152 against 98 / 126).  float64's backward with three rows lost
(G=4 H=512 B=3: 296 against 334 us, 154 against 174 on two threads), so it takes PER_ROW with
two rows only.

On a lane (``kernels/lanes.py``), whose BLAS runs on one thread, a step a little too large
for OpenBLAS's small-matrix path (more than 100**3 multiply-adds, above) runs faster as two
products over the halves of its rows, each of which fits it: ``HALVES``, the forward on the
transposed copy, the backward on ``w_hh`` itself.  Per step, one thread, 32 steps, medians of
15, forward / backward, the form taken before against HALVES: LSTM B=16 H=128 (BLAS_W) 15.0 /
14.8 against 11.1 / 10.3 us; GRU B=32 H=128 18.7 / 19.2 against 13.6 / 16.0; RNN B=16 H=256
13.8 / 13.9 against 10.9 / 8.8; LSTM B=4 H=256 37.9 / 40.1 against 27.1 / 23.5.  On
OpenBLAS's two threads the halves lost (forward 9.8 against 11.3 us at LSTM B=16 H=128) --
the small path is single-threaded -- so the one-thread kernel, which lets OpenBLAS thread a
large call, keeps the other forms, and where three or more parts would be needed the split
lost as well (LSTM B=32 H=128 backward 26.3 against 29.5 us in thirds).  Without the small
path (OpenBLAS's Haswell kernels, ``OPENBLAS_CORETYPE=Haswell``) each half packs the whole
weights, and the split lost badly: ``fastrnn bench --cell lstm --batch 32 --hidden 128
--seq-len 32 --mode fwdbwd --impl fastrnn`` took 4.28-4.46 ms before against 6.39-7.04 ms,
three runs each.  So lanes split only where SciPy's OpenBLAS has the path
(``_blas.has_small_path``).  Public forward /
backward on two lanes, alternating processes against the forms before, three each: LSTM T=32
B=32 H=128 1010-1019 / 1586-1608 -> 853-899 / 1376-1430 us, T=256 8.5-10.4 / 14.5-15.6 ->
7.7-7.9 / 12.8-13.5 ms; RNN T=256 B=32 H=256 7.4-7.8 / 12.5-13.0 -> 6.4-7.1 / 10.9-11.4 ms;
LSTM T=64 B=8 H=256 3.5-3.8 / 4.75-5.1 -> 3.0-3.6 / 3.3-3.6 ms; float64 LSTM T=32 B=32
H=128 2.6-3.0 / 3.9-4.9 -> 2.24-2.36 / 3.3-3.6 ms, T=256 20.9-21.8 / 35.7-37.9 -> 18.5-19.0 /
30.9-31.8 ms.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, jit_inline, jit_sum

SMALL_STEP_MACS = 1 << 18
DOTS_FROM_MACS = 1 << 12
GRAD_LOOP_MACS = 1 << 16
BLAS, ROWS, DOTS = 0, 1, 2  # the forward's per-step product forms, see the module docstring
BLAS_T = 3  # the per-step product as BLAS on a transposed copy, see the module docstring
FORWARD_TRANSPOSED_BELOW_BYTES = 1 << 22  # B*G*H*H*itemsize below which a batch's forward takes BLAS_T ...
FORWARD_TRANSPOSED_ROWS = 64  # ... when T*B*this >= G*H*H (the copy pays)
PLAIN_OUTPUTS_UP_TO = 1200  # ... or from 2 steps on when the step has more outputs (B*G*H) than this
GRAD_TRANSPOSED_MACS = 1 << 19  # weights (G*H*H) from which BLAS_T pays, with B == 1 ...
GRAD_TRANSPOSED_STEPS = 64  # ... and at least this many steps
BLAS_W = 4  # a batch's per-step product with the weights on the left, see the module docstring
HALVES = 5  # ... on a lane: two products over the halves of the batch, see the module docstring
PER_ROW = 6  # a batch of 2-3 rows with a large step: one matrix-vector product per row, see the module docstring
PER_ROW_UP_TO_ROWS = 3  # ... for batches of at most this many rows ...
PER_ROW_FROM_MACS = 460_800  # ... whose weights (G*H*H) are at least this many: where OpenBLAS threads a gemv
SMALL_PATH_MACS = 100**3  # the largest product OpenBLAS's SkylakeX kernels take unpacked
WEIGHTS_LEFT_UP_TO_ROWS = 32  # BLAS_W for float32 batches of 2 to this many rows whose step is not small
WEIGHTS_LEFT_STEPS = 16  # ... and, in the backward, at least this many steps (the copy pays)
ALIASED_STRIDE_BYTES = 4096  # rows this far apart (or a multiple) map to the same L1 sets ...
ALIASED_FROM_ROWS = 16  # ... and from this many such rows ``transpose_into`` writes whole lines
ZIGZAG_UP_TO_BYTES = 96 << 10  # DOTS over at most this many bytes alternates its row order step by step
LONG_DOTS = 7  # DOTS one row at a time, for matrices past L1 with long rows, see the module docstring
LONG_DOTS_FROM_BYTES = 1 << 17  # ... matrices of at least this many bytes ...
LONG_DOTS_ROW_BYTES = 1 << 10  # ... whose rows hold at least this many bytes and start on cache lines ...
LONG_DOTS_ROW_BYTES_BELOW = 1 << 11  # ... but fewer than this many
# Kernel-made copies start on a cache line, as the wrappers' arrays do (aligned_empty).  The value
# is fastrnn._memory.ALIGN_BYTES, repeated rather than imported because the kernels' cache stamp
# covers kernels/ and _jit.py only (_jit.KERNEL_SOURCES); a test keeps the two equal.
ALIGN_BYTES = 64


@jit
def halves(B, rows, inner, split):
    """Whether a batch's per-step (B x inner) @ (inner x rows) product runs as two halves of its
    rows (``HALVES``): ``split`` allows it (a lane, whose BLAS runs on one thread, of an OpenBLAS
    with the small path: ``lanes.run``), and the step is too large for that path whole but not
    halved (module docstring)."""
    return split and B * rows * inner > SMALL_PATH_MACS and (B + 1) // 2 * rows * inner <= SMALL_PATH_MACS


@jit
def per_row(B, rows, inner):
    """Whether a batch's per-step product over (rows x inner) weights runs as one matrix-vector
    product per row (``PER_ROW``, module docstring): 2 to ``PER_ROW_UP_TO_ROWS`` rows and weights
    of at least ``PER_ROW_FROM_MACS``."""
    return 2 <= B <= PER_ROW_UP_TO_ROWS and rows * inner >= PER_ROW_FROM_MACS


@jit
def long_rows(N, K, itemsize):
    """Whether DOTS over an (N, K) matrix goes one row at a time (``LONG_DOTS``, module
    docstring): at least ``LONG_DOTS_FROM_BYTES`` in all, rows of ``LONG_DOTS_ROW_BYTES`` up to
    ``LONG_DOTS_ROW_BYTES_BELOW`` that start on cache lines."""
    row_bytes = K * itemsize
    return (LONG_DOTS_ROW_BYTES <= row_bytes < LONG_DOTS_ROW_BYTES_BELOW and row_bytes % ALIGN_BYTES == 0
            and N * row_bytes >= LONG_DOTS_FROM_BYTES)


@jit
def product_form(B, rows, inner, T, itemsize, split):
    """How the forward computes its per-step (B x inner) @ (inner x rows) product over T steps;
    ``split`` as in ``halves`` (module docstring)."""
    if B != 1:
        if T >= 2 and halves(B, rows, inner, split):
            return HALVES
        if per_row(B, rows, inner):
            return PER_ROW
        if weights_left(B, rows, inner, itemsize):
            return BLAS_W
        small = B * rows * inner * itemsize < FORWARD_TRANSPOSED_BELOW_BYTES
        pays = T * B * FORWARD_TRANSPOSED_ROWS >= rows * inner or (T >= 2 and B * rows > PLAIN_OUTPUTS_UP_TO)
        return BLAS_T if small and pays else BLAS
    if rows * inner > SMALL_STEP_MACS:
        return BLAS
    if rows * inner < DOTS_FROM_MACS:
        return ROWS
    return LONG_DOTS if long_rows(rows, inner, itemsize) else DOTS


@jit
def weights_left(B, rows, inner, itemsize):
    """Whether a batch's per-step (B x inner) @ (inner x rows) product takes BLAS_W (module
    docstring): float32 only, from 2 to ``WEIGHTS_LEFT_UP_TO_ROWS`` rows, once the step is no
    longer small (``FORWARD_TRANSPOSED_BELOW_BYTES``, the limit of BLAS_T)."""
    return (itemsize == 4 and 2 <= B <= WEIGHTS_LEFT_UP_TO_ROWS
            and B * rows * inner * itemsize >= FORWARD_TRANSPOSED_BELOW_BYTES)


@jit
def step_operands(w_hh, form, B):
    """(w_hh_t, landing): what ``step_product`` reads and writes besides w_hh for ``form`` over B
    rows -- the (H, G*H) transposed copy for ROWS, BLAS_T and HALVES, the (G*H, B) array BLAS_W's
    product lands in before it is transposed into place; empty otherwise."""
    w_hh_t = transposed(w_hh) if form == ROWS or form == BLAS_T or form == HALVES else w_hh[:0]
    landing = aligned_empty(w_hh.shape[0] if form == BLAS_W else 0, B, w_hh)
    return w_hh_t, landing


@jit
def grad_form(B, rows, inner, T, itemsize, split):
    """How the backward computes its per-step (B x rows) @ (rows x inner) product; ``split`` as
    in ``halves`` (module docstring)."""
    if B == 1 and rows * inner <= GRAD_LOOP_MACS and T * 256 >= rows * inner:
        return LONG_DOTS if long_rows(inner, rows, itemsize) else DOTS  # on the (inner, rows) copy
    if halves(B, rows, inner, split):
        return HALVES
    if per_row(B, rows, inner) and (itemsize == 4 or B == 2) and T >= WEIGHTS_LEFT_STEPS:
        return PER_ROW
    if B == 1 and rows * inner >= GRAD_TRANSPOSED_MACS and T >= GRAD_TRANSPOSED_STEPS:
        return BLAS_T
    if weights_left(B, rows, inner, itemsize) and T >= WEIGHTS_LEFT_STEPS:
        return BLAS_W
    return BLAS


@jit
def grad_operands(w_hh, B, T, split):
    """(form, w_hh_t, landing) for ``recurrent_grad`` over T steps of B rows (``split`` as in
    ``halves``): the ``grad_form``,
    the (H, G*H) transposed copy it reads for DOTS, LONG_DOTS, BLAS_T, BLAS_W and PER_ROW (else nothing), and for
    BLAS_W the (H, B) array its product lands in before it is transposed into place."""
    form = grad_form(B, w_hh.shape[0], w_hh.shape[1], T, w_hh.itemsize, split)
    landing = aligned_empty(w_hh.shape[1] if form == BLAS_W else 0, B, w_hh)
    if form == BLAS or form == HALVES:
        return form, w_hh[:0], landing
    return form, transposed(w_hh), landing


@jit
def transposed(m):
    """The (K, N) C-contiguous transpose of m (N, K), by ``transpose_into``.  Its eight-column
    form took 0.39 ns per weight at 2048 x 512 float32 into an existing array (0.71 with the
    allocation), against 2.6 for ``np.ascontiguousarray(m.T)`` compiled by Numba and 0.65-1.2
    for square tiles (one process, medians of 15-31); at that shape the sixteen-column form
    now takes 0.24 ms with the allocation (0.23 ns per weight)."""
    N, K = m.shape
    out = aligned_empty(K, N, m)
    transpose_into(m, out)
    return out


@jit
def aligned_empty(rows, cols, like):
    """An uninitialized C-contiguous (rows, cols) array of ``like``'s dtype that starts on a
    64-byte boundary (``ALIGN_BYTES``), as the wrappers' pooled arrays do (``fastrnn._memory``).

    Why: Numba's ``np.empty`` does not promise that alignment -- the (128, 384) float32
    transposed copy of the GRU's H=128 weights started 32 bytes past a line in every call --
    and then each 64-byte vector load of a per-step product straddles two cache lines.  Per
    step of the backward's DOTS product, 256 steps, medians of 31, the copy as Numba placed
    it against aligned (float32, one process): H=128 G=1 402 -> 332 ns, G=3 1453 -> 1403 ns;
    G=3 H=256 5.9 -> 5.7 us.  Public backward, RNN T=256 B=1 H=128, alternating processes,
    medians of 300: 220-224 -> 200-201 us; the GRU and LSTM at H=128 moved within the noise
    (the LSTM's copy had happened to start on a line)."""
    per_line = ALIGN_BYTES // like.itemsize
    buffer = np.empty(rows * cols + per_line, like.dtype)
    skip = (ALIGN_BYTES - buffer.ctypes.data % ALIGN_BYTES) % ALIGN_BYTES // like.itemsize
    return buffer[skip:skip + rows * cols].reshape((rows, cols))


@jit
def transpose_into(m, out):
    """out (B, N) = m (N, B), both C-contiguous, into an existing array (``transposed`` makes one)."""
    N, B = m.shape
    if B >= ALIASED_FROM_ROWS and (N * m.itemsize) % ALIASED_STRIDE_BYTES == 0:
        _sixteen_columns_at_a_time(m, out)
    else:
        _eight_columns_at_a_time(m, out)


@jit
def _sixteen_columns_at_a_time(m, out):
    """``transpose_into`` where the rows of ``out`` are a multiple of 4 KiB apart, so that they
    share L1 sets, and there are many of them: written eight numbers at a time, a line was
    evicted before its second half came (2048 x 32 float32: 32 us against 14 us this way;
    ``transposed`` at 2048 x 512: 0.73 ms against 0.24).  N is a multiple of 16 here.
    A separate function: as a branch of one loop nest, the eight-column loop ran 1.3-2x slower."""
    N, B = m.shape
    for n in range(0, N, 16):
        rows = m[n:n + 16]
        for k in range(B):
            row = out[k]
            for i in range(16):
                row[n + i] = rows[i, k]


@jit
def _eight_columns_at_a_time(m, out):
    """``transpose_into``: eight rows of ``m`` are read side by side and each row of ``out`` gets
    eight neighbouring numbers at a time, then a tail of single columns."""
    N, B = m.shape
    n = 0
    while n + 8 <= N:
        r0, r1, r2, r3, r4, r5, r6, r7 = m[n], m[n + 1], m[n + 2], m[n + 3], m[n + 4], m[n + 5], m[n + 6], m[n + 7]
        for k in range(B):
            row = out[k]
            row[n], row[n + 1], row[n + 2], row[n + 3] = r0[k], r1[k], r2[k], r3[k]
            row[n + 4], row[n + 5], row[n + 6], row[n + 7] = r4[k], r5[k], r6[k], r7[k]
        n += 8
    while n < N:
        out[:, n] = m[n]
        n += 1


@jit_inline
def step_product(h_t, w_hh, w_hh_t, landing, form, out, flip):
    """out (b, G*H) = h_t (b, H) @ w_hh.T in the given form (b == 1 for the loop forms), with
    w_hh_t and landing from ``step_operands``; ``flip``: every other step, which a small DOTS
    product takes last row first (``zigzag``)."""
    if form == ROWS:
        row_times_matrix(h_t[0], w_hh_t, out[0])
    elif form == DOTS and flip and zigzag(w_hh):
        matrix_times_row_backwards(w_hh, h_t[0], out[0])
    elif form == DOTS:
        matrix_times_row(w_hh, h_t[0], out[0])
    elif form == LONG_DOTS:
        long_rows_times_row(w_hh, h_t[0], out[0])
    elif form == BLAS_T:
        np.dot(h_t, w_hh_t, out)
    elif form == BLAS_W:
        np.dot(w_hh, h_t.T, landing)  # (G*H, b), then into the (b, G*H) rows
        transpose_into(landing, out)
    elif form == HALVES:
        m = (h_t.shape[0] + 1) // 2
        np.dot(h_t[:m], w_hh_t, out[:m])
        np.dot(h_t[m:], w_hh_t, out[m:])
    elif form == PER_ROW:
        for bi in range(h_t.shape[0]):
            np.dot(w_hh, h_t[bi], out[bi])  # (G*H, H) @ (H,): a gemv along w_hh's rows
    else:
        np.dot(h_t, w_hh.T, out)


@jit_sum
def matrix_times_row(m, v, out):
    """out (N,) = m (N, K) @ v (K,), m C-contiguous; vectorized along K, four rows per pass
    (each load of ``v`` serves four; ``long_rows_times_row`` takes one at a time)."""
    N = m.shape[0]
    n = 0
    while n + 4 <= N:
        _four_rows(m, v, out, n)
        n += 4
    while n < N:
        _one_row(m, v, out, n)
        n += 1


@jit_sum
def matrix_times_row_backwards(m, v, out):
    """``matrix_times_row`` with the rows taken last to first: its single tail rows, then its
    groups of four from the last, each summed by the same code, so the result is the same
    number for number (tests/test_parity.py)."""
    N = m.shape[0]
    n = N - 1
    while n >= N - N % 4:
        _one_row(m, v, out, n)
        n -= 1
    n = N - N % 4 - 4
    while n >= 0:
        _four_rows(m, v, out, n)
        n -= 4


@jit_inline
def _four_rows(m, v, out, n):
    """out[n:n+4] for ``matrix_times_row`` (inlined, so it is compiled with the caller's
    reassociation)."""
    zero = out.dtype.type(0.0)
    s0 = s1 = s2 = s3 = zero
    r0, r1, r2, r3 = m[n], m[n + 1], m[n + 2], m[n + 3]
    for k in range(m.shape[1]):
        s0 += r0[k] * v[k]
        s1 += r1[k] * v[k]
        s2 += r2[k] * v[k]
        s3 += r3[k] * v[k]
    out[n], out[n + 1], out[n + 2], out[n + 3] = s0, s1, s2, s3


@jit_inline
def _one_row(m, v, out, n):
    """out[n] for ``matrix_times_row``'s tail rows and ``long_rows_times_row`` (inlined, as
    ``_four_rows``)."""
    total = out.dtype.type(0.0)
    row = m[n]
    for k in range(m.shape[1]):
        total += row[k] * v[k]
    out[n] = total


@jit
def zigzag(m):
    """Whether DOTS over ``m`` takes every other step last row first (``ZIGZAG_UP_TO_BYTES``,
    module docstring)."""
    return m.shape[0] * m.shape[1] * m.itemsize <= ZIGZAG_UP_TO_BYTES


@jit_sum
def long_rows_times_row(m, v, out):
    """out (N,) = m (N, K) @ v (K,) as ``matrix_times_row``, one row per pass: the ``LONG_DOTS``
    form (module docstring), whose sum LLVM splits over four vector accumulators."""
    for n in range(m.shape[0]):
        _one_row(m, v, out, n)


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


row_times_matrix_inline = jit_inline(row_times_matrix.py_func)  # for a caller's innermost loop


@jit
def project(x, w_ih, out):
    """out (T,B,G*H) = x (T,B,D) @ w_ih.T: the input projection of all steps in one GEMM,
    since it does not depend on the recurrence."""
    T, B, D = x.shape
    np.dot(x.reshape(T * B, D), w_ih.T, out.reshape(T * B, out.shape[2]))


@jit
def backward_products(x, w_ih, h, dpre_ih, dpre_hh, dx, dw_ih, dw_hh, db):
    """Everything in backward that is not sequential, as GEMMs over all T*B rows.

    dpre_ih, dpre_hh (T,B,G*H): pre-activation gradients on the input and the
    recurrent side (the same array for the LSTM and RNN; the GRU's differ);
    x (T,B,D); h (T+1,B,H) -> dx (T,B,D), dw_ih (G*H,D), dw_hh (G*H,H) (from
    h[:T], the state each step read), db (G*H,) from the input side."""
    T, B, D = x.shape
    H = h.shape[2]
    rows_ih = dpre_ih.reshape(T * B, dpre_ih.shape[2])
    rows_hh = dpre_hh.reshape(T * B, dpre_hh.shape[2])
    np.dot(rows_ih, w_ih, dx.reshape(T * B, D))
    np.dot(rows_ih.T, x.reshape(T * B, D), dw_ih)
    np.dot(rows_hh.T, h[:T].reshape(T * B, H), dw_hh)
    column_sums(rows_ih, db)


@jit
def column_sums(rows, out):
    """rows (N,K) -> out (K,); vectorized across K, so no reassociation is needed."""
    out[:] = 0
    for r in range(rows.shape[0]):
        row = rows[r]
        for k in range(out.shape[0]):
            out[k] += row[k]


@jit_inline
def recurrent_grad(dpre_t, w_hh, w_hh_t, landing, form, lengths, t, all_active, dh, work, b0, b1):
    """dh[b0:b1] (b,H) <- dpre_t[b0:b1] (b,G*H) @ w_hh (G*H,H): the gradient reaching step t's
    input state, in ``form`` with w_hh_t and landing (all from ``grad_operands``); rows padded at
    step t keep their dh (work (B,H) is scratch for them)."""
    out = dh if all_active else work  # when all rows are active the product is the new dh
    if form == DOTS and t % 2 == 1 and zigzag(w_hh_t):
        matrix_times_row_backwards(w_hh_t, dpre_t[b0], out[b0])
    elif form == DOTS:
        matrix_times_row(w_hh_t, dpre_t[b0], out[b0])
    elif form == LONG_DOTS:
        long_rows_times_row(w_hh_t, dpre_t[b0], out[b0])
    elif form == BLAS_T:
        np.dot(dpre_t[b0:b1], w_hh_t.T, out[b0:b1])
    elif form == BLAS_W:
        np.dot(w_hh_t, dpre_t[b0:b1].T, landing)  # (H, b), then into the (b, H) rows
        transpose_into(landing, out[b0:b1])
    elif form == HALVES:
        m = b0 + (b1 - b0 + 1) // 2
        np.dot(dpre_t[b0:m], w_hh, out[b0:m])
        np.dot(dpre_t[m:b1], w_hh, out[m:b1])
    elif form == PER_ROW:
        for bi in range(b0, b1):
            np.dot(w_hh_t, dpre_t[bi], out[bi])  # (H, G*H) @ (G*H,) on the transposed copy
    else:
        np.dot(dpre_t[b0:b1], w_hh, out[b0:b1])
    if all_active:
        return
    for bi in range(b0, b1):
        if t < lengths[bi]:
            dh[bi, :] = work[bi]

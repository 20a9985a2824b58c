"""The Numba kernels agree with the NumPy reference: outputs, final states, every gradient."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest

from fastrnn._jit import JIT_OPTIONS

from conftest import DTYPES, assert_close, forward_args, make_problem, run_cell

SHAPES = list(itertools.product([1, 2, 17], [1, 3]))  # (T, B), with D=5 != H=7


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("T,B", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("with_dstate", [False, True], ids=["no_dh_n", "dh_n"])
def test_fast_matches_reference(cell, dtype, T, B, with_state, with_dstate):
    problem = make_problem(cell, T, B, 5, 7, dtype, with_state=with_state, with_dstate=with_dstate, seed=T * 10 + B)
    y, states, grads = run_cell(cell, "fast", problem)
    y_ref, states_ref, grads_ref = run_cell(cell, "reference", problem)
    assert_close(y, y_ref, name="y")
    for name, a, e in zip(("h_n", "c_n"), states, states_ref):
        assert_close(a, e, name=name)
    for name, a, e in zip(cell.grad_names, grads, grads_ref):
        assert_close(a, e, name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_caches_are_interchangeable(cell, dtype):
    """A cache from one implementation gives the same gradients in the other's backward."""
    p = make_problem(cell, 6, 2, 3, 4, dtype)
    fast = cell.forward(*forward_args(cell, p))
    ref = cell.ref_forward(*forward_args(cell, p))
    assert type(fast.cache) is type(ref.cache)
    for name, a, e in zip(fast.cache._fields, fast.cache, ref.cache):
        if name == "lengths":
            np.testing.assert_array_equal(a, e)
        else:
            assert_close(a, e, name=f"cache.{name}")
    cross = cell.backward(p["dy"], ref.cache, *p["dstates_n"])
    expected = cell.ref_backward(p["dy"], ref.cache, *p["dstates_n"])
    for name, a, e in zip(cell.grad_names, cross, expected):
        assert_close(a, e, name=name)


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_matches_textbook_equations(cell, impl, dtype):
    """One step, written out from the documented equations, guards both twins at once."""
    p = make_problem(cell, 1, 2, 3, 4, dtype)
    forward, _ = cell.impl(impl)
    out = forward(*forward_args(cell, p))
    x = p["x"][0].astype(np.float64)
    h0 = p["states0"][0].astype(np.float64)
    H = 4
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731 - small, moderate inputs only
    if cell.name == "gru":
        a_i = x @ p["w_ih"].T.astype(np.float64) + p["b_ih"]
        a_h = h0 @ p["w_hh"].T.astype(np.float64) + p["b_hh"]
        r = sig(a_i[:, :H] + a_h[:, :H])
        z = sig(a_i[:, H:2 * H] + a_h[:, H:2 * H])
        n = np.tanh(a_i[:, 2 * H:] + r * a_h[:, 2 * H:])
        h = (1 - z) * n + z * h0
    elif cell.name == "lstm":
        a = x @ p["w_ih"].T.astype(np.float64) + h0 @ p["w_hh"].T.astype(np.float64) + p["b"]
        i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
        c = f * p["states0"][1] + i * g
        h = o * np.tanh(c)
        assert_close(cell.final_state(out)[1], c.astype(dtype), name="c_n")
    else:
        h = np.tanh(x @ p["w_ih"].T.astype(np.float64) + h0 @ p["w_hh"].T.astype(np.float64) + p["b"])
    assert_close(out.y[0], h.astype(dtype), rtol=1e-5 if dtype == np.float32 else 1e-12, name="y")


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_output_dtype_follows_input(cell, impl, dtype):
    p = make_problem(cell, 3, 2, 3, 4, dtype)
    y, states, grads = run_cell(cell, impl, p)
    for array in (y, *states, *grads):
        assert array.dtype == np.dtype(dtype)


def test_float32_kernels_do_no_float64_work(cell):
    """No float64 arithmetic hides in a float32 call (a bare 1.0 literal would promote)."""
    p = make_problem(cell, 2, 2, 3, 4, np.float32)
    run_cell(cell, "fast", p)
    from fastrnn.kernels import gru, lstm, rnn

    kernels = {"lstm": (lstm.lstm_forward_kernel, lstm.lstm_backward_kernel),
               "rnn": (rnn.rnn_forward_kernel, rnn.rnn_backward_kernel),
               "gru": (gru.gru_forward_kernel, gru.gru_backward_kernel)}[cell.name]
    for kernel in kernels:
        for signature in kernel.signatures:
            if "float32" not in str(signature[0]):
                continue
            # Inspection of code loaded from the on-disk cache is disabled, so
            # compile an uncached twin of the kernel for this signature.
            fresh = numba.njit(**{**JIT_OPTIONS, "cache": False})(kernel.py_func)
            fresh.compile(signature)
            ir = fresh.inspect_llvm(signature)
            # Any float32 value that meets a float64 must be widened by fpext.
            assert "fpext" not in ir and "fptrunc" not in ir, f"{kernel.__name__} {signature} widens float32 to float64"


@pytest.mark.parametrize("T,B", [(0, 3), (4, 0), (0, 0)])
@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_empty_sequences_and_batches(cell, impl, T, B):
    """T == 0: the final state is the initial state; B == 0: empty outputs.  Weight grads are zeros."""
    p = make_problem(cell, T, B, 3, 4, np.float64)
    y, states, grads = run_cell(cell, impl, p)
    assert y.shape == (T, B, 4)
    for final, initial in zip(states, p["states0"]):
        np.testing.assert_array_equal(final, initial if T == 0 else final)
    n_params = 2 + len(cell.bias_names)
    dx, params, dstates0 = grads[0], grads[1:1 + n_params], grads[1 + n_params:]
    assert dx.shape == (T, B, 3)
    assert not any(grad.any() for grad in params)
    if T == 0:
        for d0, dn in zip(dstates0, p["dstates_n"]):
            np.testing.assert_array_equal(d0, dn)


def weights_left_sizes(G, itemsize):
    """For B in 2, 32 and 33: the smallest H whose per-step product is no longer small (the size
    from which a float32 batch of up to 32 rows takes BLAS_W)."""
    from fastrnn.kernels.matmul import FORWARD_TRANSPOSED_BELOW_BYTES

    return {B: next(H for H in range(1, 2000) if B * G * H * H * itemsize >= FORWARD_TRANSPOSED_BELOW_BYTES)
            for B in (2, 32, 33)}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_backward_product_form_matches_reference(cell, dtype):
    """The backward's per-step product: a loop form (DOTS, or LONG_DOTS one row at a time past
    L1) for B == 1 at small sizes once T pays for the transposed copy, BLAS on a transposed copy (BLAS_T) for B == 1 at large sizes once T
    pays for it, the weights on the left (BLAS_W) for float32 batches of up to 32 rows with a
    large step, one product per row (PER_ROW) for 2-3 rows with large weights, BLAS otherwise --
    all must match the reference, also with a padded tail (where the loop form's product must
    not reach dh)."""
    from fastrnn.kernels.matmul import (BLAS, BLAS_T, BLAS_W, DOTS, GRAD_LOOP_MACS, GRAD_TRANSPOSED_MACS,
                                        GRAD_TRANSPOSED_STEPS, LONG_DOTS, PER_ROW, PER_ROW_FROM_MACS,
                                        WEIGHTS_LEFT_STEPS, grad_form, long_rows)

    G = cell.gates
    itemsize = np.dtype(dtype).itemsize

    def form(B, rows, inner, T):
        return grad_form.py_func(B, rows, inner, T, itemsize, False)

    left = weights_left_sizes(G, itemsize)
    by_weights_left = BLAS_W if itemsize == 4 else BLAS  # float64 keeps BLAS
    largest = max(H for H in range(2, 400) if G * H * H <= GRAD_LOOP_MACS)
    short = next(T for T in range(1, 1000) if form(1, G * largest, largest, T) in (DOTS, LONG_DOTS)) - 1
    # DOTS one row at a time once the (H, G*H) copy is past L1 with rows of 1-2 KB on cache lines
    # (none at the LSTM's float64 sizes: its rows reach 1 KB at H=32, its copy 128 KB at H=64)
    long_from = next((H for H in range(2, largest + 1) if form(1, G * H, H, 10**6) == LONG_DOTS), None)
    assert long_from is not None or (G, itemsize) == (4, 8)
    wide = next(H for H in range(2, 1000) if G * H * H >= GRAD_TRANSPOSED_MACS)
    # Two or three rows with weights of at least PER_ROW_FROM_MACS: a product per row (float64:
    # two rows only), on the transposed copy, so from WEIGHTS_LEFT_STEPS on.
    rows_from = next(H for H in range(1, 2000) if G * H * H >= PER_ROW_FROM_MACS)
    assert G * left[2] ** 2 >= PER_ROW_FROM_MACS or itemsize == 8  # float32's BLAS_W starts above it at B=2
    cases = [(1, 3, 4, DOTS),
             (1, largest, short + 1, LONG_DOTS if long_rows.py_func(largest, G * largest, itemsize) else DOTS),
             (1, largest, short, BLAS),
             (1, largest + 1, 400, BLAS), (2, 3, 4, BLAS), (1, wide, GRAD_TRANSPOSED_STEPS, BLAS_T),
             (1, wide, GRAD_TRANSPOSED_STEPS - 1, BLAS), (2, wide, GRAD_TRANSPOSED_STEPS, PER_ROW),
             (2, left[2], WEIGHTS_LEFT_STEPS, PER_ROW if itemsize == 4 else BLAS),
             (2, left[2], WEIGHTS_LEFT_STEPS - 1, BLAS),
             (2, rows_from, WEIGHTS_LEFT_STEPS, PER_ROW), (2, rows_from, WEIGHTS_LEFT_STEPS - 1, BLAS),
             (3, rows_from, WEIGHTS_LEFT_STEPS, PER_ROW if itemsize == 4 else BLAS),
             (32, left[32], WEIGHTS_LEFT_STEPS, by_weights_left), (32, left[32] - 1, 8, BLAS), (33, left[33], 8, BLAS)]
    if long_from is not None:
        long_steps = -(-G * long_from * long_from // 256)  # the fewest steps that pay for the copy
        cases += [(1, long_from - 1, long_steps, DOTS), (1, long_from, long_steps, LONG_DOTS)]
    if itemsize == 4:
        cases += [(2, rows_from - 1, WEIGHTS_LEFT_STEPS, BLAS_W if rows_from - 1 >= left[2] else BLAS),
                  (4, rows_from, WEIGHTS_LEFT_STEPS, BLAS_W)]
    for B, H, T, expected in cases:
        assert form(B, G * H, H, T) == expected
        p = make_problem(cell, T, B, 3, H, dtype, seed=H, scale=1 / np.sqrt(H))
        for lengths in (None, np.full(B, T - 2)):
            forward, backward = cell.impl("fast")
            ref_forward, ref_backward = cell.impl("reference")
            grads = backward(p["dy"], forward(*forward_args(cell, p), lengths=lengths).cache, *p["dstates_n"])
            grads_ref = ref_backward(p["dy"], ref_forward(*forward_args(cell, p), lengths=lengths).cache,
                                     *p["dstates_n"])
            for name, a, e in zip(cell.grad_names, grads, grads_ref):
                assert_close(a, e, name=f"{name} (B={B}, H={H}, T={T}, lengths={lengths})")


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0), (1, 1), (7, 3), (8, 5), (17, 9), (1024, 256)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_transposed_copy(shape, dtype):
    """The kernels' transposed weight copy: eight rows at a time plus a tail of fewer."""
    from fastrnn.kernels.matmul import transposed

    m = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    t = transposed(m)
    assert t.flags.c_contiguous and t.dtype == m.dtype
    np.testing.assert_array_equal(t, m.T)


@pytest.mark.parametrize("shape", [(128, 128), (9, 33), (7, 5), (4, 8), (3, 1), (1, 3), (0, 4), (4, 0)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dots_in_either_row_order_agree_exactly(shape, dtype):
    """DOTS takes every other step last row first (matmul.zigzag); each row must come out the
    same number either way, so that a result never depends on a step's parity, and be the
    product."""
    from fastrnn.kernels.matmul import matrix_times_row, matrix_times_row_backwards

    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    m = rng.standard_normal(shape).astype(dtype)
    v = rng.standard_normal(shape[1]).astype(dtype)
    forwards, backwards = np.full(shape[0], 7.0, dtype), np.full(shape[0], 9.0, dtype)
    matrix_times_row(m, v, forwards)
    matrix_times_row_backwards(m, v, backwards)
    np.testing.assert_array_equal(backwards, forwards)
    assert_close(forwards, (m.astype(np.float64) @ v.astype(np.float64)).astype(dtype), name="m @ v")


@pytest.mark.parametrize("shape", [(384, 128), (128, 384), (512, 128), (3, 5), (0, 4), (1, 1)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_kernel_made_copies_start_on_a_line(shape, dtype):
    """The transposed copy and BLAS_W's landing array start on a 64-byte line (matmul.aligned_empty):
    Numba's own np.empty put the (128, 384) float32 copy 32 bytes past one, so that every vector
    load of the per-step product straddled two lines."""
    from fastrnn import _memory
    from fastrnn.kernels.matmul import ALIGN_BYTES, aligned_empty, transposed

    assert ALIGN_BYTES == _memory.ALIGN_BYTES  # the same alignment as the wrappers' pooled arrays
    m = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    for _ in range(5):  # where Numba's allocator places a block varies from call to call
        assert transposed(m).ctypes.data % ALIGN_BYTES == 0
        landing = aligned_empty(shape[0], 3, m)
        assert landing.shape == (shape[0], 3) and landing.dtype == m.dtype and landing.flags.c_contiguous
        assert landing.ctypes.data % ALIGN_BYTES == 0


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (1, 1), (7, 3), (8, 32), (17, 9), (2048, 32), (2048, 15),
                                   (1024, 16), (1536, 16)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_transpose_into(shape, dtype):
    """BLAS_W's move of its (N, B) product into the (B, N) rows: eight rows at a time plus a
    tail, or sixteen at a time for 16 or more rows a multiple of 4 KiB apart (N=1024 and 2048
    with B >= 16; in float64 N=1536 too), into an existing array (here a row slice, as the
    kernels pass it) without touching anything else."""
    from fastrnn.kernels.matmul import transpose_into

    m = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = np.full((shape[1] + 2, shape[0]), 7.0, dtype)
    transpose_into(m, out[1:-1])
    np.testing.assert_array_equal(out[1:-1], m.T)
    assert (out[0] == 7).all() and (out[-1] == 7).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_forward_product_form_matches_reference(cell, dtype):
    """B == 1 with a small step uses a loop form (ROWS, then DOTS as it grows, LONG_DOTS one row
    at a time once w_hh is past L1 with long rows on cache lines), anything larger
    BLAS; a batch uses BLAS on a transposed copy (BLAS_T) while its step is small and T pays for
    the copy (or the step has more outputs than OpenBLAS's small path takes), the weights on the left (BLAS_W) past that size for float32 batches of up to 32
    rows, one product per row (PER_ROW) for 2-3 rows with large weights, plain BLAS otherwise:
    every form must match the reference, also with a padded tail."""
    from fastrnn.kernels.matmul import (BLAS, BLAS_T, BLAS_W, DOTS, LONG_DOTS, PER_ROW, PER_ROW_FROM_MACS,
                                        PLAIN_OUTPUTS_UP_TO, ROWS, product_form)

    G = cell.gates
    itemsize = np.dtype(dtype).itemsize
    T = 5

    def form(B, H):
        return product_form.py_func(B, G * H, H, T, itemsize, False)

    sizes = {f: next(H for H in range(2, 2000) if form(1, H) == f) for f in (ROWS, DOTS, LONG_DOTS, BLAS)}
    short = next(H for H in range(1, 2000) if form(2, H) == BLAS)  # T no longer pays for the copy
    wide = next(H for H in range(1, 2000) if form(64, H) == BLAS)  # the step is too large
    # A step with more outputs than OpenBLAS's small path takes in the plain form: the copy pays
    # over any two steps, although T*B*64 < G*H*H here.
    crowded = next(H for H in range(1, 2000) if 4 * G * H > PLAIN_OUTPUTS_UP_TO)
    assert T * 4 * 64 < G * crowded * crowded
    assert product_form.py_func(4, G * crowded, crowded, 1, itemsize, False) == BLAS  # one step: no copy
    cases = [(1, sizes[ROWS], ROWS), (1, sizes[DOTS], DOTS), (1, sizes[DOTS] + 3, DOTS),
             (1, sizes[LONG_DOTS] - 1, DOTS), (1, sizes[LONG_DOTS], LONG_DOTS), (1, sizes[BLAS], BLAS),
             (2, 1, BLAS_T), (2, short - 1, BLAS_T), (2, short, BLAS), (64, wide - 1, BLAS_T), (64, wide, BLAS),
             (4, crowded, BLAS_T)]
    left = weights_left_sizes(G, itemsize)
    by_weights_left = BLAS_W if itemsize == 4 else BLAS  # float64 keeps BLAS
    cases += [(2, left[2], PER_ROW if G * left[2] ** 2 >= PER_ROW_FROM_MACS else by_weights_left),
              (32, left[32], by_weights_left), (33, left[33], BLAS)]
    # Two or three rows with weights of at least PER_ROW_FROM_MACS: a product per row.
    rows_from = next(H for H in range(1, 2000) if G * H * H >= PER_ROW_FROM_MACS)
    cases += [(2, rows_from, PER_ROW), (3, rows_from, PER_ROW), (4, rows_from, by_weights_left)]
    assert form(3, rows_from - 1) != PER_ROW
    for B, H, expected in cases:
        assert form(B, H) == expected, (B, H)
        p = make_problem(cell, T, B, 3, H, dtype, seed=H, scale=1 / np.sqrt(H))
        for lengths in (None, np.arange(B) % T + 1):
            forward, backward = cell.impl("fast")
            ref_forward, ref_backward = cell.impl("reference")
            out = forward(*forward_args(cell, p), lengths=lengths)
            ref = ref_forward(*forward_args(cell, p), lengths=lengths)
            assert_close(out[0], ref[0], name=f"y (B={B}, H={H}, lengths={lengths})")
            grads = backward(p["dy"], out.cache, *p["dstates_n"])
            grads_ref = ref_backward(p["dy"], ref.cache, *p["dstates_n"])
            for name, a, e in zip(cell.grad_names, grads, grads_ref):
                assert_close(a, e, name=f"{name} (B={B}, H={H}, lengths={lengths})")

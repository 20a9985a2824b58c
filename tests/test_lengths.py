"""Variable-length batches: each sequence behaves exactly as if it were run alone."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn as fr
from conftest import DTYPES, GRADCHECK_RTOL, assert_close, forward_args, make_problem

LENGTHS = np.array([6, 0, 3, 1, 6])  # includes an empty sequence and full-length ones


def run(cell, impl, p, lengths):
    forward, backward = cell.impl(impl)
    out = forward(*forward_args(cell, p), lengths=lengths)
    return out, backward(p["dy"], out.cache, *p["dstates_n"])


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_each_sequence_equals_running_it_alone(cell, impl, dtype):
    p = make_problem(cell, 6, len(LENGTHS), 3, 5, dtype, seed=3)
    out, grads = run(cell, impl, p, LENGTHS)
    names = cell.grad_names
    n_params = 2 + len(cell.bias_names)  # w_ih, w_hh, biases: their gradients sum over sequences
    params = slice(1, 1 + n_params)
    weight_sums = [np.zeros_like(g) for g in grads[params]]
    for bi, n in enumerate(LENGTHS):
        alone = {k: p[k] for k in ("w_ih", "w_hh", *cell.bias_names)}
        alone["x"] = p["x"][:n, bi:bi + 1]
        alone["dy"] = p["dy"][:n, bi:bi + 1]
        alone["states0"] = tuple(s[bi:bi + 1] for s in p["states0"])
        alone["dstates_n"] = tuple(s[bi:bi + 1] for s in p["dstates_n"])
        single, single_grads = run(cell, impl, alone, None)
        assert_close(out.y[:n, bi:bi + 1], single.y, name=f"y of sequence {bi}")
        assert not out.y[n:, bi].any(), "outputs past a sequence's length must be zero"
        for a, e in zip(cell.final_state(out), cell.final_state(single)):
            assert_close(a[bi:bi + 1], e, name=f"final state of sequence {bi}")
        assert_close(grads[0][:n, bi:bi + 1], single_grads[0], name=f"dx of sequence {bi}")
        assert not grads[0][n:, bi].any(), "dx past a sequence's length must be zero"
        for k in range(1 + n_params, len(grads)):
            assert_close(grads[k][bi:bi + 1], single_grads[k], name=f"{names[k]} of sequence {bi}")
        for total, g in zip(weight_sums, single_grads[params]):
            total += g
    for name, a, e in zip(names[params], grads[params], weight_sums):
        assert_close(a, e, name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_fast_matches_reference_with_lengths(cell, dtype):
    p = make_problem(cell, 6, len(LENGTHS), 4, 7, dtype, seed=4)
    fast, fast_grads = run(cell, "fast", p, LENGTHS)
    ref, ref_grads = run(cell, "reference", p, LENGTHS)
    assert_close(fast.y, ref.y, name="y")
    for a, e in zip(cell.final_state(fast), cell.final_state(ref)):
        assert_close(a, e, name="final state")
    for name, a, e in zip(cell.grad_names, fast_grads, ref_grads):
        assert_close(a, e, name=name)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_full_lengths_equal_no_lengths_and_padding_content_is_ignored(cell, impl):
    p = make_problem(cell, 5, 3, 4, 6, np.float64, seed=5)
    full, full_grads = run(cell, impl, p, np.full(3, 5))
    plain, plain_grads = run(cell, impl, p, None)
    np.testing.assert_array_equal(full.y, plain.y)
    for a, e in zip(full_grads, plain_grads):
        np.testing.assert_array_equal(a, e)
    lengths = np.array([2, 5, 4])
    clean, clean_grads = run(cell, impl, p, lengths)
    dirty = dict(p, x=p["x"].copy())
    dirty["x"][2:, 0] = np.nan  # padding of sequence 0
    dirty["x"][4:, 2] = 1e30
    noisy, noisy_grads = run(cell, impl, dirty, lengths)
    np.testing.assert_array_equal(noisy.y, clean.y)
    for a, e in zip(noisy_grads, clean_grads):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_gradcheck_with_lengths(cell, impl):
    p = make_problem(cell, 5, 3, 3, 4, np.float64, seed=6)
    lengths = np.array([5, 2, 3])
    forward, backward = cell.impl(impl)
    args = dict(zip(cell.arg_names, forward_args(cell, p)))

    def loss(**kw):
        out = forward(*(kw[n] for n in cell.arg_names), lengths=lengths)
        total = np.sum(p["dy"] * out.y)
        for d, s in zip(p["dstates_n"], cell.final_state(out)):
            total += np.sum(d * s)
        return total

    out = forward(*forward_args(cell, p), lengths=lengths)
    grads = backward(p["dy"], out.cache, *p["dstates_n"])
    analytic = dict(zip(cell.arg_names, grads))
    report = fr.gradcheck(loss, args, analytic)
    assert report.worst <= GRADCHECK_RTOL, str(report)


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize(
    "lengths, error, message",
    [
        (np.array([1.0, 2.0, 3.0]), TypeError, r"lengths must hold integers.*float64"),
        (np.array([1, 2]), ValueError, r"lengths has shape \(2,\); expected \(B,\) = \(3,\)"),
        (np.array([[1, 2, 3]]), ValueError, r"lengths has shape \(1, 3\)"),
        (np.array([1, -1, 3]), ValueError, r"lengths must lie in \[0, T\] = \[0, 4\]; got values from -1"),
        (np.array([1, 5, 3]), ValueError, r"lengths must lie in \[0, T\] = \[0, 4\]; got values from 1 to 5"),
        (np.array([True, False, True]), TypeError, r"lengths must hold integers.*bool"),
    ],
)
def test_bad_lengths_are_rejected(cell, impl, lengths, error, message):
    p = make_problem(cell, 4, 3, 2, 3, np.float32)
    forward, _ = cell.impl(impl)
    with pytest.raises(error, match=message):
        forward(*forward_args(cell, p), lengths=lengths)


def test_lengths_are_not_modified_and_not_aliased(cell):
    p = make_problem(cell, 4, 3, 2, 3, np.float32)
    lengths = np.array([4, 1, 2], dtype=np.int32)
    out = cell.forward(*forward_args(cell, p), lengths=lengths)
    np.testing.assert_array_equal(lengths, [4, 1, 2])
    assert out.cache.lengths.dtype == np.int64 and not np.shares_memory(out.cache.lengths, lengths)

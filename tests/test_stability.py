"""Huge pre-activations saturate the gates: finite results, no floating-point warnings, in both twins.

Both implementations run with every warning turned into an error and NumPy's
overflow, invalid and divide-by-zero flags set to raise.  Underflow is left
alone on purpose: ``exp(-|a|)`` for ``|a|`` beyond ~88 (float32) or ~745
(float64) underflows to 0, and the products of the resulting tiny gate values
underflow in the reference's matmuls; rounding to 0 there *is* the saturated
answer.  (Observed: with ``np.errstate(all="raise")`` the reference stops in
``np.exp`` in its sigmoid and, with that silenced, in ``matmul``.)
"""

from __future__ import annotations

import contextlib
import itertools
import warnings

import numpy as np
import pytest

from conftest import (DTYPES, assert_close, biases, flat_outputs, forward_args, make_problem, run_cell,
                      saturated_gradient_floor)

IMPLS = ["fast", "reference"]
SCALES = [1e1, 1e2, 1e3, 1e4]


@contextlib.contextmanager
def strict_numerics():
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        warnings.simplefilter("error")
        yield


def large_problem(cell, dtype, scale: float, seed: int = 0) -> dict:
    """Weights scaled so that the pre-activations' typical size is ``scale`` (the largest is a few times it)."""
    T, B, D, H = 6, 3, 5, 4
    p = make_problem(cell, T, B, D, H, np.float64, seed=seed)
    rng = np.random.default_rng(seed + 1)
    p["w_ih"] = p["w_ih"] * scale / np.sqrt(D)
    p["w_hh"] = p["w_hh"] * scale / np.sqrt(H)
    for name in cell.bias_names:
        p[name] = scale * rng.uniform(-1, 1, p[name].shape)
    return {k: tuple(a.astype(dtype) for a in v) if isinstance(v, tuple) else v.astype(dtype) for k, v in p.items()}


def largest_preactivation(cell, problem) -> float:
    out = cell.ref_forward(*forward_args(cell, problem))
    x, w_ih, w_hh, h = (np.asarray(a, np.float64) for a in (out.cache.x, out.cache.w_ih, out.cache.w_hh, out.cache.h))
    a = x @ w_ih.T + h[:-1] @ w_hh.T + sum(b.astype(np.float64) for b in biases(cell, problem))
    if cell.name == "gru":  # r scales n's recurrent term, so only r's and z's are plain sums
        a = a[..., :2 * h.shape[-1]]
    return float(np.abs(a).max())


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"{s:.0e}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_large_preactivations_stay_finite_without_warnings(cell, dtype, scale):
    problem = large_problem(cell, dtype, scale)
    assert largest_preactivation(cell, problem) >= scale, "the test must reach the scale it claims"
    results = {}
    for impl in IMPLS:
        with strict_numerics():
            results[impl] = flat_outputs(run_cell(cell, impl, problem))
        for array in results[impl]:
            assert np.isfinite(array).all(), f"{impl}: non-finite output"
    n_forward = 1 + len(cell.state_names)
    for got, want in zip(results["fast"][:n_forward], results["reference"][:n_forward]):
        assert_close(got, want)
    # Gradients of saturated gates carry an absolute error (see saturated_gradient_floor);
    # observed 2e-10 relative in float64 at scale 1e3 (RNN) without the floor.
    floor = saturated_gradient_floor(problem)
    for got, want in zip(results["fast"][n_forward:], results["reference"][n_forward:]):
        assert_close(got, want, floor=floor)


def weightless_problem(cell, T, B, D, H, dtype) -> dict:
    """A problem with zero weights: every pre-activation is its bias alone (set by the caller)."""
    p = make_problem(cell, T, B, D, H, dtype)
    p["w_ih"] = np.zeros_like(p["w_ih"])
    p["w_hh"] = np.zeros_like(p["w_hh"])
    return p


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("signs", list(itertools.product([-1, 1], repeat=4)), ids=lambda s: "".join("+-"[v < 0] for v in s))
def test_fully_saturated_lstm_is_exact(impl, dtype, signs):
    """Gate pre-activations of exactly +-1e4 give gates of exactly 0/1 (g: -1/1) and no gradient through them.

    ``signs`` picks the sign of the i, f, g, o pre-activations; the weights are
    zero, so the pre-activation is the bias alone.
    """
    from fastrnn.registry import CELLS

    cell = CELLS["lstm"]
    T, B, D, H = 5, 2, 3, 4
    p = weightless_problem(cell, T, B, D, H, dtype)
    p["b"] = np.repeat(np.array(signs, dtype) * dtype(1e4), H)
    with strict_numerics():
        y, (h_n, c_n), (dx, dw_ih, dw_hh, db, dh0, dc0) = run_cell(cell, impl, p)
    i, f, o = ((s + 1) // 2 for s in (signs[0], signs[1], signs[3]))  # sigmoid(+-1e4) is exactly 1 or 0
    g = signs[2]  # tanh(+-1e4) is exactly +-1
    c = [p["states0"][1].astype(np.float64)]  # c[t], t = 0..T
    for t in range(T):
        c.append(f * c[t] + i * g)
        assert_close(y[t], (o * np.tanh(c[t + 1])).astype(dtype), name=f"y[{t}]")
    assert_close(c_n, c[T].astype(dtype), name="c_n")
    # Every gate's local derivative is exactly 0, so nothing reaches the weights, x or h0 ...
    for name, grad in (("dx", dx), ("dw_ih", dw_ih), ("dw_hh", dw_hh), ("db", db), ("dh0", dh0)):
        assert not grad.any(), f"{name} should be exactly zero"
    # ... and the cell-state gradient is the BPTT recurrence with constant gates: dh_t is just dy[t]
    # (plus dh_n at the end) because nothing flows back through w_hh.
    dc = p["dstates_n"][1].astype(np.float64)
    for t in reversed(range(T)):
        dh = p["dy"][t] + (p["dstates_n"][0] if t == T - 1 else 0)
        dc = (dc + dh * o * (1 - np.tanh(c[t + 1]) ** 2)) * f
    assert_close(dc0, dc.astype(dtype), name="dc0")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("sign", [-1, 1])
def test_fully_saturated_rnn_is_exact(impl, dtype, sign):
    from fastrnn.registry import CELLS

    cell = CELLS["rnn"]
    p = weightless_problem(cell, 5, 2, 3, 4, dtype)
    p["b"] = np.full_like(p["b"], sign * 1e4)
    with strict_numerics():
        y, (h_n,), grads = run_cell(cell, impl, p)
    np.testing.assert_array_equal(y, np.full_like(y, sign))
    for name, grad in zip(("dx", "dw_ih", "dw_hh", "db", "dh0"), grads):
        assert not grad.any(), f"{name} should be exactly zero"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("signs", list(itertools.product([-1, 1], repeat=3)), ids=lambda s: "".join("+-"[v < 0] for v in s))
def test_fully_saturated_gru_is_exact(impl, dtype, signs):
    """r, z, n pre-activations of exactly +-1e4 (in b_ih; weights and b_hh zero) give r, z in {0, 1}, n = +-1.

    Then h' = (1 - z)*n + z*h exactly, every gate's local derivative is 0, and
    the only gradient path is the direct one through z: dh0 = z**T * (dh_n + sum dy).
    """
    from fastrnn.registry import CELLS

    cell = CELLS["gru"]
    T, B, D, H = 5, 2, 3, 4
    p = weightless_problem(cell, T, B, D, H, dtype)
    p["b_ih"] = np.repeat(np.array(signs, dtype) * dtype(1e4), H)
    p["b_hh"] = np.zeros_like(p["b_hh"])
    with strict_numerics():
        y, (h_n,), (dx, dw_ih, dw_hh, db_ih, db_hh, dh0) = run_cell(cell, impl, p)
    z, n = (signs[1] + 1) // 2, signs[2]
    h = p["states0"][0]
    for t in range(T):
        h = (1 - z) * n + z * h
        np.testing.assert_array_equal(y[t], h.astype(dtype))
    for name, grad in (("dx", dx), ("dw_ih", dw_ih), ("dw_hh", dw_hh), ("db_ih", db_ih), ("db_hh", db_hh)):
        assert not grad.any(), f"{name} should be exactly zero"
    expected = z * (p["dstates_n"][0].astype(np.float64) + p["dy"].astype(np.float64).sum(axis=0))
    assert_close(dh0, expected.astype(dtype), name="dh0")

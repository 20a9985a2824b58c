"""The kernels' vectorizable sigmoid/tanh: accuracy in ulps, saturation, NaN/Inf, no float64 in float32."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastrnn._jit import JIT_OPTIONS
from fastrnn.kernels.activations import activate, sigmoid, tanh

MAX_ULP = 3.0  # stated in fastrnn/kernels/activations.py


@numba.njit(**{**JIT_OPTIONS, "cache": False})  # uncached: must always see the current activations
def apply(which, x, out):
    for i in range(x.size):
        out[i] = sigmoid(x[i]) if which == 0 else tanh(x[i])


def evaluate(which, x):
    out = np.empty_like(x)
    apply(which, x, out)
    return out


def dense_sample(dtype):
    """Uniform over +-100 plus log-spaced magnitudes down to 1e-30, both signs."""
    magnitudes = np.geomspace(1e-30, 100, 200_001)
    return np.concatenate([np.linspace(-100, 100, 1_000_001), magnitudes, -magnitudes]).astype(dtype)


EXACT = {0: lambda x: 1 / (1 + np.exp(-x)), 1: np.tanh}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", [0, 1], ids=["sigmoid", "tanh"])
def test_error_within_three_ulp(which, dtype):
    x = dense_sample(dtype)
    with np.errstate(over="ignore"):  # the extended-precision oracle may overflow exp(-x); ours must not
        exact = EXACT[which](x.astype(np.longdouble))
    got = evaluate(which, x)
    normal = np.abs(exact) >= np.finfo(dtype).tiny
    ulps = np.abs(got[normal] - exact[normal]) / np.spacing(np.abs(exact[normal].astype(dtype)))
    assert ulps.max() <= MAX_ULP, f"max error {ulps.max():.2f} ulp at x={x[normal][ulps.argmax()]}"
    # Below the normal range the result flushes towards zero: absolute error below the smallest normal.
    assert np.all(np.abs(got[~normal] - exact[~normal]) < np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation_nan_and_inf(dtype):
    x = np.array([1e4, -1e4, np.inf, -np.inf, np.nan, 0.0, -0.0], dtype)
    s = evaluate(0, x)
    t = evaluate(1, x)
    np.testing.assert_array_equal(s[:4], np.array([1, 0, 1, 0], dtype))
    np.testing.assert_array_equal(t[:4], np.array([1, -1, 1, -1], dtype))
    assert np.isnan(s[4]) and np.isnan(t[4])
    assert s[5] == s[6] == 0.5
    assert t[5] == 0 and not np.signbit(t[5]) and t[6] == 0 and np.signbit(t[6])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_monotone_and_bounded(dtype):
    """Gates must stay in [0, 1] / [-1, 1] and never step backwards (a sloppy fit can)."""
    x = np.linspace(-30, 30, 600_001).astype(dtype)
    for which, lo, hi in ((0, 0, 1), (1, -1, 1)):
        y = evaluate(which, x)
        assert y.min() >= lo and y.max() <= hi
        assert np.all(np.diff(y) >= 0)


@numba.njit(**{**JIT_OPTIONS, "cache": False})
def apply_mixed(x, is_tanh, out):
    for i in range(x.size):
        out[i] = activate(x[i], is_tanh[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activate_with_a_per_element_choice_equals_sigmoid_and_tanh(dtype):
    """The LSTM forward picks tanh or sigmoid per element inside one vectorized loop (its g block);
    each element must get what the dedicated function gives, to the rounding of a differently
    contracted (vector) code path: within 1 ulp, and below the normal range within its spacing."""
    x = dense_sample(dtype)[::7]
    is_tanh = np.random.default_rng(0).random(x.size) < 0.5
    out = np.empty_like(x)
    apply_mixed(x, is_tanh, out)
    for which, chosen in ((1, is_tanh), (0, ~is_tanh)):
        expected = evaluate(which, x[chosen])
        spacing = np.spacing(np.maximum(np.abs(expected), np.finfo(dtype).tiny))
        assert np.all(np.abs(out[chosen] - expected) <= spacing), ["sigmoid", "tanh"][which]

"""Losses: values from their definitions, gradients vs central differences, stability, errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn as fr
from conftest import GRADCHECK_RTOL
from fastrnn import nn


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 5)])
def test_cross_entropy_value_and_gradient(shape):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(shape)
    targets = rng.integers(0, shape[-1], shape[:-1])
    loss, dlogits = nn.cross_entropy(logits, targets)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = -np.mean(np.log(np.take_along_axis(probs, targets[..., None], -1)))
    assert loss == pytest.approx(expected, rel=1e-12)
    report = fr.gradcheck(lambda logits: nn.cross_entropy(logits, targets).loss, {"logits": logits}, {"logits": dlogits})
    assert report.worst <= GRADCHECK_RTOL, report


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], np.float32)
    loss, dlogits = nn.cross_entropy(logits, np.array([1, 2]))
    # row 0: target logit 1e4 below the max -> 1e4 nats; row 1: two tied maxima -> log 2
    assert loss == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-6)
    assert np.isfinite(dlogits).all() and dlogits.dtype == np.float32


def test_cross_entropy_rejects_bad_targets():
    logits = np.zeros((2, 3))
    with pytest.raises(TypeError, match="integer"):
        nn.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\)"):
        nn.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="logits.shape"):
        nn.cross_entropy(logits, np.array([0, 1, 2]))


def test_mse_value_and_gradient():
    rng = np.random.default_rng(1)
    prediction, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, grad = nn.mse(prediction, target)
    assert loss == pytest.approx(np.mean((prediction - target) ** 2), rel=1e-14)
    report = fr.gradcheck(lambda p: nn.mse(p, target).loss, {"p": prediction}, {"p": grad})
    assert report.worst <= GRADCHECK_RTOL, report
    with pytest.raises(ValueError, match="target has shape"):
        nn.mse(prediction, target[:2])


def test_losses_do_not_modify_their_inputs():
    logits, targets = np.ones((2, 3)), np.array([0, 2])
    nn.cross_entropy(logits, targets)
    nn.mse(logits, 2 * logits)
    np.testing.assert_array_equal(logits, np.ones((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_kernel_matches_its_numpy_twin(dtype):
    from conftest import RTOL
    from fastrnn import reference
    from fastrnn.kernels.losses import softmax_cross_entropy

    rng = np.random.default_rng(3)
    N, C = 203, 41  # C not a multiple of the kernel's four running sums
    rows = (rng.standard_normal((N, C)) * rng.choice([0.1, 3.0, 80.0], (N, 1))).astype(dtype)
    rows[5, 7], rows[6, 0], rows[7, 40], rows[8, :] = np.nan, np.inf, -np.inf, -1e4
    labels = rng.integers(0, C, N)
    labels[7] = 40  # a -Inf target: loss Inf
    got = np.empty(N, dtype), np.empty((N, C), dtype)
    want = np.empty(N, dtype), np.empty((N, C), dtype)
    before = rows.copy()
    softmax_cross_entropy(rows, labels, *got)
    with np.errstate(divide="ignore", invalid="ignore"):
        reference.softmax_cross_entropy(rows, labels, *want)
    np.testing.assert_array_equal(rows, before)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g, w, rtol=RTOL[np.dtype(dtype)], atol=RTOL[np.dtype(dtype)] / N)
    assert np.isnan(got[0][[5, 6]]).all() and got[0][7] == np.inf

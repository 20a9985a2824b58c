"""Truncated BPTT: memory bounded by the chunk, state carried but gradient cut, k >= T is full BPTT."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn


def sequence(T, B=2, D=3, H=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, D)), rng.standard_normal((T, B, H))


def grads_of(layer):
    return {name: g.copy() for name, g in layer.grads.items()}


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_cache_size_scales_with_k_not_with_the_sequence_length(cell):
    peaks = {}
    for T in (64, 256):
        for k in (8, 16, 32):
            layer = nn.SequenceModel(cell, 3, 4, 2, dtype=np.float64, seed=0)
            x, _ = sequence(T)
            targets = np.zeros((T, 2), np.int64)
            peaks[T, k] = nn.truncated_bptt(layer, x, targets, k).peak_cache_bytes
            assert layer.cache_nbytes == 0  # every chunk's cache was released by its backward
    for k in (8, 16, 32):
        assert peaks[64, k] == peaks[256, k]  # independent of the sequence length
    # Affine in k: a constant part (weight copies) plus the same bytes per step.
    per_step = (peaks[64, 16] - peaks[64, 8]) / 8
    assert per_step > 0 and peaks[64, 32] - peaks[64, 16] == 16 * per_step
    full = nn.SequenceModel(cell, 3, 4, 2, dtype=np.float64, seed=0)
    full.forward(sequence(256)[0])
    assert full.cache_nbytes - peaks[64, 32] == (256 - 32) * per_step


def test_k_at_least_T_is_full_bptt():
    x, targets = sequence(10)
    chunked, full = (nn.LSTM(3, 4, dtype=np.float64, seed=1) for _ in range(2))
    result = nn.truncated_bptt(chunked, x, targets, k=10, loss=nn.mse)
    y, _ = full.forward(x)
    loss, dy = nn.mse(y, targets)
    full.backward(dy)
    assert result.loss == pytest.approx(loss, rel=1e-14) and result.chunks == 1
    for name, grad in grads_of(full).items():
        np.testing.assert_allclose(chunked.grads[name], grad, rtol=1e-13)


def test_chunks_carry_the_state_but_not_the_gradient():
    T, k = 12, 5
    x, targets = sequence(T)
    chunked, manual = (nn.LSTM(3, 4, dtype=np.float64, seed=2) for _ in range(2))
    result = nn.truncated_bptt(chunked, x, targets, k=k, loss=nn.mse)
    # The same thing by hand: each chunk starts from the previous final state,
    # and its backward gets no gradient from later chunks.
    state, losses = None, []
    for start in range(0, T, k):
        y, state = manual.forward(x[start:start + k], state)
        loss, dy = nn.mse(y, targets[start:start + k])
        manual.backward(dy * (len(y) / T))
        losses.append(loss * len(y))
    assert result.loss == pytest.approx(sum(losses) / T, rel=1e-14) and result.chunks == 3
    for name, grad in grads_of(manual).items():
        np.testing.assert_allclose(chunked.grads[name], grad, rtol=1e-13)
    np.testing.assert_array_equal(result.state[0], state[0])
    # ...and the carried state matters: starting each chunk from zeros differs.
    _, state_after_first, _ = manual.forward(x[:k], return_cache=True)
    carried, _, _ = manual.forward(x[k:2 * k], state_after_first, return_cache=True)
    from_zeros, _, _ = manual.forward(x[k:2 * k], return_cache=True)
    assert not np.allclose(carried, from_zeros)


def test_with_an_optimizer_each_chunk_is_one_step_and_training_works():
    rng = np.random.default_rng(3)
    T = 200
    x = rng.standard_normal((T, 4, 1))
    targets = np.roll(x, 1, axis=0)  # echo the previous input: needs memory across steps
    targets[0] = 0
    model = nn.SequenceModel("lstm", 1, 16, 1, dtype=np.float64, seed=0)
    opt = nn.Adam(model.layers.values(), lr=0.02)
    first = nn.truncated_bptt(model, x, targets, 20, loss=nn.mse, optimizer=opt, clip_norm=1.0)
    assert opt.steps == 10
    for _ in range(10):
        last = nn.truncated_bptt(model, x, targets, 20, loss=nn.mse, optimizer=opt, clip_norm=1.0)
    assert last.loss < 0.2 * first.loss


def test_bad_arguments():
    x, targets = sequence(4)
    layer = nn.LSTM(3, 4, dtype=np.float64)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        nn.truncated_bptt(layer, x, targets, 0, loss=nn.mse)
    with pytest.raises(ValueError, match="targets has 3 steps"):
        nn.truncated_bptt(layer, x, targets[:3], 2, loss=nn.mse)

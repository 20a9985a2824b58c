"""Pure-NumPy reference twin of the fast cells (LSTM, RNN, GRU): the oracle in every test.

Same function names, signatures, validation and return types as
:mod:`fastrnn.cells` (conventions are stated there).  Written for clarity, not
speed: one loop over time, vectorized over the batch, each derivative next to
the forward expression it differentiates, and weight gradients accumulated step
by step rather than hoisted into one GEMM as the kernels do -- so the two
implementations share as little structure as possible.
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from ._types import (GRUCache, GRUForward, GRUGrads, LSTMCache, LSTMForward, LSTMGrads, LSTMState, RNNCache,
                     RNNForward, RNNGrads)

__all__ = ["lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "sigmoid",
           "softmax_cross_entropy"]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function that never overflows: exp is only taken of -|a|."""
    z = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + z), z / (1 + z)).astype(a.dtype, copy=False)


def _state_or_zeros(state, B, H, dtype):
    return np.zeros((B, H), dtype) if state is None else state.astype(dtype)


def lstm_forward(x, w_ih, w_hh, b, h0=None, c0=None, *, lengths=None, check_finite=False) -> LSTMForward:
    """Reference LSTM forward; see :func:`fastrnn.lstm_forward`."""
    x, w_ih, w_hh, (b,), (h0, c0), dtype, _ = v.prepare_forward(
        4, x, w_ih, w_hh, {"b": b}, {"h0": h0, "c0": c0}, check_finite)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    lengths, padded = v.prepare_lengths(lengths, T, B)
    v.zero_padding(x, padded)
    h = np.zeros((T + 1, B, H), dtype)  # (T+1, B, H)
    c = np.zeros((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = _state_or_zeros(h0, B, H, dtype)
    c[0] = _state_or_zeros(c0, B, H, dtype)
    gates = np.zeros((T, B, 4 * H), dtype)  # (T, B, 4H)
    for t in range(T):
        active = (t < lengths)[:, None]  # (B, 1): padded sequences keep their state
        a = x[t] @ w_ih.T + h[t] @ w_hh.T + b  # (B, 4H) pre-activations
        i = sigmoid(a[:, 0 * H:1 * H])
        f = sigmoid(a[:, 1 * H:2 * H])
        g = np.tanh(a[:, 2 * H:3 * H])
        o = sigmoid(a[:, 3 * H:4 * H])
        c_new = f * c[t] + i * g
        c[t + 1] = np.where(active, c_new, c[t])
        h[t + 1] = np.where(active, o * np.tanh(c_new), h[t])
        gates[t] = np.where(active, np.concatenate([i, f, g, o], axis=1), 0)
    y = np.where((np.arange(T)[:, None] < lengths)[..., None], h[1:], 0).astype(dtype)
    return LSTMForward(y, LSTMState(h[T].copy(), c[T].copy()), LSTMCache(x, w_ih, w_hh, h, c, gates, lengths))


def lstm_backward(dy, cache, dh_n=None, dc_n=None, *, check_finite=False) -> LSTMGrads:
    """Reference LSTM backward; see :func:`fastrnn.lstm_backward`."""
    T, B, D, H, dtype = v.check_cache(cache, LSTMCache, 4, "lstm_forward")
    dy, (dh, dc) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n, "dc_n": dc_n}, check_finite)
    x, w_ih, w_hh, h, c, gates, lengths = cache
    dx = np.zeros((T, B, D), dtype)
    dw_ih = np.zeros((4 * H, D), dtype)
    dw_hh = np.zeros((4 * H, H), dtype)
    db = np.zeros(4 * H, dtype)
    for t in reversed(range(T)):
        active = (t < lengths)[:, None]  # (B, 1): a padded step passes dh, dc through
        i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        tanh_c = np.tanh(c[t + 1])
        dh_t = dh + dy[t]  # gradient reaching h[t+1]: from y[t] and from step t+1
        # h' = o * tanh(c')
        do = dh_t * tanh_c
        dc_t = dc + dh_t * o * (1 - tanh_c**2)
        # c' = f * c + i * g
        di = dc_t * g
        df = dc_t * c[t]
        dg = dc_t * i
        # through the activations, to the pre-activations a = [i f g o]
        da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1)
        da = np.where(active, da, 0).astype(dtype)
        # a = x W_ih^T + h W_hh^T + b
        dx[t] = da @ w_ih
        dw_ih += da.T @ x[t]
        dw_hh += da.T @ h[t]
        db += da.sum(axis=0)
        dc = np.where(active, dc_t * f, dc)  # gradient reaching c[t]
        dh = np.where(active, da @ w_hh, dh)  # gradient reaching h[t]
    return LSTMGrads(dx, dw_ih, dw_hh, db, dh, dc)


def rnn_forward(x, w_ih, w_hh, b, h0=None, *, lengths=None, check_finite=False) -> RNNForward:
    """Reference RNN forward; see :func:`fastrnn.rnn_forward`."""
    x, w_ih, w_hh, (b,), (h0,), dtype, _ = v.prepare_forward(1, x, w_ih, w_hh, {"b": b}, {"h0": h0}, check_finite)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    lengths, padded = v.prepare_lengths(lengths, T, B)
    v.zero_padding(x, padded)
    h = np.zeros((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = _state_or_zeros(h0, B, H, dtype)
    for t in range(T):
        active = (t < lengths)[:, None]  # (B, 1): padded sequences keep their state
        h[t + 1] = np.where(active, np.tanh(x[t] @ w_ih.T + h[t] @ w_hh.T + b), h[t])
    y = np.where((np.arange(T)[:, None] < lengths)[..., None], h[1:], 0).astype(dtype)
    return RNNForward(y, h[T].copy(), RNNCache(x, w_ih, w_hh, h, lengths))


def rnn_backward(dy, cache, dh_n=None, *, check_finite=False) -> RNNGrads:
    """Reference RNN backward; see :func:`fastrnn.rnn_backward`."""
    T, B, D, H, dtype = v.check_cache(cache, RNNCache, 1, "rnn_forward")
    dy, (dh,) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n}, check_finite)
    x, w_ih, w_hh, h, lengths = cache
    dx = np.zeros((T, B, D), dtype)
    dw_ih = np.zeros((H, D), dtype)
    dw_hh = np.zeros((H, H), dtype)
    db = np.zeros(H, dtype)
    for t in reversed(range(T)):
        active = (t < lengths)[:, None]  # (B, 1): a padded step passes dh through
        # h[t+1] = tanh(a)
        da = np.where(active, (dh + dy[t]) * (1 - h[t + 1] ** 2), 0).astype(dtype)
        dx[t] = da @ w_ih
        dw_ih += da.T @ x[t]
        dw_hh += da.T @ h[t]
        db += da.sum(axis=0)
        dh = np.where(active, da @ w_hh, dh)
    return RNNGrads(dx, dw_ih, dw_hh, db, dh)


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0=None, *, lengths=None, check_finite=False) -> GRUForward:
    """Reference GRU forward; see :func:`fastrnn.gru_forward`."""
    x, w_ih, w_hh, (b_ih, b_hh), (h0,), dtype, _ = v.prepare_forward(
        3, x, w_ih, w_hh, {"b_ih": b_ih, "b_hh": b_hh}, {"h0": h0}, check_finite)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    lengths, padded = v.prepare_lengths(lengths, T, B)
    v.zero_padding(x, padded)
    h = np.zeros((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = _state_or_zeros(h0, B, H, dtype)
    gates = np.zeros((T, B, 3 * H), dtype)  # (T, B, 3H)
    recurrent_n = np.zeros((T, B, H), dtype)  # (T, B, H)
    for t in range(T):
        active = (t < lengths)[:, None]  # (B, 1): padded sequences keep their state
        a_i = x[t] @ w_ih.T + b_ih  # (B, 3H)
        a_h = h[t] @ w_hh.T + b_hh  # (B, 3H)
        r = sigmoid(a_i[:, 0 * H:1 * H] + a_h[:, 0 * H:1 * H])
        z = sigmoid(a_i[:, 1 * H:2 * H] + a_h[:, 1 * H:2 * H])
        n = np.tanh(a_i[:, 2 * H:3 * H] + r * a_h[:, 2 * H:3 * H])
        recurrent_n[t] = np.where(active, a_h[:, 2 * H:3 * H], 0)
        h[t + 1] = np.where(active, (1 - z) * n + z * h[t], h[t])
        gates[t] = np.where(active, np.concatenate([r, z, n], axis=1), 0)
    y = np.where((np.arange(T)[:, None] < lengths)[..., None], h[1:], 0).astype(dtype)
    return GRUForward(y, h[T].copy(), GRUCache(x, w_ih, w_hh, h, gates, recurrent_n, lengths))


def gru_backward(dy, cache, dh_n=None, *, check_finite=False) -> GRUGrads:
    """Reference GRU backward; see :func:`fastrnn.gru_backward`."""
    T, B, D, H, dtype = v.check_cache(cache, GRUCache, 3, "gru_forward")
    dy, (dh,) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n}, check_finite)
    x, w_ih, w_hh, h, gates, recurrent_n, lengths = cache
    dx = np.zeros((T, B, D), dtype)
    dw_ih = np.zeros((3 * H, D), dtype)
    dw_hh = np.zeros((3 * H, H), dtype)
    db_ih = np.zeros(3 * H, dtype)
    db_hh = np.zeros(3 * H, dtype)
    for t in reversed(range(T)):
        active = (t < lengths)[:, None]  # (B, 1): a padded step passes dh through
        r, z, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
        dh_t = np.where(active, dh + dy[t], 0)  # gradient reaching h[t+1], zero where padded
        # h' = (1 - z) * n + z * h
        dn = dh_t * (1 - z)
        dz = dh_t * (h[t] - n)
        dh_direct = np.where(active, dh_t * z, dh)
        # n = tanh(a_in + r * recurrent_n), z = sigmoid(a_iz + a_hz), r = sigmoid(a_ir + a_hr)
        da_n = dn * (1 - n**2)
        dr = da_n * recurrent_n[t]
        da_r = dr * r * (1 - r)
        da_z = dz * z * (1 - z)
        da_i = np.concatenate([da_r, da_z, da_n], axis=1)  # at a_i = x W_ih^T + b_ih
        da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # at a_h = h W_hh^T + b_hh
        dx[t] = da_i @ w_ih
        dw_ih += da_i.T @ x[t]
        db_ih += da_i.sum(axis=0)
        dw_hh += da_h.T @ h[t]
        db_hh += da_h.sum(axis=0)
        dh = dh_direct + da_h @ w_hh  # gradient reaching h[t]
    return GRUGrads(dx, dw_ih, dw_hh, db_ih, db_hh, dh)


def softmax_cross_entropy(rows, labels, losses, dlogits) -> None:
    """Twin of ``fastrnn.kernels.losses.softmax_cross_entropy``: rows (N,C), labels (N,) ->
    losses (N,) = -log softmax(rows)[label], dlogits (N,C) = (softmax(rows) - onehot(labels)) / N."""
    N = rows.shape[0]
    # A +Inf logit makes its row's max Inf and Inf - Inf = NaN: the row's loss and
    # gradient are NaN, as in PyTorch; silenced so that NaN propagates without a warning.
    with np.errstate(invalid="ignore"):
        shifted = rows - rows.max(axis=1, keepdims=True)  # (N, C), max 0 per row
    exp_shifted = np.exp(shifted)  # (N, C), in (0, 1]: cannot overflow
    norm = exp_shifted.sum(axis=1)  # (N,), >= 1: its log is finite
    picked = np.arange(N)
    losses[:] = np.log(norm) - shifted[picked, labels]
    dlogits[:] = exp_shifted / norm[:, None]
    dlogits[picked, labels] -= 1
    dlogits /= N

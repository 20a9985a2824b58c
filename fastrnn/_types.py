"""Named tuples returned by the cells (LSTM, RNN, GRU); shared by the fast kernels and the reference.

Both implementations build the same cache, so a cache from one can be fed to the
other's backward (the parity tests do exactly that).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LSTMState(NamedTuple):
    h: np.ndarray  # (B, H)
    c: np.ndarray  # (B, H)


class LSTMCache(NamedTuple):
    """What :func:`fastrnn.lstm_backward` needs. Private copies, never the caller's arrays."""

    x: np.ndarray  # (T, B, D)
    w_ih: np.ndarray  # (4H, D)
    w_hh: np.ndarray  # (4H, H)
    h: np.ndarray  # (T+1, B, H); h[0] is the initial state
    c: np.ndarray  # (T+1, B, H); c[0] is the initial state
    gates: np.ndarray  # (T, B, 4H); activated gates in order i, f, g, o; zero past a sequence's length
    lengths: np.ndarray  # (B,) int64; steps t >= lengths[b] are padding for sequence b


class LSTMForward(NamedTuple):
    y: np.ndarray  # (T, B, H)
    state: LSTMState  # (h_n, c_n)
    cache: LSTMCache


class LSTMGrads(NamedTuple):
    dx: np.ndarray  # (T, B, D)
    dw_ih: np.ndarray  # (4H, D)
    dw_hh: np.ndarray  # (4H, H)
    db: np.ndarray  # (4H,)
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)


class RNNCache(NamedTuple):
    """What :func:`fastrnn.rnn_backward` needs. Private copies, never the caller's arrays."""

    x: np.ndarray  # (T, B, D)
    w_ih: np.ndarray  # (H, D)
    w_hh: np.ndarray  # (H, H)
    h: np.ndarray  # (T+1, B, H); h[0] is the initial state
    lengths: np.ndarray  # (B,) int64; steps t >= lengths[b] are padding for sequence b


class RNNForward(NamedTuple):
    y: np.ndarray  # (T, B, H)
    h_n: np.ndarray  # (B, H)
    cache: RNNCache


class RNNGrads(NamedTuple):
    dx: np.ndarray  # (T, B, D)
    dw_ih: np.ndarray  # (H, D)
    dw_hh: np.ndarray  # (H, H)
    db: np.ndarray  # (H,)
    dh0: np.ndarray  # (B, H)


class GRUCache(NamedTuple):
    """What :func:`fastrnn.gru_backward` needs. Private copies, never the caller's arrays."""

    x: np.ndarray  # (T, B, D)
    w_ih: np.ndarray  # (3H, D)
    w_hh: np.ndarray  # (3H, H)
    h: np.ndarray  # (T+1, B, H); h[0] is the initial state
    gates: np.ndarray  # (T, B, 3H); activated gates in order r, z, n
    recurrent_n: np.ndarray  # (T, B, H); h @ W_hn.T + b_hn, the term r scales (needed for dr)
    lengths: np.ndarray  # (B,) int64; steps t >= lengths[b] are padding for sequence b


class GRUForward(NamedTuple):
    y: np.ndarray  # (T, B, H)
    h_n: np.ndarray  # (B, H)
    cache: GRUCache


class GRUGrads(NamedTuple):
    dx: np.ndarray  # (T, B, D)
    dw_ih: np.ndarray  # (3H, D)
    dw_hh: np.ndarray  # (3H, H)
    db_ih: np.ndarray  # (3H,)
    db_hh: np.ndarray  # (3H,)
    dh0: np.ndarray  # (B, H)

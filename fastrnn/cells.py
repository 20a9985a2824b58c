"""LSTM, vanilla-RNN and GRU cells: the fast public API.

Conventions (stated once here; every module uses the same letters)
------------------------------------------------------------------
Shape letters:

* ``T`` -- time steps;  ``B`` -- batch;  ``D`` -- input features;
* ``H`` -- hidden size;  ``G`` -- gates per cell: 4 for the LSTM, 1 for the RNN, 3 for the GRU.

Layout follows PyTorch's ``nn.LSTM`` / ``nn.RNN`` / ``nn.GRU`` (``batch_first=False``):

* ``x`` is time-major, ``(T, B, D)``; ``y`` is ``(T, B, H)`` and holds every hidden state;
* ``w_ih`` is ``(G*H, D)``, ``w_hh`` is ``(G*H, H)``, ``b`` is ``(G*H,)``;
  a torch module's ``bias_ih_l0 + bias_hh_l0`` is ``b``; the GRU takes the
  two biases separately, ``b_ih`` and ``b_hh``, each ``(3*H,)`` (see below);
* ``h0``, ``c0``, ``h_n``, ``c_n`` are ``(B, H)``; ``None`` means zeros.

LSTM gate order is **i, f, g, o** (rows ``[0:H]``, ``[H:2H]``, ``[2H:3H]``, ``[3H:4H]``)::

    [i f g o] = x @ w_ih.T + h @ w_hh.T + b
    i, f, o = sigmoid(.), g = tanh(.)
    c' = f * c + i * g
    h' = o * tanh(c')

RNN: ``h' = tanh(x @ w_ih.T + h @ w_hh.T + b)``.

GRU gate order is **r, z, n**, as in PyTorch's ``nn.GRU``::

    [a_r a_z a_n] = x @ w_ih.T + b_ih        [g_r g_z g_n] = h @ w_hh.T + b_hh
    r = sigmoid(a_r + g_r),  z = sigmoid(a_z + g_z)
    n = tanh(a_n + r * g_n)
    h' = (1 - z) * n + z * h

``r`` multiplies ``g_n`` *including* ``b_hn``, so the biases cannot be summed
as for the other cells.

Backward returns the gradient of
``sum(dy * y) + sum(dh_n * h_n) + sum(dc_n * c_n)`` with respect to every input.

dtypes: float32 or float64, one dtype per call, computed in that precision; the
outputs have the input dtype.  Byte-swapped, strided, F-ordered and read-only
arrays are accepted (copied); other dtypes raise ``TypeError``.

Variable-length batches: with ``lengths`` (B,), steps ``t >= lengths[b]`` are
padding for sequence ``b``: its state carries through unchanged (the final
state is taken at its own last step), its outputs there are zero, its padded
input is never read (zeroed in the private copy), and backward passes the
state gradient through those steps.  The cache keeps the lengths.

Empty inputs are defined: with ``T == 0`` the final state is the initial state
and the weight gradients are zeros; with ``B == 0`` every output is empty and
the weight gradients are zeros.  ``D == 0`` is an input-free recurrence (``dx``
and ``dw_ih`` are empty); ``H == 0`` raises ``ValueError``.

Memory: the cache keeps private copies of ``x``, ``w_ih`` and ``w_hh`` plus,
per step, ``h`` and ``c`` (LSTM) and the activated gates -- ``6*B*H``
numbers per step for the LSTM, ``B*H`` for the RNN, ``5*B*H`` for the GRU
(``h``, ``r``, ``z``, ``n`` and ``g_n``) -- so a forward never depends on a
caller leaving its arrays alone afterwards.  Large arrays the wrappers allocate
come from :mod:`fastrnn._memory`'s pool, which hands a block out again only
once no array refers to it.
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from ._blas import call_kernel
from ._memory import empty
from ._types import (GRUCache, GRUForward, GRUGrads, LSTMCache, LSTMForward, LSTMGrads, LSTMState, RNNCache,
                     RNNForward, RNNGrads)
from .kernels.gru import gru_backward_kernel, gru_backward_lanes, gru_forward_kernel, gru_forward_lanes
from .kernels import lanes
from .kernels.lstm import lstm_backward_kernel, lstm_backward_lanes, lstm_forward_kernel, lstm_forward_lanes
from .kernels.rnn import rnn_backward_kernel, rnn_backward_lanes, rnn_forward_kernel, rnn_forward_lanes

__all__ = ["lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward"]


def _initial(buffer: np.ndarray, state) -> None:
    """Set [0] of a (T+1, B, H) state buffer to the initial state (zeros for None)."""
    buffer[0] = 0 if state is None else state


def outputs(h: np.ndarray, padded: np.ndarray | None) -> np.ndarray:
    """y (T, B, H) from the states h (T+1, B, H): a copy, zero at padded steps (``padded`` (T, B))."""
    y = empty(h[1:].shape, h.dtype)
    y[...] = h[1:]
    if padded is not None:
        y[padded] = 0
    return y


def lstm_forward(x, w_ih, w_hh, b, h0=None, c0=None, *, lengths=None, check_finite=False) -> LSTMForward:
    """Run an LSTM over a sequence.

    Parameters
    ----------
    x : array (T, B, D), float32 or float64
    w_ih : array (4H, D)
    w_hh : array (4H, H)
    b : array (4H,)
        Gate order i, f, g, o (see :mod:`fastrnn.cells`).
    h0, c0 : array (B, H), optional
        Initial hidden and cell state; ``None`` means zeros.
    lengths : array of int (B,), optional
        Variable-length batch: sequence ``b`` is ``x[:lengths[b], b]``; later
        steps are padding.  Its state stops updating at its own last step (so
        the final state is taken there), its outputs past it are zero, and
        gradients equal those of running each sequence alone.  ``None`` means
        every sequence has all T steps.
    check_finite : bool, default False
        Raise ``ValueError`` if any input holds NaN or Inf.  When False, NaN
        and Inf propagate as they would in the reference.

    Returns
    -------
    LSTMForward
        ``(y, (h_n, c_n), cache)``: ``y`` (T, B, H); ``h_n``, ``c_n`` (B, H);
        ``cache`` for :func:`lstm_backward`.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, or mixed dtypes.
    ValueError
        A wrong number of dimensions or mismatched shapes; non-finite input
        with ``check_finite=True``.
    """
    args = v.prepare_forward(4, x, w_ih, w_hh, {"b": b}, {"h0": h0, "c0": c0}, check_finite,
                             lambda T, B, H: ((T + 1, B, H), (T + 1, B, H), (T, B, 4 * H)))
    T, B, _ = args.x.shape
    H = args.w_hh.shape[1]
    steps, padded = v.prepare_lengths(lengths, T, B)  # (B,), (T, B) or None
    v.zero_padding(args.x, padded)
    h, c, gates = args.buffers  # (T+1, B, H), (T+1, B, H), (T, B, 4H)
    _initial(h, args.states[0])
    _initial(c, args.states[1])
    work = empty((B, 4 * H), args.dtype)  # (B, 4H)
    D = args.x.shape[2]
    kernel_args = (args.x, args.w_ih, args.w_hh, args.biases[0], steps, h, c, gates, work)
    how = lanes.plan(B, H, 4, args.dtype, steps, T, D)
    if how:
        lanes.run(lstm_forward_lanes, how, *kernel_args)
    else:
        call_kernel(T * B * 4 * H * (D + H), T * B * 4 * H * max(D, H), lstm_forward_kernel, *kernel_args)
    cache = LSTMCache(args.x, args.w_ih, args.w_hh, h, c, gates, steps)
    return LSTMForward(outputs(h, padded), LSTMState(h[T].copy(), c[T].copy()), cache)


def lstm_backward(dy, cache, dh_n=None, dc_n=None, *, check_finite=False) -> LSTMGrads:
    """Backpropagate through an LSTM forward pass (full BPTT).

    Parameters
    ----------
    dy : array (T, B, H)
        Gradient arriving at ``y``.
    cache : LSTMCache
        The cache returned by :func:`lstm_forward` (or by the reference twin).
    dh_n, dc_n : array (B, H), optional
        Gradients arriving at the final state; ``None`` means zeros.
    check_finite : bool, default False
        Raise ``ValueError`` if ``dy``/``dh_n``/``dc_n`` hold NaN or Inf.

    Returns
    -------
    LSTMGrads
        ``(dx, dw_ih, dw_hh, db, dh0, dc0)`` with the shapes of
        ``x, w_ih, w_hh, b, h0, c0``; new arrays of the forward's dtype.

    Raises
    ------
    TypeError
        ``cache`` is not an LSTMCache, or a dtype differs from the forward's.
    ValueError
        A shape differs from the forward's, or the cache was altered.
    """
    T, B, D, H, dtype = v.check_cache(cache, LSTMCache, 4, "lstm_forward")
    dy, (dh, dc) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n, "dc_n": dc_n}, check_finite)
    dgates = empty((T, B, 4 * H), dtype)  # (T, B, 4H)
    dx = empty((T, B, D), dtype)  # (T, B, D)
    dw_ih = empty((4 * H, D), dtype)  # (4H, D)
    dw_hh = empty((4 * H, H), dtype)  # (4H, H)
    db = empty((4 * H,), dtype)  # (4H,)
    work = empty((B, H), dtype)  # (B, H)
    kernel_args = (dy, cache.x, cache.w_ih, cache.w_hh, cache.lengths, cache.h, cache.c, cache.gates,
                   dh, dc, dgates, work, dx, dw_ih, dw_hh, db)
    how = lanes.plan(B, H, 4, dtype, cache.lengths, T, D)
    if how:
        lanes.run(lstm_backward_lanes, how, *kernel_args)
    else:
        call_kernel(3 * T * B * 4 * H * (D + H), T * B * 4 * H * max(D, H), lstm_backward_kernel, *kernel_args)
    return LSTMGrads(dx, dw_ih, dw_hh, db, dh, dc)


def rnn_forward(x, w_ih, w_hh, b, h0=None, *, lengths=None, check_finite=False) -> RNNForward:
    """Run a vanilla tanh RNN over a sequence.

    Parameters
    ----------
    x : array (T, B, D), float32 or float64
    w_ih : array (H, D)
    w_hh : array (H, H)
    b : array (H,)
    h0 : array (B, H), optional
        Initial hidden state; ``None`` means zeros.
    lengths : array of int (B,), optional
        Variable-length batch: sequence ``b`` is ``x[:lengths[b], b]``; later
        steps are padding.  Its state stops updating at its own last step (so
        the final state is taken there), its outputs past it are zero, and
        gradients equal those of running each sequence alone.  ``None`` means
        every sequence has all T steps.
    check_finite : bool, default False
        Raise ``ValueError`` if any input holds NaN or Inf.

    Returns
    -------
    RNNForward
        ``(y, h_n, cache)``: ``y`` (T, B, H); ``h_n`` (B, H); ``cache`` for
        :func:`rnn_backward`.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, or mixed dtypes.
    ValueError
        A wrong number of dimensions or mismatched shapes; non-finite input
        with ``check_finite=True``.
    """
    args = v.prepare_forward(1, x, w_ih, w_hh, {"b": b}, {"h0": h0}, check_finite,
                             lambda T, B, H: ((T + 1, B, H),))
    T, B, _ = args.x.shape
    H = args.w_hh.shape[1]
    steps, padded = v.prepare_lengths(lengths, T, B)  # (B,), (T, B) or None
    v.zero_padding(args.x, padded)
    h, = args.buffers  # (T+1, B, H)
    _initial(h, args.states[0])
    work = empty((B, H), args.dtype)  # (B, H)
    D = args.x.shape[2]
    kernel_args = (args.x, args.w_ih, args.w_hh, args.biases[0], steps, h, work)
    how = lanes.plan(B, H, 1, args.dtype, steps, T, D)
    if how:
        lanes.run(rnn_forward_lanes, how, *kernel_args)
    else:
        call_kernel(T * B * H * (D + H), T * B * H * max(D, H), rnn_forward_kernel, *kernel_args)
    return RNNForward(outputs(h, padded), h[T].copy(), RNNCache(args.x, args.w_ih, args.w_hh, h, steps))


def rnn_backward(dy, cache, dh_n=None, *, check_finite=False) -> RNNGrads:
    """Backpropagate through an RNN forward pass (full BPTT).

    Parameters
    ----------
    dy : array (T, B, H)
        Gradient arriving at ``y``.
    cache : RNNCache
        The cache returned by :func:`rnn_forward` (or by the reference twin).
    dh_n : array (B, H), optional
        Gradient arriving at the final state; ``None`` means zeros.
    check_finite : bool, default False
        Raise ``ValueError`` if ``dy``/``dh_n`` hold NaN or Inf.

    Returns
    -------
    RNNGrads
        ``(dx, dw_ih, dw_hh, db, dh0)`` with the shapes of ``x, w_ih, w_hh, b, h0``.

    Raises
    ------
    TypeError
        ``cache`` is not an RNNCache, or a dtype differs from the forward's.
    ValueError
        A shape differs from the forward's, or the cache was altered.
    """
    T, B, D, H, dtype = v.check_cache(cache, RNNCache, 1, "rnn_forward")
    dy, (dh,) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n}, check_finite)
    da = empty((T, B, H), dtype)  # (T, B, H)
    dx = empty((T, B, D), dtype)  # (T, B, D)
    dw_ih = empty((H, D), dtype)  # (H, D)
    dw_hh = empty((H, H), dtype)  # (H, H)
    db = empty((H,), dtype)  # (H,)
    work = empty((B, H), dtype)  # (B, H)
    kernel_args = (dy, cache.x, cache.w_ih, cache.w_hh, cache.lengths, cache.h, dh, da, work, dx, dw_ih, dw_hh, db)
    how = lanes.plan(B, H, 1, dtype, cache.lengths, T, D)
    if how:
        lanes.run(rnn_backward_lanes, how, *kernel_args)
    else:
        call_kernel(3 * T * B * H * (D + H), T * B * H * max(D, H), rnn_backward_kernel, *kernel_args)
    return RNNGrads(dx, dw_ih, dw_hh, db, dh)


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0=None, *, lengths=None, check_finite=False) -> GRUForward:
    """Run a GRU over a sequence (PyTorch's ``nn.GRU`` equations).

    Parameters
    ----------
    x : array (T, B, D), float32 or float64
    w_ih : array (3H, D)
    w_hh : array (3H, H)
        Gate order r, z, n (see :mod:`fastrnn.cells`).
    b_ih : array (3H,)
        Bias added to ``x @ w_ih.T``.
    b_hh : array (3H,)
        Bias added to ``h @ w_hh.T``; its n part is scaled by ``r``.
    h0 : array (B, H), optional
        Initial hidden state; ``None`` means zeros.
    lengths : array of int (B,), optional
        Variable-length batch, as in :func:`lstm_forward`.
    check_finite : bool, default False
        Raise ``ValueError`` if any input holds NaN or Inf.

    Returns
    -------
    GRUForward
        ``(y, h_n, cache)``: ``y`` (T, B, H); ``h_n`` (B, H); ``cache`` for
        :func:`gru_backward`.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, or mixed dtypes.
    ValueError
        A wrong number of dimensions or mismatched shapes; non-finite input
        with ``check_finite=True``.
    """
    args = v.prepare_forward(3, x, w_ih, w_hh, {"b_ih": b_ih, "b_hh": b_hh}, {"h0": h0}, check_finite,
                             lambda T, B, H: ((T + 1, B, H), (T, B, 3 * H), (T, B, H)))
    T, B, _ = args.x.shape
    H = args.w_hh.shape[1]
    steps, padded = v.prepare_lengths(lengths, T, B)  # (B,), (T, B) or None
    v.zero_padding(args.x, padded)
    h, gates, recurrent_n = args.buffers  # (T+1, B, H), (T, B, 3H), (T, B, H)
    _initial(h, args.states[0])
    work = empty((B, 3 * H), args.dtype)  # (B, 3H)
    D = args.x.shape[2]
    kernel_args = (args.x, args.w_ih, args.w_hh, *args.biases, steps, h, gates, recurrent_n, work)
    how = lanes.plan(B, H, 3, args.dtype, steps, T, D, units=False)
    if how:
        lanes.run(gru_forward_lanes, how, *kernel_args)
    else:
        call_kernel(T * B * 3 * H * (D + H), T * B * 3 * H * max(D, H), gru_forward_kernel, *kernel_args)
    cache = GRUCache(args.x, args.w_ih, args.w_hh, h, gates, recurrent_n, steps)
    return GRUForward(outputs(h, padded), h[T].copy(), cache)


def gru_backward(dy, cache, dh_n=None, *, check_finite=False) -> GRUGrads:
    """Backpropagate through a GRU forward pass (full BPTT).

    Parameters
    ----------
    dy : array (T, B, H)
        Gradient arriving at ``y``.
    cache : GRUCache
        The cache returned by :func:`gru_forward` (or by the reference twin).
    dh_n : array (B, H), optional
        Gradient arriving at the final state; ``None`` means zeros.
    check_finite : bool, default False
        Raise ``ValueError`` if ``dy``/``dh_n`` hold NaN or Inf.

    Returns
    -------
    GRUGrads
        ``(dx, dw_ih, dw_hh, db_ih, db_hh, dh0)`` with the shapes of
        ``x, w_ih, w_hh, b_ih, b_hh, h0``; new arrays of the forward's dtype.

    Raises
    ------
    TypeError
        ``cache`` is not a GRUCache, or a dtype differs from the forward's.
    ValueError
        A shape differs from the forward's, or the cache was altered.
    """
    T, B, D, H, dtype = v.check_cache(cache, GRUCache, 3, "gru_forward")
    dy, (dh,) = v.prepare_backward(dy, T, B, H, dtype, {"dh_n": dh_n}, check_finite)
    carry = np.zeros((B, H), dtype)  # (B, H)
    dgates_ih = empty((T, B, 3 * H), dtype)  # (T, B, 3H)
    dgates_hh = empty((T, B, 3 * H), dtype)  # (T, B, 3H)
    dx = empty((T, B, D), dtype)  # (T, B, D)
    dw_ih = empty((3 * H, D), dtype)  # (3H, D)
    dw_hh = empty((3 * H, H), dtype)  # (3H, H)
    db_ih = empty((3 * H,), dtype)  # (3H,)
    db_hh = empty((3 * H,), dtype)  # (3H,)
    kernel_args = (dy, cache.x, cache.w_ih, cache.w_hh, cache.lengths, cache.h, cache.gates, cache.recurrent_n,
                   dh, carry, dgates_ih, dgates_hh, dx, dw_ih, dw_hh, db_ih, db_hh)
    how = lanes.plan(B, H, 3, dtype, cache.lengths, T, D, units=False)
    if how:
        lanes.run(gru_backward_lanes, how, *kernel_args)
    else:
        call_kernel(3 * T * B * 3 * H * (D + H), T * B * 3 * H * max(D, H), gru_backward_kernel, *kernel_args)
    return GRUGrads(dx, dw_ih, dw_hh, db_ih, db_hh, dh)

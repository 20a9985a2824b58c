"""Truncated backpropagation through time: a long sequence in chunks of ``k`` steps.

The state flows forward across chunk boundaries, but no gradient flows back
across them: each chunk's backward starts with zero gradient at its final state
("detached"), and its cache is released before the next chunk runs, so memory
is that of one ``k``-step chunk however long the sequence is.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .clip import clip_grad_norm
from .losses import cross_entropy


class TBPTTResult(NamedTuple):
    loss: float  # mean loss over all T steps (each chunk's mean weighted by its length)
    state: object  # final state, to carry into the next call
    chunks: int  # number of chunks run
    peak_cache_bytes: int  # largest pending cache seen: bounded by the chunk length


def truncated_bptt(model, x, targets, k: int, *, loss: Callable = cross_entropy, state=None,
                   optimizer=None, clip_norm: float | None = None) -> TBPTTResult:
    """Forward/backward over ``x`` in chunks of ``k`` time steps.

    Parameters
    ----------
    model : layer or SequenceModel
        Anything with ``forward(x, state) -> (out, state)``,
        ``backward(dout)`` and ``cache_nbytes``, e.g. ``nn.LSTM`` or
        ``nn.SequenceModel``; time-major.
    x : array (T, B, ...)
    targets : array (T, B, ...)
        What ``loss(out_chunk, targets_chunk) -> (loss, dout)`` compares with.
    k : int
        Chunk length (the last chunk may be shorter).
    loss : callable, default cross_entropy
    state : optional
        Initial state (the model's state form); None means zeros.
    optimizer : Optimizer, optional
        If given, every chunk is one update: ``zero_grad``, forward, backward,
        optional clipping, ``step``.  If not, the gradients of all chunks
        accumulate in the layers, each chunk's loss gradient weighted by
        ``len(chunk) / T``, i.e. the truncated gradient of the mean loss over
        all T steps (with ``k >= T`` it is exactly full BPTT).
    clip_norm : float, optional
        With an optimizer, clip the global gradient norm to this before each step.

    Returns
    -------
    TBPTTResult
        ``(loss, state, chunks, peak_cache_bytes)``.

    Raises
    ------
    ValueError
        ``k`` not positive, or ``x`` and ``targets`` differ in length.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    T = len(x)
    if len(targets) != T:
        raise ValueError(f"targets has {len(targets)} steps but x has {T}; they must match")
    if clip_norm is not None and optimizer is None:
        raise ValueError("clip_norm needs an optimizer (clipping happens before each chunk's step)")
    total, chunks, peak = 0.0, 0, 0
    for start in range(0, T, k):
        stop = min(start + k, T)
        if optimizer is not None:
            optimizer.zero_grad()
        out, state = model.forward(x[start:stop], state)
        peak = max(peak, model.cache_nbytes)
        chunk_loss, dout = loss(out, targets[start:stop])
        weight = 1.0 if optimizer is not None else (stop - start) / T
        model.backward(dout * dout.dtype.type(weight))
        if optimizer is not None:
            if clip_norm is not None:
                clip_grad_norm(optimizer.modules, clip_norm)
            optimizer.step()
        total += chunk_loss * (stop - start)
        chunks += 1
    return TBPTTResult(total / T if T else 0.0, state, chunks, peak)

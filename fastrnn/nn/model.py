"""``SequenceModel``: a recurrent layer followed by a ``Linear`` head, the model of every example.

It follows the layers' calling style, so anything that drives a layer
(truncated BPTT, the CLI's training loop) drives it too::

    out, state = model.forward(x, state)   # x (T, B, D) -> out (T, B, C)
    dx = model.backward(dout)              # adds to every layer's grads

``model.layers`` is the dict ``{"rnn": LSTM, RNN or GRU, "head": Linear}`` that
optimizers, clipping and checkpoints take.
"""

from __future__ import annotations

import numpy as np

from .linear import Linear
from .recurrent import GRU, LSTM, RNN

CELLS = {"lstm": LSTM, "rnn": RNN, "gru": GRU}


class SequenceModel:
    """``head(rnn(x))``: per-step outputs of a recurrent layer mapped by one affine layer.

    Parameters
    ----------
    cell : {"lstm", "rnn", "gru"}
    input_size, hidden_size, output_size : int
        D, H and C.
    dtype : float32 or float64, default float32
    seed : int, optional
        Seeds both layers (the head with ``seed + 1``), so a seed fixes the model.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int,
                 dtype=np.float32, seed: int | None = None) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}")
        self.cell = cell
        self.rnn = CELLS[cell](input_size, hidden_size, dtype=dtype, seed=seed)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=None if seed is None else seed + 1)
        self.layers = {"rnn": self.rnn, "head": self.head}

    @property
    def dtype(self) -> np.dtype:
        return self.rnn.dtype

    def forward(self, x, state=None, *, return_cache=False):
        """``x`` (T, B, D) -> ``out`` (T, B, C) and the final state (the rnn's state form).

        With ``return_cache=True`` nothing is kept for backward (a third item,
        the pair of layer caches, is returned instead): use it for sampling and
        evaluation between a training forward and its backward.
        """
        if return_cache:
            y, state, rnn_cache = self.rnn.forward(x, state, return_cache=True)
            out, head_cache = self.head.forward(y, return_cache=True)
            return out, state, (rnn_cache, head_cache)
        y, state = self.rnn.forward(x, state)
        return self.head.forward(y), state

    def backward(self, dout, dstate=None):
        """Backpropagate ``dout`` (T, B, C) through head and rnn; return ``dx`` (T, B, D)."""
        dy = self.head.backward(dout)
        dx, _ = self.rnn.backward(dy, dstate)
        return dx

    def loss(self, x, targets, loss_fn, *, backward: bool = True) -> float:
        """Forward from zero state, ``loss_fn(out, targets) -> (loss, dout)``, then backward if asked.

        The one-liner both a training step and a gradient check need:
        ``nn.gradcheck_layers(model.layers, lambda b: model.loss(x, t, nn.mse, backward=b))``.
        """
        out, _ = self.forward(x)
        value, dout = loss_fn(out, targets)
        if backward:
            self.backward(dout)
        return value

    def zero_grad(self) -> None:
        for layer in self.layers.values():
            layer.zero_grad()

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the pending caches of all layers."""
        return sum(layer.cache_nbytes for layer in self.layers.values())

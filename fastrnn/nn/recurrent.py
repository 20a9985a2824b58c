"""``LSTM`` and ``RNN`` layers with PyTorch's constructor, parameter names and calling shapes.

Shapes use the letters of :mod:`fastrnn.cells`; in addition ``L`` is
``num_layers`` and ``Z`` the number of directions (1, or 2 when
bidirectional).  With ``batch_first=True`` the ``(T, B, .)`` arrays below are
``(B, T, .)``; states are always ``(L*Z, B, H)``, as in PyTorch.

Parameters per layer ``k`` and direction (suffix ``""`` or ``"_reverse"``),
exactly PyTorch's names so that a state dict maps 1:1::

    weight_ih_l{k}  (G*H, D)     weight_hh_l{k}  (G*H, H)
    bias_ih_l{k}    (G*H,)       bias_hh_l{k}    (G*H,)

The kernels take one bias; ``bias_ih + bias_hh`` is passed, and both biases
receive the same gradient.  The pending-cache rules are in
:mod:`fastrnn.nn.module`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v
from ..cells import lstm_backward, lstm_forward, rnn_backward, rnn_forward
from .module import Module, check_input


def param_names(layer: int, reverse: bool) -> tuple[str, str, str, str]:
    """PyTorch's names of (weight_ih, weight_hh, bias_ih, bias_hh) for one layer and direction."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return tuple(name + suffix for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


class _Recurrent(Module):
    """Shared machinery; subclasses set the cell (gate count, kernels, state names)."""

    gates: int
    state_names: tuple  # names of the state tensors, e.g. ("h", "c")
    # _run_forward(x, w_ih, w_hh, b, states) -> (y, final_states, cache) and
    # _kernel_backward(dy, cache, *dstates_n) -> (dx, dw_ih, dw_hh, db, *dstates0)

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False,
                 dtype=np.float32, seed=None) -> None:
        super().__init__(dtype)
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        # Parameter naming, state shapes (L*Z, B, H) and the per-(layer,
        # direction) initialization loop below are already general; only the
        # forward/backward wiring between layers and directions is missing.
        if num_layers != 1:
            raise NotImplementedError("num_layers > 1 is not implemented yet (see the issue on more cells and layouts)")
        if bidirectional:
            raise NotImplementedError("bidirectional=True is not implemented yet (see the issue on more cells and layouts)")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        rng = np.random.default_rng(seed)
        H, G = self.hidden_size, self.gates
        bound = 1.0 / math.sqrt(H)  # PyTorch: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else H * self.num_directions
            for reverse in range(self.num_directions):
                shapes = ((G * H, D), (G * H, H), (G * H,), (G * H,))
                for name, shape in zip(param_names(layer, bool(reverse)), shapes):
                    self._add_param(name, rng.uniform(-bound, bound, shape))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    # -- layout helpers -------------------------------------------------------
    def _time_major(self, name: str, value, last: int, last_name: str) -> np.ndarray:
        layout = f"(B, T, {last_name})" if self.batch_first else f"(T, B, {last_name})"
        array = check_input(name, value, self.dtype, 3, layout, last, last_name)
        return array.transpose(1, 0, 2) if self.batch_first else array

    def _caller_layout(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.transpose(1, 0, 2)) if self.batch_first else array

    def _states(self, name: str, states, B: int) -> list:
        """Each state (L*Z, B, H) or None, as the (B, H) slices the kernels take (None stays None)."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        result = []
        for state_name, value in zip(self.state_names, states):
            if value is None:
                result.append(None)
                continue
            label = f"{name}{state_name}" if len(self.state_names) > 1 else name
            array = check_input(label, value, self.dtype, 3, "(L*Z, B, H)", self.hidden_size, "H")
            v.check_shape(label, array, shape, f"(num_layers*num_directions, B, H) with B={B}")
            result.append(array[0])
        return result

    # -- the single-layer, single-direction pass --------------------------------
    def _forward(self, x, states, return_cache):
        x = self._time_major("x", x, self.input_size, "D")
        states = self._states("", states, x.shape[1])
        w_ih, w_hh, b_ih, b_hh = (self.params[n] for n in param_names(0, False))
        y, final, cache = type(self)._run_forward(x, w_ih, w_hh, b_ih + b_hh, states)
        finals = tuple(s[None] for s in final)  # each (1, B, H) = (L*Z, B, H)
        return (self._caller_layout(y), finals) + self._keep(cache, return_cache)

    def _backward(self, dy, dstates, cache):
        cache = self._pending_or(cache)
        T, B, _ = cache.x.shape
        dy = self._time_major("dy", dy, self.hidden_size, "H")
        if dy.shape[:2] != (T, B):
            raise ValueError(f"dy has shape {dy.shape} (time-major); expected (T, B, H) = {(T, B, self.hidden_size)}, the shape of y")
        dstates = self._states("d", dstates, B)
        self._consume(cache)
        dx, dw_ih, dw_hh, db, *dstates0 = type(self)._kernel_backward(dy, cache, *dstates)
        names = param_names(0, False)
        for name, grad in zip(names, (dw_ih, dw_hh, db, db)):
            self.grads[name] += grad
        return self._caller_layout(dx), tuple(d[None] for d in dstates0)


class LSTM(_Recurrent):
    """Long short-term memory layer (gate order i, f, g, o), PyTorch's ``nn.LSTM`` shapes.

    Parameters
    ----------
    input_size : int
        D, features per step.
    hidden_size : int
        H.
    num_layers : int, default 1
        Only 1 for now; larger values raise ``NotImplementedError``.
    bidirectional : bool, default False
        ``True`` raises ``NotImplementedError`` for now.
    batch_first : bool, default False
        Inputs and outputs are ``(B, T, .)`` instead of ``(T, B, .)``.
    dtype : float32 or float64, default float32
    seed : int, optional
        Seeds ``np.random.default_rng`` for the U(-1/sqrt(H), 1/sqrt(H)) initialization.

    Notes
    -----
    ``y, (h_n, c_n) = layer.forward(x, (h0, c0))`` then
    ``dx, (dh0, dc0) = layer.backward(dy, (dh_n, dc_n))``; states are
    ``(1, B, H)`` and optional.  ``backward`` adds to ``layer.grads`` and
    consumes the cache of the last ``forward`` (see :mod:`fastrnn.nn.module`).
    """

    gates = 4
    state_names = ("h", "c")
    _run_forward = staticmethod(lambda x, w_ih, w_hh, b, states: _unpack_lstm(lstm_forward(x, w_ih, w_hh, b, *states)))
    _kernel_backward = staticmethod(lstm_backward)

    def forward(self, x, state=None, *, return_cache=False):
        """Run the layer.

        Parameters
        ----------
        x : array (T, B, D) (``(B, T, D)`` if batch_first), the layer's dtype
        state : tuple (h0, c0), optional
            Each ``(1, B, H)`` or None (zeros).
        return_cache : bool, default False
            Return the cache as a third item instead of keeping it as the
            pending one.

        Returns
        -------
        y : array (T, B, H)
        (h_n, c_n) : arrays (1, B, H)
        cache : only with ``return_cache=True``

        Raises
        ------
        TypeError, ValueError
            ``x`` or the state has a wrong dtype or shape.
        """
        return self._forward(x, _pair(state, "state"), return_cache)

    def backward(self, dy, dstate=None, *, cache=None):
        """Backpropagate; add the parameter gradients to ``self.grads``.

        Parameters
        ----------
        dy : array like ``y``
        dstate : tuple (dh_n, dc_n), optional
            Each ``(1, B, H)`` or None (zeros).
        cache : optional
            A cache from ``forward(..., return_cache=True)``; by default the
            pending cache of the last forward is used and consumed.

        Returns
        -------
        dx : array like ``x``
        (dh0, dc0) : arrays (1, B, H)

        Raises
        ------
        RuntimeError
            No pending forward (none yet, or already consumed).
        """
        dx, (dh0, dc0) = self._backward(dy, _pair(dstate, "dstate"), cache)
        return dx, (dh0, dc0)


class RNN(_Recurrent):
    """Vanilla tanh RNN layer, PyTorch's ``nn.RNN`` shapes (same constructor as :class:`LSTM`).

    Notes
    -----
    ``y, h_n = layer.forward(x, h0)`` then ``dx, dh0 = layer.backward(dy, dh_n)``;
    states are ``(1, B, H)`` and optional.  ``backward`` adds to ``layer.grads``
    and consumes the cache of the last ``forward``.
    """

    gates = 1
    state_names = ("h",)
    _run_forward = staticmethod(lambda x, w_ih, w_hh, b, states: _unpack_rnn(rnn_forward(x, w_ih, w_hh, b, *states)))
    _kernel_backward = staticmethod(rnn_backward)

    def forward(self, x, h0=None, *, return_cache=False):
        """Run the layer: ``x`` (T, B, D) -> ``y`` (T, B, H), ``h_n`` (1, B, H) [, cache].

        See :meth:`LSTM.forward`; the state is the single array ``h0`` (1, B, H) or None.
        """
        y, (h_n,), *cache = self._forward(x, (h0,), return_cache)
        return (y, h_n, *cache)

    def backward(self, dy, dh_n=None, *, cache=None):
        """Backpropagate: returns ``dx`` (like x) and ``dh0`` (1, B, H); adds to ``self.grads``.

        See :meth:`LSTM.backward`.
        """
        dx, (dh0,) = self._backward(dy, (dh_n,), cache)
        return dx, dh0


def _pair(state, name: str) -> tuple:
    if state is None:
        return (None, None)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{name} must be a tuple (h, c) of (1, B, H) arrays or None; got {type(state).__name__}")
    return tuple(state)


def _unpack_lstm(out):
    return out.y, tuple(out.state), out.cache


def _unpack_rnn(out):
    return out.y, (out.h_n,), out.cache

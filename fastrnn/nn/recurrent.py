"""``LSTM``, ``RNN`` and ``GRU`` layers with PyTorch's constructor, parameter names and calling shapes.

Shapes use the letters of :mod:`fastrnn.cells`; in addition ``L`` is
``num_layers`` and ``Z`` the number of directions (1, or 2 when
bidirectional).  With ``batch_first=True`` the ``(T, B, .)`` arrays below are
``(B, T, .)``; states are always ``(L*Z, B, H)``, as in PyTorch, ordered
layer by layer with the forward direction first.

Parameters per layer ``k`` and direction (suffix ``""`` or ``"_reverse"``),
exactly PyTorch's names so that a state dict maps 1:1::

    weight_ih_l{k}  (G*H, D_k)   weight_hh_l{k}  (G*H, H)
    bias_ih_l{k}    (G*H,)       bias_hh_l{k}    (G*H,)

with ``D_0 = D`` and ``D_k = Z*H`` above the first layer, which reads the
concatenated outputs ``[forward, reverse]`` of the layer below.  The LSTM and
RNN kernels take one bias, so ``bias_ih + bias_hh`` is passed and both biases
receive the same gradient; the GRU kernel takes both.

Stacking and directions are built from the single-layer kernels: each layer
and direction is one kernel call, the reverse direction runs the kernel on the
time-reversed sequence (and its output is reversed back), and the layer's
cache is the tuple of those kernel caches.  The pending-cache rules are in
:mod:`fastrnn.nn.module`; because of that cache, one layer object is not for
concurrent use from several threads (the kernels are thread-safe).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from .. import _validate as v
from .._memory import empty
from .._types import GRUCache, LSTMCache, RNNCache
from ..registry import CELLS
from .module import Module, check_bool, check_fraction, check_input, check_size, make_rng


def param_names(layer: int, reverse: bool) -> tuple[str, str, str, str]:
    """PyTorch's names of (weight_ih, weight_hh, bias_ih, bias_hh) for one layer and direction."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return tuple(name + suffix for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


class LayerCache(NamedTuple):
    """What a recurrent layer's backward needs (returned by ``forward(..., return_cache=True)``)."""

    cells: tuple  # cells[layer * Z + direction]: that kernel call's cache (LSTMCache, RNNCache or GRUCache)
    owner: object  # token of the layer whose forward made it (Module._check_owner)
    masks: tuple = ()  # masks[k] (T, B, Z*H): the dropout applied to layer k's output; () without dropout


def _time_reversed(array: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``array`` (T, B, .) with each sequence back to front within its own length.

    What the reverse direction reads and writes: sequence ``b`` starts at its
    own last step ``lengths[b] - 1``; its padding stays where it is.  The map
    is its own inverse.  Full lengths give a plain reversed view.
    """
    T, B = array.shape[:2]
    if lengths.min(initial=T) >= T:
        return array[::-1]
    t = np.arange(T)[:, None]
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return array[source, np.arange(B)[None, :]]


def _concatenated(outputs: list) -> np.ndarray:
    """The directions' outputs, each (T, B, H), side by side as (T, B, Z*H), in pooled memory
    (as the kernels' own outputs are; see :mod:`fastrnn._memory`)."""
    T, B, H = outputs[0].shape
    joined = empty((T, B, len(outputs) * H), outputs[0].dtype)
    for direction, y in enumerate(outputs):
        joined[:, :, direction * H:(direction + 1) * H] = y
    return joined


class _Recurrent(Module):
    """Shared machinery; subclasses set the cell (a :mod:`fastrnn.registry` entry) and state names."""

    cell_name: str  # key of fastrnn.registry.CELLS
    state_names: tuple  # names of the state tensors, e.g. ("h", "c")
    _cache_type: type  # the kernel's cache type, LSTMCache, RNNCache or GRUCache

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False,
                 dtype=np.float32, seed=None, *, dropout=0.0) -> None:
        super().__init__(dtype)
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.batch_first = check_bool("batch_first", batch_first)
        self.dropout = check_fraction("dropout", dropout)
        if self.dropout and self.num_layers == 1:
            # PyTorch warns alike: dropout acts between layers, so one layer never drops anything.
            warnings.warn(f"dropout={dropout} has no effect with num_layers=1: dropout is applied to the "
                          "outputs of every layer but the last", UserWarning, stacklevel=3)
        rng = make_rng(seed)
        H, G = self.hidden_size, self.gates
        bound = 1.0 / math.sqrt(H)  # PyTorch: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else H * self.num_directions
            for reverse in range(self.num_directions):
                shapes = ((G * H, D), (G * H, H), (G * H,), (G * H,))
                for name, shape in zip(param_names(layer, bool(reverse)), shapes):
                    self._add_param(name, rng.uniform(-bound, bound, shape))
        # Drawn after the parameters, so that a seed gives the same parameters with or without dropout.
        self._dropout_rng = np.random.default_rng(rng.integers(1 << 63))

    def _generator(self):
        return self._dropout_rng if self.dropout else None  # without dropout nothing is drawn

    def _dropout_mask(self, shape: tuple) -> np.ndarray:
        """A fresh dropout mask: 0 with probability ``dropout``, else 1 / (1 - dropout) (PyTorch's scaling)."""
        keep = self._dropout_rng.random(shape, dtype=self.dtype) >= self.dropout
        mask = empty(shape, self.dtype)
        np.multiply(keep, self.dtype.type(1.0 / (1.0 - self.dropout)), out=mask)
        return mask

    @property
    def cell(self):
        return CELLS[self.cell_name]

    @property
    def gates(self) -> int:
        return self.cell.gates

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    # -- layout helpers -------------------------------------------------------
    def _time_major(self, name: str, value, last: int, last_name: str) -> np.ndarray:
        layout = f"(B, T, {last_name})" if self.batch_first else f"(T, B, {last_name})"
        array = check_input(name, value, self.dtype, 3, layout, last, last_name)
        return array.transpose(1, 0, 2) if self.batch_first else array

    def _caller_shape(self, array: np.ndarray) -> tuple:
        return (array.shape[1], array.shape[0], *array.shape[2:]) if self.batch_first else array.shape

    def _caller_layout(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.transpose(1, 0, 2)) if self.batch_first else array

    def _states(self, labels: tuple, states, B: int) -> list:
        """Each state as a checked (L*Z, B, H) array, or None; ``labels`` name them in messages."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        result = []
        for label, value in zip(labels, states):
            if value is None:
                result.append(None)
                continue
            array = check_input(label, value, self.dtype, 3, "(L*Z, B, H)", self.hidden_size, "H")
            v.check_shape(label, array, shape, f"(num_layers*num_directions, B, H) with B={B}")
            result.append(array)
        return result

    def _kernel_biases(self, b_ih, b_hh) -> tuple:
        """The kernel's bias arguments: (b_ih + b_hh,) for one-bias cells, (b_ih, b_hh) for the GRU."""
        return (b_ih, b_hh) if len(self.cell.bias_names) == 2 else (b_ih + b_hh,)

    def _bias_grads(self, dbiases) -> tuple:
        """(d bias_ih, d bias_hh) from the kernel's bias gradients: a summed bias gives both the same."""
        return tuple(dbiases) if len(dbiases) == 2 else (dbiases[0], dbiases[0])

    # -- every layer and direction ----------------------------------------------
    def _forward(self, x, states, lengths, return_cache):
        x = self._time_major("x", x, self.input_size, "D")
        states = self._states(tuple(f"{s}0" for s in self.state_names), states, x.shape[1])
        lengths, _ = v.prepare_lengths(lengths, x.shape[0], x.shape[1])  # (B,)
        Z = self.num_directions
        caches, masks = [], []
        finals = [[] for _ in self.state_names]  # finals[k][layer * Z + direction], each (B, H)
        inputs = x  # (T, B, D_k)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(Z):
                index = layer * Z + direction
                w_ih, w_hh, b_ih, b_hh = (self.params[n] for n in param_names(layer, bool(direction)))
                states0 = [None if s is None else s[index] for s in states]
                sequence = _time_reversed(inputs, lengths) if direction else inputs
                out = self.cell.forward(sequence, w_ih, w_hh, *self._kernel_biases(b_ih, b_hh), *states0,
                                        lengths=lengths)
                outputs.append(_time_reversed(out.y, lengths) if direction else out.y)
                for k, final in enumerate(self.cell.final_state(out)):
                    finals[k].append(final)
                caches.append(out.cache)
            inputs = outputs[0] if Z == 1 else _concatenated(outputs)  # (T, B, Z*H)
            if self.training and self.dropout and layer < self.num_layers - 1:
                masks.append(self._dropout_mask(inputs.shape))
                inputs *= masks[-1]  # in place: inputs is this call's own array
        finals = tuple(np.stack(f) for f in finals)  # each (L*Z, B, H)
        cache = LayerCache(tuple(caches), self._token, tuple(masks))
        return (self._caller_layout(inputs), finals) + self._keep(cache, return_cache)

    def _check_cache(self, cache) -> None:
        count = self.num_layers * self.num_directions
        if not (isinstance(cache, LayerCache) and len(cache.cells) == count
                and all(isinstance(c, self._cache_type) for c in cache.cells)):
            raise TypeError(
                f"cache must be the LayerCache of {count} {self._cache_type.__name__} from "
                f"{type(self).__name__}.forward(..., return_cache=True); got {type(cache).__name__}")
        self._check_owner(cache)
        T, B = cache.cells[0].x.shape[:2]
        shape = (T, B, self.num_directions * self.hidden_size)
        masks = cache.masks
        if not (isinstance(masks, tuple) and len(masks) in (0, self.num_layers - 1) and all(
                type(m) is np.ndarray and m.shape == shape and m.dtype == self.dtype for m in masks)):
            raise ValueError(f"cache.masks is not as forward left it: expected () or {self.num_layers - 1} "
                             f"{self.dtype} arrays of shape {shape}; pass the cache unchanged")

    def _backward(self, dy, dstates, cache):
        cache = self._pending_or(cache)
        self._check_cache(cache)
        T, B, _ = cache.cells[0].x.shape
        H, Z = self.hidden_size, self.num_directions
        dy = self._time_major("dy", dy, Z * H, "H" if Z == 1 else "2*H")
        if dy.shape[:2] != (T, B):
            # Reported in the caller's layout: a batch_first caller never sees a time-major shape.
            letters, expected = ("(B, T, ", (B, T, Z * H)) if self.batch_first else ("(T, B, ", (T, B, Z * H))
            raise ValueError(f"dy has shape {self._caller_shape(dy)}; expected {letters}"
                             f"{'H' if Z == 1 else '2*H'}) = {expected}, the shape of y")
        dstates = self._states(tuple(f"d{s}_n" for s in self.state_names), dstates, B)
        lengths = cache.cells[0].lengths  # every kernel call of one forward had the same
        self._consume(cache)
        n_biases = len(self.cell.bias_names)
        dstates0 = tuple(np.empty((self.num_layers * Z, B, H), self.dtype) for _ in self.state_names)
        d_outputs = dy  # gradient at the current layer's output, (T, B, Z*H)
        for layer in reversed(range(self.num_layers)):
            d_inputs = None  # gradient at the current layer's input, summed over directions
            for direction in range(Z):
                index = layer * Z + direction
                dy_d = d_outputs[:, :, direction * H:(direction + 1) * H]
                dstates_n = [None if d is None else d[index] for d in dstates]
                grads = self.cell.backward(_time_reversed(dy_d, lengths) if direction else dy_d, cache.cells[index],
                                           *dstates_n)
                dx = _time_reversed(grads[0], lengths) if direction else grads[0]
                if d_inputs is None:
                    d_inputs = dx
                else:
                    d_inputs += dx  # in place: d_inputs is the other direction's dx, new to this call
                param_grads = (grads[1], grads[2], *self._bias_grads(grads[3:3 + n_biases]))
                for name, grad in zip(param_names(layer, bool(direction)), param_grads):
                    self.grads[name] += grad
                for k, d0 in enumerate(grads[3 + n_biases:]):
                    dstates0[k][index] = d0
            if cache.masks and layer > 0:
                d_inputs *= cache.masks[layer - 1]  # in place: d_inputs is this call's own array
            d_outputs = d_inputs
        return self._caller_layout(d_outputs), dstates0


class LSTM(_Recurrent):
    """Long short-term memory layer (gate order i, f, g, o), PyTorch's ``nn.LSTM`` shapes.

    Parameters
    ----------
    input_size : int
        D, features per step.
    hidden_size : int
        H.
    num_layers : int, default 1
        L, layers stacked: layer k > 0 reads the outputs of layer k - 1.
    bidirectional : bool, default False
        Run a second, reverse-time cell per layer; ``y`` holds both outputs
        concatenated, ``[forward, reverse]``, so its last dimension is 2H.
    batch_first : bool, default False
        Inputs and outputs are ``(B, T, .)`` instead of ``(T, B, .)``.
    dtype : float32 or float64, default float32
    seed : int, optional
        Seeds ``np.random.default_rng`` for the U(-1/sqrt(H), 1/sqrt(H))
        initialization and for the dropout masks.
    dropout : float in [0, 1), default 0.0 (keyword only)
        PyTorch's ``dropout``: in training mode (``layer.train()``, the mode of
        a new layer) each output of every layer but the last is zeroed with
        this probability, and the others scaled by ``1 / (1 - dropout)``,
        before the next layer reads it; ``backward`` applies the same masks
        (they are kept in the cache).  ``layer.eval()`` turns it off.  The masks
        come from the layer's own generator, so in training mode the results
        agree with a torch module's only in distribution.  With
        ``num_layers=1`` it has no effect (a ``UserWarning`` says so, as in PyTorch).
        :func:`fastrnn.nn.save_checkpoint` saves the generator's state with the
        parameters, so a resumed run draws the masks an uninterrupted one would.

    Notes
    -----
    ``y, (h_n, c_n) = layer.forward(x, (h0, c0))`` then
    ``dx, (dh0, dc0) = layer.backward(dy, (dh_n, dc_n))``; states are
    ``(L*Z, B, H)`` and optional.  ``backward`` adds to ``layer.grads`` and
    consumes the cache of the last ``forward`` (see :mod:`fastrnn.nn.module`).
    """

    cell_name = "lstm"
    state_names = ("h", "c")
    _cache_type = LSTMCache

    def forward(self, x, state=None, *, lengths=None, return_cache=False):
        """Run the layer.

        Parameters
        ----------
        x : array (T, B, D) (``(B, T, D)`` if batch_first), the layer's dtype
        state : tuple (h0, c0), optional
            Each ``(L*Z, B, H)`` or None (zeros).
        lengths : array of int (B,), optional
            Variable-length batch: sequence ``b`` is its first ``lengths[b]``
            steps.  Its states stop there (``h_n`` is taken at its own last
            step), its outputs past it are zero, and the reverse direction
            starts at its own last step, as with PyTorch's PackedSequence.
        return_cache : bool, default False
            Return the cache as a third item instead of keeping it as the
            pending one.

        Returns
        -------
        y : array (T, B, Z*H)
            The last layer's outputs, both directions concatenated.
        (h_n, c_n) : arrays (L*Z, B, H)
            Every layer's and direction's final state (the reverse
            direction's is the state after reading ``x[0]``).
        cache : LayerCache, only with ``return_cache=True``

        Raises
        ------
        TypeError, ValueError
            ``x`` or the state has a wrong dtype or shape.
        """
        return self._forward(x, _pair(state, "state"), lengths, return_cache)

    def backward(self, dy, dstate=None, *, cache=None):
        """Backpropagate; add the parameter gradients to ``self.grads``.

        Parameters
        ----------
        dy : array like ``y``
        dstate : tuple (dh_n, dc_n), optional
            Each ``(L*Z, B, H)`` or None (zeros).
        cache : LayerCache, optional
            A cache from ``forward(..., return_cache=True)``; by default the
            pending cache of the last forward is used and consumed.

        Returns
        -------
        dx : array like ``x``
        (dh0, dc0) : arrays (L*Z, B, H)

        Raises
        ------
        RuntimeError
            No pending forward (none yet, or already consumed).
        TypeError, ValueError
            A wrong cache, or ``dy``/``dstate`` of the wrong dtype or shape.
        """
        dx, (dh0, dc0) = self._backward(dy, _pair(dstate, "dstate"), cache)
        return dx, (dh0, dc0)


class _HiddenStateOnly(_Recurrent):
    """Cells whose state is ``h`` alone (RNN, GRU): the state is one array, not a tuple."""

    state_names = ("h",)

    def forward(self, x, h0=None, *, lengths=None, return_cache=False):
        """Run the layer: ``x`` (T, B, D) -> ``y`` (T, B, Z*H), ``h_n`` (L*Z, B, H) [, cache].

        See :meth:`LSTM.forward` (also for ``lengths``); the state is the single
        array ``h0`` (L*Z, B, H) or None.
        """
        y, (h_n,), *cache = self._forward(x, (h0,), lengths, return_cache)
        return (y, h_n, *cache)

    def backward(self, dy, dh_n=None, *, cache=None):
        """Backpropagate: returns ``dx`` (like x) and ``dh0`` (L*Z, B, H); adds to ``self.grads``.

        See :meth:`LSTM.backward`.
        """
        dx, (dh0,) = self._backward(dy, (dh_n,), cache)
        return dx, dh0


class RNN(_HiddenStateOnly):
    """Vanilla tanh RNN layer, PyTorch's ``nn.RNN`` shapes (same constructor as :class:`LSTM`).

    Notes
    -----
    ``y, h_n = layer.forward(x, h0)`` then ``dx, dh0 = layer.backward(dy, dh_n)``;
    states are ``(L*Z, B, H)`` and optional.  ``backward`` adds to ``layer.grads``
    and consumes the cache of the last ``forward``.
    """

    cell_name = "rnn"
    _cache_type = RNNCache


class GRU(_HiddenStateOnly):
    """Gated recurrent unit layer (gate order r, z, n), PyTorch's ``nn.GRU`` shapes and equations.

    Same constructor as :class:`LSTM` and calls as :class:`RNN`:
    ``y, h_n = layer.forward(x, h0)`` then ``dx, dh0 = layer.backward(dy, dh_n)``.
    ``bias_ih`` and ``bias_hh`` are passed to the kernel separately (``r``
    scales the recurrent n term with its bias), so their gradients differ.
    """

    cell_name = "gru"
    _cache_type = GRUCache


def _pair(state, name: str) -> tuple:
    if state is None:
        return (None, None)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{name} must be a tuple (h, c) of (L*Z, B, H) arrays or None; got {type(state).__name__}")
    return tuple(state)

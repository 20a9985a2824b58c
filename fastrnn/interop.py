"""Move weights between PyTorch's ``nn.LSTM`` / ``nn.RNN`` / ``nn.GRU`` and fastrnn.

fastrnn's layout is PyTorch's (see :mod:`fastrnn.cells`): gate orders i, f, g, o
and r, z, n, ``w_ih`` ``(G*H, D)``, ``w_hh`` ``(G*H, H)``, time-major input.
The one difference is the LSTM's and RNN's bias: PyTorch keeps two, fastrnn
one, ``b = bias_ih + bias_hh`` -- they are only ever added, so the sum loses
nothing a forward or backward needs (both torch biases receive the same
gradient, ``db``).  The GRU's ``r`` gate scales ``bias_hh``'s n part, so the
GRU keeps both (:class:`GRUCellWeights`).

The functional helpers here work on parameter names as PyTorch spells them,
``{weight_ih, weight_hh, bias_ih, bias_hh}_l{k}[_reverse]``, and return one
:class:`CellWeights` per layer and direction: ``weights[layer][direction]``,
direction 0 forward and 1 reverse (the reverse cell reads the sequence
back to front).

:func:`from_torch` and :func:`to_torch` convert whole layers
(``fastrnn.nn.LSTM``/``RNN``/``GRU``, stacked and bidirectional included),
which keep PyTorch's parameter names and both biases, so a module -> layer ->
module round trip is exact.

torch is imported only inside the functions that need it, so ``import
fastrnn.interop`` -- and reading a state dict saved as NumPy arrays -- works
without torch installed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import _validate as v

__all__ = ["CellWeights", "GRUCellWeights", "from_torch", "to_torch", "weights_from_torch", "weights_to_state_dict"]

# Gates per supported cell (G), by the ``mode`` string torch's RNNBase stores.
GATES = {"LSTM": 4, "RNN_TANH": 1, "GRU": 3}
_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_SUFFIXES = ("", "_reverse")  # direction 0, 1


class CellWeights(NamedTuple):
    """The arguments one layer and direction passes to ``fr.lstm_forward``/``fr.rnn_forward``."""

    w_ih: np.ndarray  # (G*H, D); D is the layer's input size
    w_hh: np.ndarray  # (G*H, H)
    b: np.ndarray  # (G*H,) = bias_ih + bias_hh


class GRUCellWeights(NamedTuple):
    """The arguments one layer and direction passes to ``fr.gru_forward``: ``fr.gru_forward(x, *weights)``."""

    w_ih: np.ndarray  # (3H, D); D is the layer's input size
    w_hh: np.ndarray  # (3H, H)
    b_ih: np.ndarray  # (3H,)
    b_hh: np.ndarray  # (3H,)


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "this needs PyTorch, which is not installed; install it with the 'peers' extra, "
            "pip install 'fastrnn[peers]'"
        ) from error
    return torch


def _as_numpy(name: str, value, ndim: int, layout: str) -> np.ndarray:
    """A private float32/float64 copy of a tensor or array (never a view of the caller's memory)."""
    if hasattr(value, "detach"):  # a torch tensor, possibly requiring grad or on another device
        value = value.detach().cpu().numpy()
    array = v.as_float_array(name, value, ndim, layout)
    return v.private_copy(array, v.native(array.dtype))


def check_module(module, *, batch_first: bool = False, dropout: bool = False) -> int:
    """Check that fastrnn can reproduce ``module`` exactly; return its gate count G.

    Raises TypeError for a module that is not ``nn.LSTM``/``nn.RNN``/``nn.GRU`` or whose
    parameters are not all float32 or all float64, and ValueError naming the
    option for a configuration fastrnn does not support.  ``dropout=True``
    accepts dropout between layers in training mode (the layers have it; the
    kernels' weights alone do not).
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.RNNBase):
        raise TypeError(f"module must be a torch.nn.LSTM, torch.nn.RNN or torch.nn.GRU; got {type(module).__name__}")
    if module.mode == "RNN_RELU":
        raise ValueError("nonlinearity='relu' is not supported: fastrnn's RNN cell is tanh only")
    if module.mode not in GATES:
        raise ValueError(f"torch RNN mode {module.mode!r} is not supported; fastrnn has LSTM, RNN_TANH and GRU")
    if getattr(module, "proj_size", 0) > 0:
        raise ValueError(f"proj_size={module.proj_size} is not supported: fastrnn's LSTM has no projection")
    # torch applies dropout only between stacked layers and only in training mode.
    if module.training and module.dropout > 0 and module.num_layers > 1 and not dropout:
        raise ValueError(
            f"dropout={module.dropout} in training mode is not supported here: the kernels apply no "
            "dropout between layers; call module.eval() first, build the module with dropout=0, or "
            "use interop.from_torch, whose layer applies it"
        )
    dtypes = sorted({str(param.dtype) for param in module.parameters()})
    if dtypes not in (["torch.float32"], ["torch.float64"]):
        raise TypeError(
            f"the module's parameters have dtype {', '.join(dtypes)}; fastrnn needs one of float32 or float64 "
            "(convert with module.float() or module.double())"
        )
    if module.batch_first != batch_first:
        raise ValueError(
            f"batch_first mismatch: the module has batch_first={module.batch_first} but batch_first="
            f"{batch_first} was passed.  fastrnn is time-major, x (T, B, D); if you feed the module "
            "(B, T, D), transpose with x.transpose(1, 0, 2) for fastrnn and pass batch_first=True "
            "to say so"
        )
    return GATES[module.mode]


def _parse_names(state_dict: Mapping) -> tuple[int, int, bool]:
    """(num_layers, num_directions, bias) from the parameter names, checking none is missing or unknown."""
    found = {}
    for name in state_dict:
        match = _NAME.match(name)
        if match is None:
            raise ValueError(
                f"unexpected parameter {name!r}; expected names like weight_ih_l0, bias_hh_l1_reverse "
                "(an nn.LSTM/nn.RNN/nn.GRU state dict)"
            )
        kind, layer, reverse = match.groups()
        if kind == "weight_hr":
            raise ValueError(f"{name!r} is an LSTM projection (proj_size > 0), which fastrnn does not support")
        found[name] = (int(layer), 1 if reverse else 0)
    if not found:
        raise ValueError("state_dict holds no parameters; expected weight_ih_l0, weight_hh_l0, ...")
    num_layers = 1 + max(layer for layer, _ in found.values())
    num_directions = 1 + max(direction for _, direction in found.values())
    bias = any(name.startswith("bias") for name in found)
    kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if bias else ())
    expected = {
        f"{kind}_l{k}{_SUFFIXES[d]}" for kind in kinds for k in range(num_layers) for d in range(num_directions)
    }
    if set(found) != expected:
        missing = sorted(expected - set(found))
        extra = sorted(set(found) - expected)
        raise ValueError(
            f"state_dict is not a complete {num_layers}-layer, {num_directions}-direction set: "
            f"missing {missing}" + (f", unexpected {extra}" if extra else "")
        )
    return num_layers, num_directions, bias


def _cell_weights(state_dict: Mapping, suffix: str, bias: bool, G: int | None,
                  D: int | None) -> CellWeights | GRUCellWeights:
    """One layer and direction, shape-checked; G and D (None = free) come from the layer below.

    Three gates mean a GRU (GRUCellWeights, both biases); otherwise the biases are summed (CellWeights).
    """
    w_hh = _as_numpy(f"weight_hh{suffix}", state_dict[f"weight_hh{suffix}"], 2, "(G*H, H)")
    H = w_hh.shape[1]
    if H < 1 or w_hh.shape[0] % H:
        raise ValueError(
            f"weight_hh{suffix} has shape {w_hh.shape}; expected (G*H, H) with G = 4 (LSTM), 3 (GRU) or 1 (RNN)")
    gates = w_hh.shape[0] // H
    if gates not in GATES.values() or (G is not None and gates != G):
        raise ValueError(
            f"weight_hh{suffix} has shape {w_hh.shape}: {gates} gates; expected "
            + (f"{G} like the other layers" if G is not None else "4 (LSTM), 3 (GRU) or 1 (RNN)")
        )
    w_ih = _as_numpy(f"weight_ih{suffix}", state_dict[f"weight_ih{suffix}"], 2, "(G*H, D)")
    dtype = w_hh.dtype
    v.check_same_dtype(f"weight_ih{suffix}", w_ih, dtype, f"weight_hh{suffix}")
    v.check_shape(f"weight_ih{suffix}", w_ih, (gates * H, D if D is not None else w_ih.shape[1]),
                  f"(G*H, D) with G={gates}, H={H}" + (f", D={D} (the layer below's output)" if D is not None else ""))
    biases = [np.zeros(gates * H, dtype), np.zeros(gates * H, dtype)]  # each (G*H,); bias=False means zeros
    if bias:
        for k, kind in enumerate(("bias_ih", "bias_hh")):
            biases[k] = _as_numpy(f"{kind}{suffix}", state_dict[f"{kind}{suffix}"], 1, "(G*H,)")
            v.check_same_dtype(f"{kind}{suffix}", biases[k], dtype, f"weight_hh{suffix}")
            v.check_shape(f"{kind}{suffix}", biases[k], (gates * H,), f"(G*H,) with G={gates}, H={H}")
    if gates == GATES["GRU"]:
        return GRUCellWeights(w_ih, w_hh, *biases)
    return CellWeights(w_ih, w_hh, biases[0] + biases[1])


def weights_from_torch(source, *, batch_first: bool = False) -> tuple[tuple[CellWeights, ...], ...]:
    """fastrnn weights, per layer and direction, from a torch module or state dict.

    Parameters
    ----------
    source : torch.nn.LSTM, torch.nn.RNN, torch.nn.GRU, or mapping
        A module, or a mapping from PyTorch parameter names
        (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...) to tensors or NumPy
        arrays, float32 or float64.  A mapping of NumPy arrays needs no torch.
    batch_first : bool, default False
        What you expect ``module.batch_first`` to be.  fastrnn is time-major,
        so a ``batch_first=True`` module raises unless you pass
        ``batch_first=True`` to say you will transpose ``x`` to ``(T, B, D)``.
        Ignored for a mapping, which carries no layout.

    Returns
    -------
    tuple of tuple of CellWeights or GRUCellWeights
        ``weights[layer][direction]`` = ``(w_ih, w_hh, b)`` with shapes
        ``(G*H, D_k)``, ``(G*H, H)``, ``(G*H,)``; ``b = bias_ih + bias_hh``
        (zeros when the module has ``bias=False``).  For a GRU (3 gates),
        ``(w_ih, w_hh, b_ih, b_hh)`` with both biases kept.  Either way
        ``fr.<cell>_forward(x, *weights[layer][direction])`` runs that cell.
        New arrays in the source's dtype, never sharing memory with it.

    Raises
    ------
    TypeError
        A module other than nn.LSTM/nn.RNN/nn.GRU; a dtype other than float32/float64.
    ValueError
        An unsupported option (``proj_size``, ``nonlinearity='relu'``,
        ``dropout`` in training mode, a ``batch_first`` mismatch); missing,
        unknown or inconsistently shaped parameters.
    """
    gates = None
    if isinstance(source, Mapping):
        state_dict = source
    else:
        gates = check_module(source, batch_first=batch_first)
        state_dict = dict(source.named_parameters())
    num_layers, num_directions, bias = _parse_names(state_dict)
    layers = []
    D = None  # layer 0's input size is free; layer k > 0 reads H * num_directions features
    for k in range(num_layers):
        directions = []
        for d in range(num_directions):
            cell = _cell_weights(state_dict, f"_l{k}{_SUFFIXES[d]}", bias, gates, D)
            gates = cell.w_hh.shape[0] // cell.w_hh.shape[1]
            D = cell.w_ih.shape[1]  # the reverse cell reads the same input as the forward one
            directions.append(cell)
        H = directions[0].w_hh.shape[1]
        for cell in directions[1:]:
            v.check_shape(f"weight_hh_l{k}_reverse", cell.w_hh, directions[0].w_hh.shape, f"that of weight_hh_l{k}")
        D = H * num_directions
        layers.append(tuple(directions))
    dtype = layers[0][0].w_hh.dtype
    for k, directions in enumerate(layers):
        for d, cell in enumerate(directions):
            v.check_same_dtype(f"weight_hh_l{k}{_SUFFIXES[d]}", cell.w_hh, dtype, "weight_hh_l0")
    return tuple(layers)


def weights_to_state_dict(weights, *, bias: bool = True) -> dict:
    """A torch state dict (``module.load_state_dict`` accepts it) from fastrnn weights.

    Parameters
    ----------
    weights : sequence of sequence of (w_ih, w_hh, b) or (w_ih, w_hh, b_ih, b_hh)
        ``weights[layer][direction]``, as :func:`weights_from_torch` returns
        (one or two directions, the same number in every layer; GRU cells
        carry both biases).
    bias : bool, default True
        The module's ``bias`` setting.  With ``bias=False`` no bias entries are
        written, and every bias must be zero.

    Returns
    -------
    dict of str to torch.Tensor
        New tensors in the weights' dtype.  A single ``b`` becomes ``bias_ih``
        and ``bias_hh`` is zero: the torch module then computes exactly what
        fastrnn computes, though the split of the bias differs from any
        module the weights came from.  Two biases are written as they are.

    Raises
    ------
    ImportError
        torch is not installed.
    ValueError
        Inconsistent shapes or layer counts; a nonzero bias with ``bias=False``.
    """
    torch = _import_torch()
    arrays = {}
    for k, directions in enumerate(weights):
        if len(directions) not in (1, 2):
            raise ValueError(f"weights[{k}] has {len(directions)} directions; expected 1 or 2")
        for d, (w_ih, w_hh, *biases) in enumerate(directions):
            suffix = f"_l{k}{_SUFFIXES[d]}"
            arrays[f"weight_ih{suffix}"] = w_ih
            arrays[f"weight_hh{suffix}"] = w_hh
            names = ("b",) if len(biases) == 1 else ("b_ih", "b_hh")
            biases = [_as_numpy(f"weights[{k}][{d}].{name}", b, 1, "(G*H,)") for name, b in zip(names, biases)]
            if len(biases) == 1:
                biases.append(np.zeros_like(biases[0]))
            if bias:
                arrays[f"bias_ih{suffix}"], arrays[f"bias_hh{suffix}"] = biases
            else:
                for name, b in zip(names, biases):
                    if b.any():
                        raise ValueError(
                            f"bias=False but weights[{k}][{d}].{name} is nonzero; pass bias=True to keep it")
    # Parsing our own output back checks every shape, dtype and count, and
    # gives private copies to hand to torch.
    checked = weights_from_torch(arrays)
    state_dict = {}
    for k, directions in enumerate(checked):
        for d, cell in enumerate(directions):
            suffix = f"_l{k}{_SUFFIXES[d]}"
            state_dict[f"weight_ih{suffix}"] = torch.from_numpy(cell.w_ih)
            state_dict[f"weight_hh{suffix}"] = torch.from_numpy(cell.w_hh)
            if bias:
                if isinstance(cell, GRUCellWeights):
                    b_ih, b_hh = cell.b_ih, cell.b_hh
                else:
                    b_ih, b_hh = cell.b, np.zeros_like(cell.b)
                state_dict[f"bias_ih{suffix}"] = torch.from_numpy(b_ih)
                state_dict[f"bias_hh{suffix}"] = torch.from_numpy(b_hh)
    return state_dict


def from_torch(module):
    """The fastrnn layer equivalent to a torch ``nn.LSTM`` / ``nn.RNN`` (tanh) / ``nn.GRU``.

    Parameters
    ----------
    module : torch.nn.LSTM, torch.nn.RNN or torch.nn.GRU
        float32 or float64 parameters, on any device; any ``num_layers``,
        ``bidirectional`` and ``batch_first``.

    Returns
    -------
    fastrnn.nn.LSTM, fastrnn.nn.RNN or fastrnn.nn.GRU
        Same ``input_size``, ``hidden_size``, ``num_layers``,
        ``bidirectional``, ``batch_first`` and ``dropout``, in the module's
        mode (``training``); dtype float32 or float64 following the module;
        parameters copied under the same names (both biases kept; zeros when
        the module has ``bias=False``).  In training mode with dropout the
        layer draws its own masks, so it agrees with the module only in
        distribution; otherwise it computes what the module computes.

    Raises
    ------
    TypeError
        A module other than nn.LSTM/nn.RNN/nn.GRU, or parameters that are not
        float32/float64.
    ValueError
        An unsupported option: ``proj_size``, ``nonlinearity='relu'``.
    """
    from . import nn

    check_module(module, batch_first=module.batch_first, dropout=True)  # the layer takes both as they are
    params = {name: _as_numpy(name, value, value.dim(), "a parameter") for name, value in module.named_parameters()}
    dtype = params["weight_hh_l0"].dtype
    layer_type = {"LSTM": nn.LSTM, "RNN_TANH": nn.RNN, "GRU": nn.GRU}[module.mode]
    with warnings.catch_warnings():  # torch warned already if its dropout has no effect
        warnings.simplefilter("ignore", UserWarning)
        layer = layer_type(module.input_size, module.hidden_size, dtype=dtype, num_layers=module.num_layers,
                           bidirectional=module.bidirectional, batch_first=module.batch_first,
                           dropout=float(module.dropout))
    layer.train(module.training)
    if not module.bias:
        params.update({name: np.zeros_like(layer.params[name]) for name in layer.params if name.startswith("bias")})
    layer.load_params(params)
    return layer


def to_torch(layer):
    """A torch ``nn.LSTM`` / ``nn.RNN`` (tanh) / ``nn.GRU`` holding a copy of a fastrnn layer's parameters.

    Parameters
    ----------
    layer : fastrnn.nn.LSTM, fastrnn.nn.RNN or fastrnn.nn.GRU

    Returns
    -------
    torch.nn.LSTM, torch.nn.RNN or torch.nn.GRU
        Same configuration (``dropout`` and the training mode included),
        ``bias=True``, dtype float32 or float64 following the layer, on the
        CPU; parameters copied under the same names.

    Raises
    ------
    ImportError
        torch is not installed.
    TypeError
        ``layer`` is not a fastrnn.nn.LSTM/RNN/GRU.
    """
    torch = _import_torch()
    from . import nn

    module_types = {nn.LSTM: torch.nn.LSTM, nn.RNN: torch.nn.RNN, nn.GRU: torch.nn.GRU}
    if type(layer) not in module_types:
        raise TypeError(
            f"layer must be a fastrnn.nn.LSTM, fastrnn.nn.RNN or fastrnn.nn.GRU; got {type(layer).__name__}")
    with warnings.catch_warnings():  # the layer warned already if its dropout has no effect
        warnings.simplefilter("ignore", UserWarning)
        module = module_types[type(layer)](
            layer.input_size, layer.hidden_size, num_layers=layer.num_layers, bidirectional=layer.bidirectional,
            batch_first=layer.batch_first, dropout=layer.dropout,
            dtype={np.float32: torch.float32, np.float64: torch.float64}[layer.dtype.type],
        )
    module.train(layer.training)
    # Tensors of private copies: the module must not share memory with the layer.
    module.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in layer.params.items()})
    return module

"""Move weights between PyTorch's ``nn.LSTM`` / ``nn.RNN`` and fastrnn.

fastrnn's layout is PyTorch's (see :mod:`fastrnn.cells`): gate order i, f, g, o,
``w_ih`` ``(G*H, D)``, ``w_hh`` ``(G*H, H)``, time-major input.  The one
difference is the bias: PyTorch keeps two, fastrnn one, ``b = bias_ih + bias_hh``
-- they are only ever added, so the sum loses nothing a forward or backward
needs (both torch biases receive the same gradient, ``db``).

The functional helpers here work on parameter names as PyTorch spells them,
``{weight_ih, weight_hh, bias_ih, bias_hh}_l{k}[_reverse]``, and return one
:class:`CellWeights` per layer and direction: ``weights[layer][direction]``,
direction 0 forward and 1 reverse (the reverse cell reads the sequence
back to front).

:func:`from_torch` and :func:`to_torch` convert whole layers
(``fastrnn.nn.LSTM``/``RNN``), which keep PyTorch's parameter names and both
biases, so a module -> layer -> module round trip is exact.

torch is imported only inside the functions that need it, so ``import
fastrnn.interop`` -- and reading a state dict saved as NumPy arrays -- works
without torch installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import _validate as v

__all__ = ["CellWeights", "from_torch", "to_torch", "weights_from_torch", "weights_to_state_dict"]

# Gates per supported cell (G), by the ``mode`` string torch's RNNBase stores.
GATES = {"LSTM": 4, "RNN_TANH": 1}
_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_SUFFIXES = ("", "_reverse")  # direction 0, 1


class CellWeights(NamedTuple):
    """The arguments one layer and direction passes to ``fr.lstm_forward``/``fr.rnn_forward``."""

    w_ih: np.ndarray  # (G*H, D); D is the layer's input size
    w_hh: np.ndarray  # (G*H, H)
    b: np.ndarray  # (G*H,) = bias_ih + bias_hh


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


def check_module(module, *, batch_first: bool = False) -> int:
    """Check that fastrnn can reproduce ``module`` exactly; return its gate count G.

    Raises TypeError for a module that is not ``nn.LSTM``/``nn.RNN`` or whose
    parameters are not all float32 or all float64, and ValueError naming the
    option for a configuration fastrnn does not support.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.RNNBase):
        raise TypeError(f"module must be a torch.nn.LSTM or torch.nn.RNN; got {type(module).__name__}")
    if module.mode == "GRU":
        raise ValueError("GRU is not supported: fastrnn has LSTM and tanh-RNN cells only")
    if module.mode == "RNN_RELU":
        raise ValueError("nonlinearity='relu' is not supported: fastrnn's RNN cell is tanh only")
    if module.mode not in GATES:
        raise ValueError(f"torch RNN mode {module.mode!r} is not supported; fastrnn has LSTM and RNN_TANH")
    if getattr(module, "proj_size", 0) > 0:
        raise ValueError(f"proj_size={module.proj_size} is not supported: fastrnn's LSTM has no projection")
    # torch applies dropout only between stacked layers and only in training mode.
    if module.training and module.dropout > 0 and module.num_layers > 1:
        raise ValueError(
            f"dropout={module.dropout} in training mode is not supported: fastrnn applies no dropout "
            "between layers; call module.eval() first, or build the module with dropout=0"
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
                "(an nn.LSTM/nn.RNN state dict)"
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


def _cell_weights(state_dict: Mapping, suffix: str, bias: bool, G: int | None, D: int | None) -> CellWeights:
    """One layer and direction, shape-checked; G and D (None = free) come from the layer below."""
    w_hh = _as_numpy(f"weight_hh{suffix}", state_dict[f"weight_hh{suffix}"], 2, "(G*H, H)")
    H = w_hh.shape[1]
    if H < 1 or w_hh.shape[0] % H:
        raise ValueError(f"weight_hh{suffix} has shape {w_hh.shape}; expected (G*H, H) with G = 4 (LSTM) or 1 (RNN)")
    gates = w_hh.shape[0] // H
    if gates == 3:
        raise ValueError(f"weight_hh{suffix} has shape {w_hh.shape}, 3 gates: a GRU, which fastrnn does not support")
    if gates not in GATES.values() or (G is not None and gates != G):
        raise ValueError(
            f"weight_hh{suffix} has shape {w_hh.shape}: {gates} gates; expected "
            + (f"{G} like the other layers" if G is not None else "4 (LSTM) or 1 (RNN)")
        )
    w_ih = _as_numpy(f"weight_ih{suffix}", state_dict[f"weight_ih{suffix}"], 2, "(G*H, D)")
    dtype = w_hh.dtype
    v.check_same_dtype(f"weight_ih{suffix}", w_ih, dtype, f"weight_hh{suffix}")
    v.check_shape(f"weight_ih{suffix}", w_ih, (gates * H, D if D is not None else w_ih.shape[1]),
                  f"(G*H, D) with G={gates}, H={H}" + (f", D={D} (the layer below's output)" if D is not None else ""))
    b = np.zeros(gates * H, dtype)  # (G*H,); bias=False means zero biases
    if bias:
        for kind in ("bias_ih", "bias_hh"):
            part = _as_numpy(f"{kind}{suffix}", state_dict[f"{kind}{suffix}"], 1, "(G*H,)")
            v.check_same_dtype(f"{kind}{suffix}", part, dtype, f"weight_hh{suffix}")
            v.check_shape(f"{kind}{suffix}", part, (gates * H,), f"(G*H,) with G={gates}, H={H}")
            b += part
    return CellWeights(w_ih, w_hh, b)


def weights_from_torch(source, *, batch_first: bool = False) -> tuple[tuple[CellWeights, ...], ...]:
    """fastrnn weights, per layer and direction, from a torch module or state dict.

    Parameters
    ----------
    source : torch.nn.LSTM, torch.nn.RNN, or mapping
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
    tuple of tuple of CellWeights
        ``weights[layer][direction]`` = ``(w_ih, w_hh, b)`` with shapes
        ``(G*H, D_k)``, ``(G*H, H)``, ``(G*H,)``; ``b = bias_ih + bias_hh``
        (zeros when the module has ``bias=False``).  New arrays in the
        source's dtype, never sharing memory with it.

    Raises
    ------
    TypeError
        A module other than nn.LSTM/nn.RNN; a dtype other than float32/float64.
    ValueError
        An unsupported option (``proj_size``, ``nonlinearity='relu'``, GRU,
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
    weights : sequence of sequence of (w_ih, w_hh, b)
        ``weights[layer][direction]``, as :func:`weights_from_torch` returns
        (one or two directions, the same number in every layer).
    bias : bool, default True
        The module's ``bias`` setting.  With ``bias=False`` no bias entries are
        written, and every ``b`` must be zero.

    Returns
    -------
    dict of str to torch.Tensor
        New tensors in the weights' dtype.  ``b`` becomes ``bias_ih`` and
        ``bias_hh`` is zero: the torch module then computes exactly what
        fastrnn computes, though the split of the bias differs from any
        module the weights came from.

    Raises
    ------
    ImportError
        torch is not installed.
    ValueError
        Inconsistent shapes or layer counts; nonzero ``b`` with ``bias=False``.
    """
    torch = _import_torch()
    arrays = {}
    for k, directions in enumerate(weights):
        if len(directions) not in (1, 2):
            raise ValueError(f"weights[{k}] has {len(directions)} directions; expected 1 or 2")
        for d, (w_ih, w_hh, b) in enumerate(directions):
            suffix = f"_l{k}{_SUFFIXES[d]}"
            arrays[f"weight_ih{suffix}"] = w_ih
            arrays[f"weight_hh{suffix}"] = w_hh
            b = _as_numpy(f"weights[{k}][{d}].b", b, 1, "(G*H,)")
            if bias:
                arrays[f"bias_ih{suffix}"] = b
                arrays[f"bias_hh{suffix}"] = np.zeros_like(b)
            elif b.any():
                raise ValueError(f"bias=False but weights[{k}][{d}].b is nonzero; pass bias=True to keep it")
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
                state_dict[f"bias_ih{suffix}"] = torch.from_numpy(cell.b)
                state_dict[f"bias_hh{suffix}"] = torch.zeros_like(state_dict[f"bias_ih{suffix}"])
    return state_dict


def from_torch(module):
    """The fastrnn layer equivalent to a torch ``nn.LSTM`` / ``nn.RNN`` (tanh).

    Parameters
    ----------
    module : torch.nn.LSTM or torch.nn.RNN
        float32 or float64 parameters, on any device.

    Returns
    -------
    fastrnn.nn.LSTM or fastrnn.nn.RNN
        Same ``input_size``, ``hidden_size``, ``num_layers``,
        ``bidirectional`` and ``batch_first``; dtype float32 or float64
        following the module; parameters copied under the same names (both
        biases kept; zeros when the module has ``bias=False``).

    Raises
    ------
    TypeError
        A module other than nn.LSTM/nn.RNN, or parameters that are not
        float32/float64.
    ValueError
        An unsupported option: ``proj_size``, ``nonlinearity='relu'``, GRU,
        ``dropout`` between layers in training mode.
    NotImplementedError
        A configuration the layers do not have yet (raised by the layer).
    """
    from . import nn

    check_module(module, batch_first=module.batch_first)  # the layer takes batch_first as it is
    params = {name: _as_numpy(name, value, value.dim(), "a parameter") for name, value in module.named_parameters()}
    dtype = params["weight_hh_l0"].dtype
    layer_type = nn.LSTM if module.mode == "LSTM" else nn.RNN
    config = dict(num_layers=module.num_layers, bidirectional=module.bidirectional, batch_first=module.batch_first)
    try:
        layer = layer_type(module.input_size, module.hidden_size, dtype=dtype, **config)
    except NotImplementedError as error:
        raise NotImplementedError(
            f"{error}; for this module use weights_from_torch and the functional kernels"
        ) from error
    if not module.bias:
        params.update({name: np.zeros_like(layer.params[name]) for name in layer.params if name.startswith("bias")})
    layer.load_params(params)
    return layer


def to_torch(layer):
    """A torch ``nn.LSTM`` / ``nn.RNN`` (tanh) holding a copy of a fastrnn layer's parameters.

    Parameters
    ----------
    layer : fastrnn.nn.LSTM or fastrnn.nn.RNN

    Returns
    -------
    torch.nn.LSTM or torch.nn.RNN
        Same configuration, ``bias=True``, dtype float32 or float64 following
        the layer, on the CPU; parameters copied under the same names.

    Raises
    ------
    ImportError
        torch is not installed.
    TypeError
        ``layer`` is not a fastrnn.nn.LSTM/RNN.
    """
    torch = _import_torch()
    from . import nn

    if not isinstance(layer, (nn.LSTM, nn.RNN)):
        raise TypeError(f"layer must be a fastrnn.nn.LSTM or fastrnn.nn.RNN; got {type(layer).__name__}")
    module_type = torch.nn.LSTM if isinstance(layer, nn.LSTM) else torch.nn.RNN
    module = module_type(
        layer.input_size, layer.hidden_size, num_layers=layer.num_layers, bidirectional=layer.bidirectional,
        batch_first=layer.batch_first, dtype={np.float32: torch.float32, np.float64: torch.float64}[layer.dtype.type],
    )
    # Tensors of private copies: the module must not share memory with the layer.
    module.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in layer.params.items()})
    return module

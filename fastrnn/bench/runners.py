"""Zero-argument callables that run one benchmark case.

Inputs are allocated once, outside the timed call.  ``fwdbwd`` means the
forward pass followed by the backward pass of ``sum(y * dy)``, with every
implementation computing gradients for the input and all parameters.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..registry import CELLS, Cell
from .grid import Shape

IMPLS = ("fastrnn", "reference", "torch", "jax")


def varied_lengths(T: int, B: int, seed: int = 0) -> np.ndarray:
    """Sequence lengths for the variable-length cases: uniform over [T/2, T], the longest always T."""
    rng = np.random.default_rng(seed + 1)
    lengths = rng.integers(max(1, T // 2), T + 1, size=B)
    lengths[0] = T
    return lengths


def make_inputs(cell: Cell, shape: Shape, dtype, seed: int = 0, varlen: bool = False) -> dict:
    """Random inputs with PyTorch's initialization scale, so gates neither saturate nor vanish.

    With ``varlen``, ``lengths`` holds one length per sequence (else None).
    """
    rng = np.random.default_rng(seed)
    T, B, D, H = shape
    G = cell.gates
    bound = 1 / np.sqrt(H)

    def uniform(*dims):
        return rng.uniform(-bound, bound, dims).astype(dtype)

    return {
        "x": rng.standard_normal((T, B, D)).astype(dtype),
        "w_ih": uniform(G * H, D),
        "w_hh": uniform(G * H, H),
        **{name: uniform(G * H) for name in cell.bias_names},  # "b", or "b_ih" and "b_hh"
        "dy": rng.standard_normal((T, B, H)).astype(dtype),
        "lengths": varied_lengths(T, B, seed) if varlen else None,
    }


def numpy_runner(cell: Cell, impl: str, shape: Shape, dtype, mode: str, forward=None, backward=None,
                 varlen: bool = False) -> Callable[[], None]:
    """fastrnn or its reference twin (or any pair with their signatures, e.g. a deliberately slowed kernel)."""
    if forward is None:
        forward, backward = cell.impl("fast" if impl == "fastrnn" else "reference")
    p = make_inputs(cell, shape, dtype, varlen=varlen)
    x, dy = p["x"], p["dy"]
    params = (p["w_ih"], p["w_hh"], *(p[name] for name in cell.bias_names))
    extra = {"lengths": p["lengths"]} if varlen else {}
    if mode == "fwd":
        return lambda: forward(x, *params, **extra)
    if mode == "y":  # for tests: the outputs, to check that every implementation computes the same thing
        return lambda: forward(x, *params, **extra).y

    def run():
        out = forward(x, *params, **extra)
        backward(dy, out.cache)

    return run


def make_runner(impl: str, cell_name: str, shape: Shape, dtype, mode: str, threads: int,
                varlen: bool = False) -> Callable[[], None]:
    """The callable for one case.  Raises ImportError when a peer library is missing.

    ``varlen`` runs a variable-length batch (lengths from :func:`varied_lengths`):
    fastrnn with ``lengths=``, torch through ``pack_padded_sequence``, JAX with a
    masked scan.
    """
    cell = CELLS[cell_name]
    if impl in ("fastrnn", "reference"):
        return numpy_runner(cell, impl, shape, dtype, mode, varlen=varlen)
    from . import peers

    inputs = make_inputs(cell, shape, dtype, varlen=varlen)
    return peers.make_peer_runner(impl, cell, shape, dtype, mode, threads, inputs)

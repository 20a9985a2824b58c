"""``Linear``: ``y = x @ weight.T + bias`` over the last axis, PyTorch's names and shapes.

``x`` is ``(..., D_in)`` -- e.g. ``(T, B, H)`` straight from a recurrent layer --
and ``y`` is ``(..., D_out)``.  Pending-cache rules: :mod:`fastrnn.nn.module`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._blas import call_kernel
from ..kernels.linear import linear_backward, linear_forward
from .module import Module, check_input, check_size, make_rng


class LinearCache(NamedTuple):
    x: np.ndarray  # (N, D_in), private copy of the input rows
    weight: np.ndarray  # (D_out, D_in), private copy of the weight the forward used
    shape: tuple  # x.shape[:-1]: dy must be this + (D_out,)
    owner: object  # token of the layer whose forward made it (Module._check_owner)


class Linear(Module):
    """Affine layer with parameters ``weight`` (D_out, D_in) and ``bias`` (D_out,).

    Parameters
    ----------
    in_features, out_features : int
    dtype : float32 or float64, default float32
    seed : int, optional
        Seeds the U(-1/sqrt(in_features), 1/sqrt(in_features)) initialization
        (PyTorch's default bound for both weight and bias).
    """

    def __init__(self, in_features, out_features, dtype=np.float32, seed=None) -> None:
        super().__init__(dtype)
        self.in_features = check_size("in_features", in_features)
        self.out_features = check_size("out_features", out_features)
        rng = make_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self._add_param("weight", rng.uniform(-bound, bound, (self.out_features, self.in_features)))
        self._add_param("bias", rng.uniform(-bound, bound, self.out_features))

    def forward(self, x, *, return_cache=False):
        """``y = x @ weight.T + bias``.

        Parameters
        ----------
        x : array (..., D_in), the layer's dtype
        return_cache : bool, default False
            Return the cache as a second item instead of keeping it pending.

        Returns
        -------
        y : array (..., D_out)
        cache : only with ``return_cache=True``
        """
        if x is not None and np.ndim(x) == 0:
            raise ValueError(f"x must have at least one dimension, (..., D_in) with D_in={self.in_features}; "
                             "got a scalar")
        x = check_input("x", x, self.dtype, max(np.ndim(x), 1), "(..., D_in)", self.in_features, "D_in")
        rows = np.array(x.reshape(-1, self.in_features), dtype=self.dtype, order="C")  # (N, D_in), private
        weight = np.array(self.params["weight"], dtype=self.dtype, order="C")  # (D_out, D_in), private
        y = np.empty((rows.shape[0], self.out_features), self.dtype)  # (N, D_out)
        macs = rows.shape[0] * self.in_features * self.out_features
        call_kernel(macs, macs, linear_forward, rows, weight, np.ascontiguousarray(self.params["bias"], self.dtype), y)
        y = y.reshape(x.shape[:-1] + (self.out_features,))
        cache = LinearCache(rows, weight, x.shape[:-1], self._token)
        kept = self._keep(cache, return_cache)  # () or (cache,)
        return (y, *kept) if kept else y

    def backward(self, dy, *, cache=None):
        """Add ``dweight``, ``dbias`` to ``self.grads``; return ``dx`` (..., D_in).

        Parameters
        ----------
        dy : array (..., D_out), the shape of ``y``
        cache : optional
            From ``forward(..., return_cache=True)``; default: the pending one (consumed).

        Raises
        ------
        RuntimeError
            No pending forward.
        TypeError, ValueError
            ``dy`` of the wrong dtype or shape, or a cache not from this layer's forward.
        """
        cache = self._pending_or(cache)
        if not isinstance(cache, LinearCache):
            raise TypeError(f"cache must be the LinearCache from Linear.forward(..., return_cache=True); "
                            f"got {type(cache).__name__}")
        self._check_owner(cache)
        dy = check_input("dy", dy, self.dtype, max(np.ndim(dy), 1), "(..., D_out)", self.out_features, "D_out")
        expected = cache.shape + (self.out_features,)
        if dy.shape != expected:
            raise ValueError(f"dy has shape {dy.shape}; expected the shape of y = {expected}")
        N = cache.x.shape[0]
        self._consume(cache)
        rows = np.ascontiguousarray(dy.reshape(N, self.out_features))  # (N, D_out)
        dx = np.empty((N, self.in_features), self.dtype)  # (N, D_in)
        macs = N * self.in_features * self.out_features  # each of the two products
        call_kernel(2 * macs, macs, linear_backward, rows, cache.x, cache.weight, self.grads["weight"],
                    self.grads["bias"], dx)
        return dx.reshape(dy.shape[:-1] + (self.in_features,))

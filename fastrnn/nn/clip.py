"""Gradient clipping, by global norm and by value.

Both modify the layers' gradient accumulators (``layer.grads``) **in place**:
those arrays belong to the layers and exist to be read by the optimizer's next
step.  Nothing else is touched -- in particular not the arrays ``backward``
returned (``dx``, ``dh0``, ...), which never share memory with ``grads``.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.optim import sum_of_squares
from .module import as_modules, check_positive


def global_grad_norm(modules) -> float:
    """The 2-norm of all of the layers' gradients taken together (computed in float64)."""
    total = 0.0
    for module in as_modules(modules):
        for grad in module.grads.values():
            total += sum_of_squares(np.ravel(grad))  # not np.dot: see sum_of_squares
    return math.sqrt(total)


def clip_grad_norm(modules, max_norm: float, *, error_if_nonfinite: bool = True) -> float:
    """Scale all gradients by ``min(1, max_norm / total_norm)`` in place.

    Parameters
    ----------
    modules : layer, or list/dict of layers
    max_norm : float
        Positive.
    error_if_nonfinite : bool, default True
        Raise instead of scaling when the norm is NaN or Inf (scaling would
        silently turn every gradient into NaN -- the classic divergence).

    Returns
    -------
    float
        The global norm before clipping.

    Raises
    ------
    TypeError
        ``max_norm`` is not a number.
    ValueError
        ``max_norm`` is not positive (``inf`` is allowed: no clipping); non-finite
        gradients with ``error_if_nonfinite``.
    """
    check_positive("max_norm", max_norm, allow_inf=True)
    modules = as_modules(modules)
    norm = global_grad_norm(modules)
    if not math.isfinite(norm):
        if error_if_nonfinite:
            raise ValueError(f"the global gradient norm is {norm}; the gradients hold NaN or Inf (training diverged?)")
        return norm
    if norm > max_norm:
        scale = max_norm / norm
        for module in modules:
            for grad in module.grads.values():
                grad *= grad.dtype.type(scale)
    return norm


def clip_grad_value(modules, clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]`` in place.

    Raises
    ------
    ValueError
        ``clip_value`` is not positive.
    """
    check_positive("clip_value", clip_value, allow_inf=True)
    for module in as_modules(modules):
        for grad in module.grads.values():
            np.clip(grad, -clip_value, clip_value, out=grad)

"""Losses returning ``(loss, dprediction)``: softmax cross-entropy and mean squared error.

Both are means over all positions, so the gradient is already divided by their
count and can go straight into a layer's ``backward``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validate as v
from ..kernels.losses import softmax_cross_entropy


class Loss(NamedTuple):
    loss: float  # mean over positions
    grad: np.ndarray  # gradient of `loss` w.r.t. the prediction, same shape and dtype


def cross_entropy(logits, targets) -> Loss:
    """Mean softmax cross-entropy (nats) of integer class ``targets`` under ``logits``.

    Parameters
    ----------
    logits : array (..., C), float32 or float64
        Unnormalized log-probabilities, e.g. (T, B, C) or (N, C).
    targets : integer array (...)
        Class indices in ``[0, C)``, the shape of ``logits`` without its last axis.

    Returns
    -------
    Loss
        ``(loss, dlogits)``: ``loss = -mean(log softmax(logits)[targets])`` as a
        float; ``dlogits = (softmax(logits) - onehot(targets)) / N``, a new
        array of the logits' dtype.

    Raises
    ------
    TypeError
        Non-float logits or non-integer targets.
    ValueError
        Logits with fewer than 2 dimensions, mismatched shapes, no positions or
        classes, or a target outside ``[0, C)``.

    Notes
    -----
    Log-sum-exp is taken after subtracting each row's maximum, so no ``exp``
    overflows and huge logits give finite losses.  A NaN or +Inf logit makes
    its row's gradient and the loss NaN (no warning); a -Inf logit is a class
    of probability 0, and the loss is Inf only if it is the target.
    """
    logits = np.asarray(logits)
    logits = v.as_float_array("logits", logits, max(logits.ndim, 1), "(..., C)")
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array of class indices; got dtype {targets.dtype}")
    if logits.ndim < 2:
        raise ValueError(f"logits must be at least 2-D, (..., C) with one row of C scores per target; "
                         f"got shape {logits.shape}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets has shape {targets.shape}; expected logits.shape[:-1] = {logits.shape[:-1]} "
                         f"(logits must be (..., C); got {logits.shape})")
    C = logits.shape[-1]
    if logits.size == 0:  # checked before the reshape below, which cannot infer N when C == 0
        raise ValueError(f"cross_entropy needs at least one position and one class; got logits of shape {logits.shape}")
    rows = logits.reshape(-1, C)  # (N, C)
    labels = targets.reshape(-1)  # (N,)
    N = rows.shape[0]
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"targets must lie in [0, {C}); got values in [{labels.min()}, {labels.max()}]")
    rows = np.ascontiguousarray(rows)
    losses = np.empty(N, rows.dtype)  # (N,)
    dlogits = np.empty((N, C), rows.dtype)  # (N, C)
    softmax_cross_entropy(rows, np.ascontiguousarray(labels, np.int64), losses, dlogits)
    return Loss(float(np.mean(losses)), dlogits.reshape(logits.shape))


def mse(prediction, target) -> Loss:
    """Mean squared error ``mean((prediction - target)**2)``.

    Parameters
    ----------
    prediction, target : arrays of one shape, float32 or float64

    Returns
    -------
    Loss
        ``(loss, dprediction)`` with ``dprediction = 2 (prediction - target) / N``
        (N elements), a new array of the prediction's dtype.

    Raises
    ------
    TypeError, ValueError
        Non-float input, mismatched shapes, or no elements.
    """
    prediction = np.asarray(prediction)
    prediction = v.as_float_array("prediction", prediction, prediction.ndim, "any")
    target = np.asarray(target)
    target = v.as_float_array("target", target, target.ndim, "the shape of prediction")
    v.check_shape("target", target, prediction.shape, "the shape of prediction")
    if prediction.size == 0:
        raise ValueError("mse needs at least one element; got an empty prediction")
    diff = prediction - target.astype(prediction.dtype, copy=False)
    return Loss(float(np.mean(diff * diff)), (2.0 / diff.size) * diff)

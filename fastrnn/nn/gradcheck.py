"""Whole-model gradient check: every parameter of every layer against central differences."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .._gradcheck import GradcheckReport, gradcheck
from .module import Module


def gradcheck_layers(layers: Mapping[str, Module], run: Callable[[bool], float], **options) -> GradcheckReport:
    """Check the hand-written backward of a whole model with :func:`fastrnn.gradcheck`.

    Parameters
    ----------
    layers : mapping of str to layer
        The model's layers, all float64 (finite differences need it).
    run : callable
        ``run(backward) -> loss``: the forward pass and loss of the model at its
        current parameters; when ``backward`` is true it must also run the
        backward passes (which add to ``layer.grads``).  It must be
        deterministic.
    **options
        Passed to :func:`fastrnn.gradcheck` (``eps``, ``max_checks``, ``seed``).

    Returns
    -------
    GradcheckReport
        Keyed ``"{layer}.{param}"``.

    Raises
    ------
    TypeError
        A layer is not float64.

    Notes
    -----
    The parameters are perturbed in place during the check and restored
    exactly afterwards (also on error); the layers' gradients are left holding
    the analytic gradient at the unperturbed parameters.
    """
    for layer_name, layer in layers.items():
        if layer.dtype != np.float64:
            raise TypeError(f"gradcheck_layers needs float64 layers; {layer_name} is {layer.dtype}")
    params = {f"{ln}.{pn}": p for ln, layer in layers.items() for pn, p in layer.params.items()}
    saved = {key: value.copy() for key, value in params.items()}
    for layer in layers.values():
        layer.zero_grad()
    run(True)
    analytic = {f"{ln}.{pn}": g.copy() for ln, layer in layers.items() for pn, g in layer.grads.items()}

    def loss(**trial):
        for key, value in trial.items():
            np.copyto(params[key], value)
        return run(False)

    try:
        return gradcheck(loss, saved, analytic, **options)
    finally:
        for key, value in saved.items():
            np.copyto(params[key], value)

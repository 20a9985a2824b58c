"""Training layer: ``LSTM``, ``RNN`` and ``Linear`` layers with explicit
forward/backward pairs, losses, optimizers, clipping, truncated BPTT and
checkpoints.  No autograd: each layer's ``backward`` is written by hand and
adds to ``layer.grads``.

The rules for the cache a layer keeps between ``forward`` and ``backward`` are
in :mod:`fastrnn.nn.module`.
"""

from .clip import clip_grad_norm, clip_grad_value, global_grad_norm
from .gradcheck import gradcheck_layers
from .linear import Linear
from .losses import Loss, cross_entropy, mse
from .module import Module
from .optim import OPTIMIZERS, SGD, Adagrad, Adam, Optimizer
from .recurrent import LSTM, RNN

__all__ = [
    "LSTM",
    "RNN",
    "Linear",
    "Module",
    "Loss",
    "cross_entropy",
    "mse",
    "SGD",
    "Adagrad",
    "Adam",
    "Optimizer",
    "OPTIMIZERS",
    "clip_grad_norm",
    "clip_grad_value",
    "global_grad_norm",
    "gradcheck_layers",
]

"""Training layer: ``LSTM``, ``RNN``, ``GRU`` and ``Linear`` layers with explicit
forward/backward pairs, losses, optimizers, clipping, truncated BPTT and
checkpoints.  No autograd: each layer's ``backward`` is written by hand and
adds to ``layer.grads``.

The rules for the cache a layer keeps between ``forward`` and ``backward`` are
in :mod:`fastrnn.nn.module`.
"""

from .charlm import CharLM, text_batch, unigram_entropy, vocab_of
from .checkpoint import Checkpoint, load_checkpoint, restore, save_checkpoint
from .clip import clip_grad_norm, clip_grad_value, global_grad_norm
from .gradcheck import gradcheck_layers
from .linear import Linear
from .losses import Loss, cross_entropy, mse
from .model import SequenceModel
from .module import Module
from .optim import OPTIMIZERS, SGD, Adagrad, Adam, Optimizer
from .recurrent import GRU, LSTM, RNN, LayerCache
from .tbptt import TBPTTResult, truncated_bptt

__all__ = [
    "LSTM",
    "RNN",
    "GRU",
    "LayerCache",
    "Linear",
    "SequenceModel",
    "CharLM",
    "text_batch",
    "vocab_of",
    "unigram_entropy",
    "truncated_bptt",
    "TBPTTResult",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "restore",
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

"""fastrnn: fast, exactly-correct LSTM, vanilla-RNN and GRU kernels for the CPU.

Conventions (shape letters T, B, D, H, G; gate orders i, f, g, o and r, z, n; weight
shapes) are documented once, in :mod:`fastrnn.cells`.  Importing fastrnn
compiles nothing; each kernel compiles on first use (or loads from Numba's
on-disk cache).
"""

from . import reference
from ._gradcheck import GradcheckReport, gradcheck
from ._memory import pooled_bytes, release_memory
from ._types import (GRUCache, GRUForward, GRUGrads, LSTMCache, LSTMForward, LSTMGrads, LSTMState, RNNCache,
                     RNNForward, RNNGrads)
from .cells import gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward, rnn_forward

__version__ = "0.1.0"

__all__ = [
    "lstm_forward",
    "lstm_backward",
    "rnn_forward",
    "rnn_backward",
    "gru_forward",
    "gru_backward",
    "gradcheck",
    "release_memory",
    "pooled_bytes",
    "GradcheckReport",
    "reference",
    "LSTMCache",
    "LSTMForward",
    "LSTMGrads",
    "LSTMState",
    "RNNCache",
    "RNNForward",
    "RNNGrads",
    "GRUCache",
    "GRUForward",
    "GRUGrads",
]

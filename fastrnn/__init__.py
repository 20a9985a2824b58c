"""fastrnn: fast, exactly-correct LSTM and vanilla-RNN kernels for the CPU.

Conventions (shape letters T, B, D, H, G; gate order i, f, g, o; weight
shapes) are documented once, in :mod:`fastrnn.cells`.  Importing fastrnn
compiles nothing; each kernel compiles on first use (or loads from Numba's
on-disk cache).
"""

from . import reference
from ._gradcheck import GradcheckReport, gradcheck
from ._types import LSTMCache, LSTMForward, LSTMGrads, LSTMState, RNNCache, RNNForward, RNNGrads
from .cells import lstm_backward, lstm_forward, rnn_backward, rnn_forward

__version__ = "0.1.0"

__all__ = [
    "lstm_forward",
    "lstm_backward",
    "rnn_forward",
    "rnn_backward",
    "gradcheck",
    "GradcheckReport",
    "reference",
    "LSTMCache",
    "LSTMForward",
    "LSTMGrads",
    "LSTMState",
    "RNNCache",
    "RNNForward",
    "RNNGrads",
]

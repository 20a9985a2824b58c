"""asv: peak memory of one call on a long sequence (T = 4096), fastrnn and the reference.

asv reports the peak resident memory of the benchmark process, so the figure
includes the interpreter, NumPy and Numba (a constant offset); what a change
moves is the part on top, mostly the cache forward keeps for backward
(``6*B*H`` numbers per step for the LSTM, ``B*H`` for the RNN).
"""

from __future__ import annotations

from fastrnn.bench import grid, runners
from fastrnn.registry import CELLS

LONG = grid.Shape(T=4096, B=2, D=128, H=128)
DTYPE = "float64"


class LongSequence:
    params = [sorted(CELLS), list(grid.MODES), ["fastrnn", "reference"]]
    param_names = ["cell", "mode", "impl"]
    rounds = 1
    timeout = 180

    def setup(self, cell, mode, impl):
        self.run = runners.make_runner(impl, cell, LONG, DTYPE, mode, 1)
        self.run()  # compile (or load the cache) outside the measured call

    def peakmem_call(self, cell, mode, impl):
        self.run()

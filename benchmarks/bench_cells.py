"""asv: time every cell of the registry, forward and forward+backward, fastrnn and its NumPy reference.

The axes are ``fastrnn.bench.grid.ASV`` (hidden 32..1024, sequence 16..1024,
batch 1 and 32) times float32/float64, and the callables come from
``fastrnn.bench.runners`` -- the same ones ``fastrnn bench`` times.  Cases
whose cost adds nothing but minutes are skipped (``NotImplementedError`` in
``setup`` is asv's way to skip a parameter combination):

* fastrnn: above ``MAX_FLOPS["fastrnn"]`` matrix-product FLOPs per call -- the
  big-H, long-T, B=32 corner, whose time is a multiple of smaller cases that
  are kept;
* reference: above ``MAX_FLOPS["reference"]``, or T > 128 (its time is linear
  in T, so longer sequences only repeat what T=128 shows).

With these budgets a full ``asv run --python=same`` took 3.4 minutes on a busy
2-core machine (the limit is 15), leaving room for slower kernels and env builds.
"""

from __future__ import annotations

import os

from fastrnn.bench import grid, runners
from fastrnn.registry import CELLS

DTYPES = ["float32", "float64"]
MAX_FLOPS = {"fastrnn": 4e9, "reference": 5e8}
MAX_REFERENCE_STEPS = 128
# Only the peers read this; Numba and BLAS take it from the environment asv sets.
THREADS = int(os.environ.get("NUMBA_NUM_THREADS", "1"))


def skipped(impl: str, cell: str, mode: str, shape: grid.Shape) -> bool:
    """True for the combinations left out (see the module docstring)."""
    flops = CELLS[cell].flops(*shape, backward=(mode == "fwdbwd"))
    if flops > MAX_FLOPS[impl]:
        return True
    return impl == "reference" and shape.T > MAX_REFERENCE_STEPS


def _compile_every_kernel() -> None:
    """Compile (or load from the disk cache) every kernel and dtype, once, at import.

    asv imports the suites in a server process and forks one child per
    benchmark; without this, every child paid the first-call cost again
    (~0.3 s per kernel even from the disk cache), which was most of a full run.
    """
    for cell in CELLS:
        for dtype in DTYPES:
            runners.make_runner("fastrnn", cell, grid.Shape(T=2, B=1, D=3, H=4), dtype, "fwdbwd", THREADS)()


_compile_every_kernel()


class _CellTimes:
    """One benchmark per (cell, mode, H, T, B, dtype); subclasses name the implementation."""

    impl = ""
    params = [sorted(CELLS), list(grid.MODES), list(grid.ASV["hiddens"]), list(grid.ASV["seq_lens"]),
              list(grid.ASV["batches"]), DTYPES]
    param_names = ["cell", "mode", "H", "T", "B", "dtype"]
    timeout = 120

    def setup(self, cell, mode, H, T, B, dtype):
        shape = grid.Shape(T, B, H, H)
        if skipped(self.impl, cell, mode, shape):
            raise NotImplementedError("skipped to keep a full run short")
        self.run = runners.make_runner(self.impl, cell, shape, dtype, mode, THREADS)
        self.run()  # warm-up with the exact dtypes: compiles (or loads the disk cache) outside the timing

    def time_call(self, cell, mode, H, T, B, dtype):
        self.run()


class Fastrnn(_CellTimes):
    impl = "fastrnn"


class Reference(_CellTimes):
    impl = "reference"


class VariableLengths:
    """fastrnn on variable-length batches (lengths uniform in [T/2, T], one of T), the case torch
    runs through PackedSequence; B=32 float32, the sizes where padding matters."""

    params = [sorted(CELLS), list(grid.MODES), [32, 512], [128, 1024]]
    param_names = ["cell", "mode", "H", "T"]
    timeout = 120

    def setup(self, cell, mode, H, T):
        shape = grid.Shape(T, 32, H, H)
        if skipped("fastrnn", cell, mode, shape):
            raise NotImplementedError("skipped to keep a full run short")
        self.run = runners.make_runner("fastrnn", cell, shape, "float32", mode, THREADS, varlen=True)
        self.run()

    def time_call(self, cell, mode, H, T):
        self.run()

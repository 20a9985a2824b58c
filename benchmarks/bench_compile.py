"""asv: how long the first call of a cell takes to compile, cold and warm.

Each figure comes from a fresh Python process (``PROBE``), which times the
first forward+backward call on a tiny problem minus the second call, with
``NUMBA_CACHE_DIR`` pointing at

* cold: an empty directory -- nothing can be loaded, so Numba compiles every
  kernel (and then writes it to the cache, as a user's first call does);
* warm: a directory filled by an earlier process -- the kernels are loaded
  from the on-disk cache.

A subprocess is the only honest way: in this process the kernels (and the
activation helpers they inline) are already compiled by the time asv calls us.
Results are seconds, smaller is better.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from fastrnn.registry import CELLS

DTYPES = ["float32", "float64"]

PROBE = """
import sys, time
from fastrnn.bench import grid, runners
run = runners.make_runner("fastrnn", sys.argv[1], grid.Shape(T=2, B=1, D=3, H=4), sys.argv[2], "fwdbwd", 1)
start = time.perf_counter(); run(); first = time.perf_counter() - start
start = time.perf_counter(); run(); again = time.perf_counter() - start
print(first - again)
"""


def first_call_seconds(cell: str, dtype: str, cache_dir: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", PROBE, cell, dtype], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


class CompileTime:
    params = [sorted(CELLS), DTYPES]
    param_names = ["cell", "dtype"]
    unit = "seconds"
    rounds = 1  # each sample is a compilation of several seconds; one per run is enough
    timeout = 300

    def setup_cache(self):
        """A kernel cache filled once, for the warm figures (asv runs this in a scratch directory)."""
        warm = os.path.abspath("numba-cache")
        for cell in sorted(CELLS):
            for dtype in DTYPES:
                first_call_seconds(cell, dtype, warm)
        return warm

    def track_cold(self, warm_cache, cell, dtype):
        with tempfile.TemporaryDirectory() as empty:
            return first_call_seconds(cell, dtype, empty)

    def track_warm(self, warm_cache, cell, dtype):
        return first_call_seconds(cell, dtype, warm_cache)

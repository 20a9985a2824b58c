"""Benchmark machinery shared by ``fastrnn bench``, asv and pytest-benchmark.

* :mod:`.grid` -- the shape grids (one copy for every consumer);
* :mod:`.runners` -- one zero-argument callable per (implementation, cell, shape, mode);
* :mod:`.peers` -- PyTorch and JAX adapters, imported only when asked for;
* :mod:`.harness` -- interleaved timing, medians, GEMM peak.
"""

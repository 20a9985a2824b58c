"""Kernels release the GIL and are stateless: concurrent calls give the serial results, bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

from fastrnn.kernels import gru, lstm, rnn

from conftest import DTYPES, flat_outputs, make_problem, run_cell

N_PROBLEMS = 6  # different inputs, so a kernel that leaked state between calls would mix them up
ROUNDS = 3  # each problem is solved this many times concurrently
WORKERS = 4


def dispatchers(module) -> list:
    return [value for value in vars(module).values() if isinstance(value, numba.core.registry.CPUDispatcher)]


def test_every_kernel_releases_the_gil():
    kernels = dispatchers(lstm) + dispatchers(rnn) + dispatchers(gru)
    assert len(kernels) >= 6
    for kernel in kernels:
        assert kernel.targetoptions.get("nogil") is True, kernel.__name__


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_concurrent_calls_match_serial_calls_bitwise(cell, dtype, impl):
    # A few ms per call (float64 LSTM ~1 ms), long enough for the threads to overlap inside the kernels.
    problems = [make_problem(cell, 40, 4, 24, 48, dtype, seed=seed) for seed in range(N_PROBLEMS)]
    serial = [flat_outputs(run_cell(cell, impl, p)) for p in problems]
    jobs = [k for _ in range(ROUNDS) for k in range(N_PROBLEMS)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        concurrent = list(pool.map(lambda k: flat_outputs(run_cell(cell, impl, problems[k])), jobs))
    for k, result in zip(jobs, concurrent):
        for got, want in zip(result, serial[k]):
            np.testing.assert_array_equal(got, want, err_msg=f"problem {k} differs when run concurrently")

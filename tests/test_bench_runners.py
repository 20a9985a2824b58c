"""The benchmark compares like with like: every implementation's runner computes fastrnn's y."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn.bench import peers, runners
from fastrnn.bench.grid import Shape
from fastrnn.registry import CELLS

SHAPE = Shape(T=7, B=3, D=5, H=6)


@pytest.mark.parametrize("varlen", [False, True], ids=["full", "varied"])
@pytest.mark.parametrize("impl", ["reference", "torch", "jax"])
def test_runner_outputs_match_fastrnn(cell, impl, varlen):
    if impl != "reference" and not peers.available(impl):
        pytest.skip(f"{impl} is not installed (pip install 'fastrnn[peers]')")
    expected = runners.make_runner("fastrnn", cell.name, SHAPE, np.float64, "y", 1, varlen=varlen)()
    if varlen:
        lengths = runners.varied_lengths(SHAPE.T, SHAPE.B)
        assert lengths.min() < SHAPE.T, "the variable-length case must really vary"
    actual = runners.make_runner(impl, cell.name, SHAPE, np.float64, "y", 1, varlen=varlen)()
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
def test_every_runner_runs(cell, mode):
    for impl in ("fastrnn", "reference", "torch", "jax"):
        if impl in ("torch", "jax") and not peers.available(impl):
            continue
        runners.make_runner(impl, cell.name, SHAPE, np.float32, mode, 1, varlen=True)()


def test_cli_bench_runs_a_tiny_grid(tmp_path, capsys):
    import json

    from fastrnn.__main__ import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--cell", "rnn", "--batch", "2", "--hidden", "4", "--seq-len", "3", "--mode", "fwd",
                 "--impl", "fastrnn", "reference", "--rounds", "3", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "x reference" in table and "GFLOP/s" in table
    data = json.loads(out.read_text())
    (row,) = data["results"]
    assert row["cell"] == "rnn" and row["speedup"]["reference"] > 0 and data["meta"]["gemm_gflops"]["float32"] > 0
    # The BLAS kernel family is part of every figure, so the table and the JSON name it.
    from fastrnn._blas import openblas_kernels

    kernels = openblas_kernels()
    assert data["meta"]["openblas_kernels"] == kernels and kernels
    assert "OpenBLAS kernels: " + ", ".join(f"{p} {c}" for p, c in kernels.items()) in table

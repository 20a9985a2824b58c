"""pytest-benchmark: fastrnn, its NumPy reference and PyTorch on the quick grid, grouped by case.

In the normal test run (``--benchmark-disable`` is in the default addopts)
each benchmark is one call, and the test checks that call's result against
the reference -- so this file is also a parity test of the benchmarked code
path.  ``--benchmark-enable`` times them; see README.md, "Benchmarks".
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fastrnn.bench import grid, peers, runners
from fastrnn.registry import CELLS

from conftest import assert_close

SHAPES = grid.product(**grid.QUICK)
IMPLS = ["fastrnn", "reference", "torch"]


def oracle_result(cell, shape, dtype, impl):
    """y and every gradient, on the inputs the runners use, from the implementation that checks ``impl``:
    the reference checks fastrnn and torch, and fastrnn checks the reference."""
    p = runners.make_inputs(cell, shape, dtype)
    forward, backward = cell.impl("fast" if impl == "reference" else "reference")
    out = forward(p["x"], p["w_ih"], p["w_hh"], *(p[name] for name in cell.bias_names))
    return out.y, dict(zip(cell.grad_names, backward(p["dy"], out.cache)))


def recording(cell, impl):
    """The implementation's (forward, backward), recording their last results in a dict."""
    forward, backward = cell.impl("fast" if impl == "fastrnn" else "reference")
    last = {}

    def recorded_forward(*args):
        last["out"] = forward(*args)
        return last["out"]

    def recorded_backward(*args):
        last["grads"] = backward(*args)
        return last["grads"]

    return recorded_forward, recorded_backward, last


def torch_result(cell, run):
    """y (fwd) or the gradients (fwdbwd) of the torch module inside a peers runner.

    Read from the runner's closure rather than rebuilding the module, so what
    is checked is exactly what was timed.
    """
    import torch

    captured = inspect.getclosurevars(run).nonlocals
    x = captured["x"]
    if "module" not in captured:  # forward-only runner
        with torch.no_grad():
            return captured["forward"](x).numpy(), None
    module = captured["module"]
    grads = {"dx": x.grad, "dw_ih": module.weight_ih_l0.grad, "dw_hh": module.weight_hh_l0.grad}
    if cell.bias_names == ("b_ih", "b_hh"):
        grads.update(db_ih=module.bias_ih_l0.grad, db_hh=module.bias_hh_l0.grad)
    else:  # peers puts all of b in bias_ih (bias_hh is zero), so its gradient is db
        grads["db"] = module.bias_ih_l0.grad
    return None, {name: g.numpy() for name, g in grads.items()}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", grid.MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.label().replace(" ", ","))
def test_benchmark(benchmark, cell, shape, dtype, mode, impl):
    if impl == "torch" and not peers.available("torch"):
        pytest.skip("torch is not installed (pip install 'fastrnn[peers]')")
    benchmark.group = f"{cell.name} {dtype} {mode} {shape.label()}"
    benchmark.extra_info["gflop"] = cell.flops(*shape, backward=(mode == "fwdbwd")) / 1e9
    if impl == "torch":
        run = runners.make_runner("torch", cell.name, shape, dtype, mode, threads=1)
    else:
        forward, backward, last = recording(cell, impl)
        run = runners.numpy_runner(cell, impl, shape, dtype, mode, forward=forward, backward=backward)
    if not benchmark.disabled:
        run()  # warm-up: compilation / disk-cache load stays out of the timings
    benchmark(run)

    y_ref, grads_ref = oracle_result(cell, shape, np.dtype(dtype), impl)
    if impl == "torch":
        y, grads = torch_result(cell, run)
    else:
        y, grads = last["out"].y, dict(zip(cell.grad_names, last.get("grads", ())))
    if mode == "fwd":
        assert_close(y, y_ref, name="y")
    else:
        assert grads, "fwd+bwd produced no gradients"
        for name, grad in grads.items():
            assert_close(grad, grads_ref[name], name=name)

"""Variable-length layers against PyTorch's PackedSequence path: outputs, states, every gradient."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, assert_close
from fastrnn.interop import from_torch
from test_torch_layers import MODES, draw_problem, layer_run, make_module, torch_run

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed; install the 'peers' extra (torch==2.13.0) to compare with torch"
)
LENGTHS = np.array([5, 2, 4, 1])


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_variable_lengths_match_packed_sequences(mode, dtype, batch_first):
    module = make_module(mode, 3, 4, dtype, seed=2, num_layers=2, bidirectional=True, batch_first=batch_first)
    layer = from_torch(module)
    p = draw_problem(module, 5, len(LENGTHS), dtype, seed=3)
    y, finals, dx, dstates0 = layer_run(layer, p, LENGTHS)
    y_t, finals_t, dx_t, dstates0_t = torch_run(module, p, LENGTHS)
    assert_close(y, y_t, name="y")
    assert_close(dx, dx_t, name="dx")
    for name, a, e in zip(("h_n", "c_n"), finals, finals_t):
        assert_close(a, e, name=name)
    for name, a, e in zip(("dh0", "dc0"), dstates0, dstates0_t):
        assert_close(a, e, name=name)
    for name, param in module.named_parameters():
        assert_close(layer.grads[name], param.grad.numpy(), name=f"grads[{name!r}]")

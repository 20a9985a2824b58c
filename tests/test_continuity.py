"""Running in two chunks with the state carried over equals running once."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, assert_close, biases, make_problem


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("split", [1, 5, 9])
def test_chunked_forward_and_backward_equal_full_bptt(cell, impl, dtype, split):
    forward, backward = cell.impl(impl)
    p = make_problem(cell, 10, 3, 4, 6, dtype, seed=split)
    x, dy = p["x"], p["dy"]
    params = (p["w_ih"], p["w_hh"], *biases(cell, p))

    full = forward(x, *params, *p["states0"])
    full_grads = backward(dy, full.cache, *p["dstates_n"])

    first = forward(x[:split], *params, *p["states0"])
    second = forward(x[split:], *params, *cell.final_state(first))
    assert_close(np.concatenate([first.y, second.y]), full.y, name="y")
    for a, e in zip(cell.final_state(second), cell.final_state(full)):
        assert_close(a, e, name="final state")

    # Backward through the second chunk, then feed its dh0/dc0 to the first as dh_n/dc_n.
    g2 = backward(dy[split:], second.cache, *p["dstates_n"])
    n_params = len(params)
    g1 = backward(dy[:split], first.cache, *g2[1 + n_params:])
    names = cell.grad_names
    assert_close(np.concatenate([g1[0], g2[0]]), full_grads[0], name="dx")
    for k in range(1, 1 + n_params):  # weight and bias gradients add up over the chunks
        assert_close(g1[k] + g2[k], full_grads[k], rtol=None, name=names[k])
    for k in range(1 + n_params, len(names)):
        assert_close(g1[k], full_grads[k], name=names[k])

"""Public API shape: names, unpacking, no mutation or aliasing, lazy compilation, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastrnn as fr
from conftest import forward_args, make_problem


def test_lstm_api_unpacks_as_documented():
    rng = np.random.default_rng(0)
    T, B, D, H = 3, 2, 4, 5
    x = rng.standard_normal((T, B, D))
    w_ih, w_hh, b = rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)), rng.standard_normal(4 * H)
    y, (h_n, c_n), cache = fr.lstm_forward(x, w_ih, w_hh, b, h0=None, c0=None)
    assert y.shape == (T, B, H) and h_n.shape == c_n.shape == (B, H)
    np.testing.assert_array_equal(h_n, y[-1])
    dx, dw_ih, dw_hh, db, dh0, dc0 = fr.lstm_backward(np.ones_like(y), cache, dh_n=None, dc_n=None)
    assert (dx.shape, dw_ih.shape, dw_hh.shape, db.shape, dh0.shape, dc0.shape) == (
        x.shape, w_ih.shape, w_hh.shape, b.shape, (B, H), (B, H))


def test_rnn_api_unpacks_as_documented():
    rng = np.random.default_rng(0)
    T, B, D, H = 3, 2, 4, 5
    x = rng.standard_normal((T, B, D))
    y, h_n, cache = fr.rnn_forward(x, rng.standard_normal((H, D)), rng.standard_normal((H, H)), np.zeros(H), h0=None)
    np.testing.assert_array_equal(h_n, y[-1])
    dx, dw_ih, dw_hh, db, dh0 = fr.rnn_backward(np.ones_like(y), cache, dh_n=None)
    assert dx.shape == x.shape and dh0.shape == (B, H)


def test_reference_has_identical_signatures():
    import inspect

    for name in ("lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward"):
        assert inspect.signature(getattr(fr, name)) == inspect.signature(getattr(fr.reference, name)), name


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_inputs_are_never_modified_or_aliased(cell, impl):
    p = make_problem(cell, 4, 2, 3, 5, np.float64)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else tuple(s.copy() for s in v)) for k, v in p.items()}
    forward, backward = cell.impl(impl)
    out = forward(*forward_args(cell, p))
    grads = backward(p["dy"], out.cache, *p["dstates_n"])
    inputs = [*forward_args(cell, p), p["dy"], *p["dstates_n"]]
    for k, v in p.items():
        for a, e in zip(v if isinstance(v, tuple) else (v,), before[k] if isinstance(v, tuple) else (before[k],)):
            np.testing.assert_array_equal(a, e, err_msg=f"{k} was modified")
    returned = [out.y, *cell.final_state(out), *out.cache, *grads]
    for r in returned:
        for i in inputs:
            assert not np.shares_memory(r, i), "a returned array aliases an input"
    # y and the final states are not views into the cache either: editing them cannot corrupt backward.
    for r in (out.y, *cell.final_state(out)):
        for c in out.cache:
            assert not np.shares_memory(r, c)


def test_import_compiles_nothing():
    code = (
        "import fastrnn, fastrnn.registry\n"
        "from fastrnn.kernels import gru, lstm, rnn\n"
        "ks = [lstm.lstm_forward_kernel, lstm.lstm_backward_kernel, rnn.rnn_forward_kernel, rnn.rnn_backward_kernel,\n"
        "      gru.gru_forward_kernel, gru.gru_backward_kernel]\n"
        "assert all(len(k.signatures) == 0 for k in ks), [k.signatures for k in ks]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""fastrnn's kernels (fast and reference) agree with PyTorch autograd on the same weights.

PyTorch is the external oracle: our reference twin was written by us, torch's
code was not.  Every output, final state and gradient is compared -- inputs,
each named weight and bias, and the initial states -- with upstream gradients
on ``y`` and on every final state, i.e. the loss
``sum(dy*y) + sum(dh_n*h_n) + sum(dc_n*c_n)`` that fastrnn's backward differentiates.

The weights are moved by hand here (``b = bias_ih_l0 + bias_hh_l0``; the GRU
takes both biases), not
through :mod:`fastrnn.interop`, so these tests pin the kernels and the layout
independently of the conversion helpers (tests/test_interop.py covers those).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, assert_close

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed; install the 'peers' extra (torch==2.13.0) to compare with torch autograd"
)

TORCH_MODULES = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN, "gru": torch.nn.GRU}
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
# (T, B, D, H): T = 1, B = 1, D < H, D > H, D == H, a longer sequence.
SHAPES = [(1, 1, 3, 5), (1, 4, 6, 2), (7, 1, 4, 3), (5, 3, 4, 4), (12, 2, 5, 7)]


def make_torch_problem(cell, T, B, D, H, dtype, seed, bias=True):
    """A torch module with random (both-bias-nonzero) weights plus NumPy inputs and upstream gradients."""
    torch.manual_seed(seed)
    module = TORCH_MODULES[cell.name](D, H, bias=bias).to(TORCH_DTYPES[np.dtype(dtype)])
    rng = np.random.default_rng(seed)
    draw = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    return module, {
        "x": draw(T, B, D),
        "states0": tuple(draw(B, H) for _ in cell.state_names),
        "dy": draw(T, B, H),
        "dstates_n": tuple(draw(B, H) for _ in cell.state_names),
    }


def torch_run(cell, module, p):
    """Forward and autograd backward in torch; returns (y, final_states, grads by fastrnn's names)."""
    x = torch.tensor(p["x"], requires_grad=True)
    states0 = [torch.tensor(s[None], requires_grad=True) for s in p["states0"]]  # each (1, B, H)
    y, final = module(x, tuple(states0) if cell.name == "lstm" else states0[0])
    finals = tuple(final) if cell.name == "lstm" else (final,)
    loss = (torch.tensor(p["dy"]) * y).sum()
    for d_final, state in zip(p["dstates_n"], finals):
        loss = loss + (torch.tensor(d_final[None]) * state).sum()
    loss.backward()
    grads = {"dx": x.grad, "dw_ih": module.weight_ih_l0.grad, "dw_hh": module.weight_hh_l0.grad}
    if module.bias:
        grads["db_ih"] = module.bias_ih_l0.grad
        grads["db_hh"] = module.bias_hh_l0.grad
    for name, state in zip(cell.state_names, states0):
        grads["d" + name] = state.grad[0]
    to_numpy = lambda t: t.detach().numpy()  # noqa: E731
    return to_numpy(y), tuple(to_numpy(s[0]) for s in finals), {k: to_numpy(g) for k, g in grads.items()}


def module_biases(cell, module) -> tuple:
    """The cell's bias arguments from a torch module: (bias_ih + bias_hh,), or both for the GRU; zeros if bias=False."""
    if module.bias:
        b_ih, b_hh = module.bias_ih_l0.detach().numpy(), module.bias_hh_l0.detach().numpy()
    else:
        b_ih = b_hh = np.zeros_like(module.weight_hh_l0.detach().numpy()[:, 0])  # (G*H,)
    return (b_ih, b_hh) if len(cell.bias_names) == 2 else (b_ih + b_hh,)


def fastrnn_run(cell, impl, module, p):
    """Forward and backward in fastrnn on the module's weights; grads by name."""
    forward, backward = cell.impl(impl)
    w_ih = module.weight_ih_l0.detach().numpy()
    w_hh = module.weight_hh_l0.detach().numpy()
    out = forward(p["x"], w_ih, w_hh, *module_biases(cell, module), *p["states0"])
    grads = backward(p["dy"], out.cache, *p["dstates_n"])
    return out.y, cell.final_state(out), dict(zip(cell.grad_names, grads))


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("T,B,D,H", SHAPES)
def test_matches_torch_autograd(cell, impl, dtype, T, B, D, H):
    module, p = make_torch_problem(cell, T, B, D, H, dtype, seed=T * 100 + B * 10 + D)
    y_t, finals_t, grads_t = torch_run(cell, module, p)
    y, finals, grads = fastrnn_run(cell, impl, module, p)
    assert_close(y, y_t, name="y")
    for name, actual, expected in zip(("h_n", "c_n"), finals, finals_t):
        assert_close(actual, expected, name=name)
    if "db" in grads:
        # torch's two biases are only ever added, so each gets fastrnn's db.
        grads_t["db"] = grads_t.pop("db_ih")
        assert_close(grads["db"], grads_t.pop("db_hh"), name="db vs bias_hh_l0.grad")
    assert set(grads) == set(grads_t)
    for name in grads:
        assert_close(grads[name], grads_t[name], name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_matches_torch_without_bias(cell, dtype):
    """A bias=False module is fastrnn with b = 0."""
    module, p = make_torch_problem(cell, 4, 2, 3, 5, dtype, seed=7, bias=False)
    y_t, finals_t, grads_t = torch_run(cell, module, p)
    y, finals, grads = fastrnn_run(cell, "fast", module, p)
    assert_close(y, y_t, name="y")
    for name, actual, expected in zip(("h_n", "c_n"), finals, finals_t):
        assert_close(actual, expected, name=name)
    for name in grads_t:
        assert_close(grads[name], grads_t[name], name=name)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_default_states_match_torch(cell, impl):
    """h0=None/c0=None and dh_n=None/dc_n=None mean zeros, as torch's omitted hx does."""
    module, p = make_torch_problem(cell, 6, 3, 4, 5, np.float64, seed=3)
    x = torch.tensor(p["x"], requires_grad=True)
    y_t, _ = module(x)
    (torch.tensor(p["dy"]) * y_t).sum().backward()
    forward, backward = cell.impl(impl)
    biases = module_biases(cell, module)
    out = forward(p["x"], module.weight_ih_l0.detach().numpy(), module.weight_hh_l0.detach().numpy(), *biases)
    dx, dw_ih, dw_hh, *dbiases = backward(p["dy"], out.cache)[:3 + len(biases)]
    assert_close(out.y, y_t.detach().numpy(), name="y")
    assert_close(dx, x.grad.numpy(), name="dx")
    assert_close(dw_ih, module.weight_ih_l0.grad.numpy(), name="dw_ih")
    assert_close(dw_hh, module.weight_hh_l0.grad.numpy(), name="dw_hh")
    for db, torch_bias in zip(dbiases, (module.bias_ih_l0, module.bias_hh_l0)):
        assert_close(db, torch_bias.grad.numpy(), name="db")

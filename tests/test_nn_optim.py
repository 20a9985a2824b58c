"""Optimizers against their formulas computed by hand; clipping; state round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastrnn import nn


def layer_with_grads(seed=0):
    layer = nn.Linear(2, 1, dtype=np.float64, seed=seed)
    layer.params["weight"][...] = [[1.0, -2.0]]
    layer.params["bias"][...] = [0.5]
    layer.grads["weight"][...] = [[0.1, -0.4]]
    layer.grads["bias"][...] = [2.0]
    return layer


def test_sgd_with_momentum_two_steps():
    layer = layer_with_grads()
    opt = nn.SGD(layer, lr=0.1, momentum=0.9)
    opt.step()  # v = g;  w = 1 - 0.1*0.1
    assert layer.params["weight"][0, 0] == pytest.approx(0.99, abs=1e-15)
    opt.step()  # v = 0.9*0.1 + 0.1 = 0.19;  w = 0.99 - 0.019
    assert layer.params["weight"][0, 0] == pytest.approx(0.971, abs=1e-15)
    assert layer.params["bias"][0] == pytest.approx(0.5 - 0.2 - 0.38, abs=1e-15)


def test_adagrad_two_steps():
    layer = layer_with_grads()
    opt = nn.Adagrad(layer, lr=0.5, eps=1e-10)
    opt.step()  # s = 0.16; w = -2 - 0.5 * (-0.4)/(0.4 + eps)
    first = -2 + 0.2 / (0.4 + 1e-10)
    assert layer.params["weight"][0, 1] == pytest.approx(first, abs=1e-14)
    opt.step()  # s = 0.32; w -= 0.5 * (-0.4)/(sqrt(0.32) + eps)
    assert layer.params["weight"][0, 1] == pytest.approx(first + 0.2 / (math.sqrt(0.32) + 1e-10), abs=1e-14)


def test_adam_two_steps():
    layer = layer_with_grads()
    opt = nn.Adam(layer, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    g = 2.0  # bias gradient
    opt.step()  # bias-corrected m/sqrt(v) = g/|g| on the first step
    assert layer.params["bias"][0] == pytest.approx(0.5 - 0.01 * g / (abs(g) + 1e-8), abs=1e-15)
    layer.grads["bias"][...] = [-1.0]
    opt.step()
    m = 0.9 * (0.1 * g) + 0.1 * -1.0
    v = 0.999 * (0.001 * g * g) + 0.001 * 1.0
    expected = 0.5 - 0.01 * g / (abs(g) + 1e-8) - 0.01 * (m / (1 - 0.9**2)) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert layer.params["bias"][0] == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
def test_state_dict_round_trip_continues_identically(name):
    a, b = layer_with_grads(), layer_with_grads()
    opt_a, opt_b = nn.OPTIMIZERS[name](a, lr=0.1), nn.OPTIMIZERS[name](b, lr=0.1)
    opt_a.step()
    opt_b.load_state_dict(opt_a.state_dict())
    b.load_params(a.params)
    opt_a.step()
    opt_b.step()
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    with pytest.raises(KeyError):
        opt_b.load_state_dict({"steps": np.array(1)})


@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
def test_step_reads_but_never_modifies_gradients(name):
    layer = layer_with_grads()
    before = {k: g.copy() for k, g in layer.grads.items()}
    nn.OPTIMIZERS[name](layer, lr=0.1).step()
    for key, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, before[key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
def test_one_pass_kernels_match_the_numpy_form(name, dtype):
    """Contiguous parameters take the one-pass kernels (kernels/optim.py); others (here a
    Fortran-ordered weight) the NumPy form.  Both give the same steps, to rounding."""
    rng = np.random.default_rng(1)
    layers = [nn.Linear(6, 5, dtype=dtype, seed=2) for _ in range(2)]
    layers[1].params["weight"] = np.asfortranarray(layers[1].params["weight"])
    kwargs = {"momentum": 0.9} if name == "sgd" else {}
    opts = [nn.OPTIMIZERS[name](layer, lr=0.05, **kwargs) for layer in layers]
    for _ in range(5):
        grads = {key: rng.standard_normal(g.shape).astype(dtype) for key, g in layers[0].grads.items()}
        for layer, opt in zip(layers, opts):
            for key, grad in grads.items():
                layer.grads[key][...] = grad
            opt.step()
    assert not layers[1].params["weight"].flags.c_contiguous  # the NumPy form really ran
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for key in layers[0].params:
        assert layers[0].params[key].dtype == dtype
        np.testing.assert_allclose(layers[0].params[key], layers[1].params[key], rtol=rtol, atol=0)
        assert not np.array_equal(layers[0].params[key], nn.Linear(6, 5, dtype=dtype, seed=2).params[key])


def test_optimizer_arguments_are_checked():
    with pytest.raises(ValueError, match="lr must be positive"):
        nn.SGD(nn.Linear(1, 1), lr=0)
    with pytest.raises(ValueError, match="momentum"):
        nn.SGD(nn.Linear(1, 1), lr=0.1, momentum=1.5)
    with pytest.raises(TypeError, match="fastrnn.nn layers"):
        nn.Adam([object()])


def test_clip_grad_norm_scales_to_the_limit_and_reports_the_old_norm():
    a, b = layer_with_grads(), layer_with_grads()
    expected = math.sqrt(2 * (0.01 + 0.16 + 4.0))
    norm = nn.clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(expected, rel=1e-14)
    assert nn.global_grad_norm([a, b]) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(a.grads["bias"], [2.0 / expected], rtol=1e-12)
    before = a.grads["bias"].copy()
    nn.clip_grad_norm([a, b], max_norm=10.0)  # under the limit: untouched
    np.testing.assert_array_equal(a.grads["bias"], before)


def test_clip_grad_norm_refuses_to_spread_nan():
    layer = layer_with_grads()
    layer.grads["bias"][0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        nn.clip_grad_norm(layer, 1.0)
    assert layer.grads["weight"][0, 0] == 0.1


def test_clip_grad_value_clips_elementwise_in_the_layer_only():
    layer = nn.LSTM(2, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 1, 2))
    y, _ = layer.forward(x)
    dx, (dh0, dc0) = layer.backward(100 * np.ones_like(y))
    returned = dx.copy()
    nn.clip_grad_value(layer, 0.5)
    assert max(np.abs(g).max() for g in layer.grads.values()) == 0.5
    np.testing.assert_array_equal(dx, returned)  # what backward returned is not clipped
    with pytest.raises(ValueError, match="clip_value must be positive"):
        nn.clip_grad_value(layer, -1)

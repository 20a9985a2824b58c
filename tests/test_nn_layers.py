"""fastrnn.nn layers: gradients vs central differences, PyTorch shapes and names, the pending cache."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn as fr
from conftest import GRADCHECK_RTOL
from fastrnn import nn

LAYERS = {"lstm": nn.LSTM, "rnn": nn.RNN, "gru": nn.GRU}
GATES = {"lstm": 4, "rnn": 1, "gru": 3}
# Stacking and directions; every option a torch module takes.
CONFIGS = [pytest.param({}, id="1layer"), pytest.param(dict(num_layers=2), id="2layers"),
           pytest.param(dict(bidirectional=True), id="bidirectional"),
           pytest.param(dict(num_layers=3, bidirectional=True), id="3layers-bidirectional")]


def make_layer(kind, D=3, H=5, batch_first=False, seed=0, **options):
    return LAYERS[kind](D, H, batch_first=batch_first, dtype=np.float64, seed=seed, **options)


def run_layer(layer, x, states, upstream, backward):
    """L = sum(dy*y) + sum(dstate*state_n); with backward, accumulate grads and return input grads."""
    dy, dstates = upstream
    if isinstance(layer, nn.LSTM):
        y, finals = layer.forward(x, states)
    else:
        y, h_n = layer.forward(x, states[0])
        finals = (h_n,)
    loss = np.sum(dy * y) + sum(np.sum(d * s) for d, s in zip(dstates, finals))
    if not backward:
        return loss, None
    if isinstance(layer, nn.LSTM):
        dx, dstates0 = layer.backward(dy, dstates)
    else:
        dx, dh0 = layer.backward(dy, dstates[0])
        dstates0 = (dh0,)
    return loss, (dx, *dstates0)


def problem(layer, T=4, B=2, seed=1):
    rng = np.random.default_rng(seed)
    D, H, Z = layer.input_size, layer.hidden_size, layer.num_directions
    n_states, LZ = len(layer.state_names), layer.num_layers * Z
    x = rng.standard_normal((B, T, D) if layer.batch_first else (T, B, D))
    states = tuple(rng.standard_normal((LZ, B, H)) for _ in range(n_states))
    dy = rng.standard_normal((B, T, Z * H) if layer.batch_first else (T, B, Z * H))
    dstates = tuple(rng.standard_normal((LZ, B, H)) for _ in range(n_states))
    return x, states, (dy, dstates)


@pytest.mark.parametrize("options", CONFIGS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_parameter_gradients_match_central_differences(kind, batch_first, options):
    layer = make_layer(kind, batch_first=batch_first, **options)
    x, states, upstream = problem(layer)
    report = nn.gradcheck_layers({"rnn": layer}, lambda backward: run_layer(layer, x, states, upstream, backward)[0])
    assert set(report) == {f"rnn.{name}" for name in layer.params}
    assert report.worst <= GRADCHECK_RTOL, report


@pytest.mark.parametrize("options", CONFIGS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_input_and_state_gradients_match_central_differences(kind, batch_first, options):
    layer = make_layer(kind, batch_first=batch_first, **options)
    x, states, upstream = problem(layer)
    _, input_grads = run_layer(layer, x, states, upstream, backward=True)
    args = {"x": x, **{f"s{k}": s for k, s in enumerate(states)}}

    def loss(x, **states):
        return run_layer(layer, x, tuple(states[f"s{k}"] for k in range(len(states))), upstream, False)[0]

    report = fr.gradcheck(loss, args, dict(zip(args, input_grads)))
    assert report.worst <= GRADCHECK_RTOL, report


@pytest.mark.parametrize("options", CONFIGS)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_batch_first_is_the_transpose_of_time_major(kind, options):
    time_major, batch_major = make_layer(kind, **options), make_layer(kind, batch_first=True, **options)
    x, states, (dy, dstates) = problem(time_major)
    y_t, *_ = time_major.forward(x)
    y_b, *_ = batch_major.forward(x.transpose(1, 0, 2).copy())
    np.testing.assert_array_equal(y_b, y_t.transpose(1, 0, 2))
    dx_t, _ = time_major.backward(dy)
    dx_b, _ = batch_major.backward(dy.transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_b, dx_t.transpose(1, 0, 2))
    for name in time_major.grads:
        np.testing.assert_array_equal(batch_major.grads[name], time_major.grads[name])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_matches_the_kernel_with_summed_biases(kind):
    """The LSTM and RNN kernels get bias_ih + bias_hh; the GRU kernel gets both."""
    layer = make_layer(kind)
    x, states, _ = problem(layer)
    p = layer.params
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    if kind == "gru":
        y, h_n = layer.forward(x, states[0])
        ref = fr.gru_forward(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"], states[0][0])
    elif kind == "lstm":
        y, (h_n, c_n) = layer.forward(x, states)
        ref = fr.lstm_forward(x, p["weight_ih_l0"], p["weight_hh_l0"], b, states[0][0], states[1][0])
        np.testing.assert_array_equal(c_n[0], ref.state.c)
    else:
        y, h_n = layer.forward(x, states[0])
        ref = fr.rnn_forward(x, p["weight_ih_l0"], p["weight_hh_l0"], b, states[0][0])
    np.testing.assert_array_equal(y, ref.y)
    np.testing.assert_array_equal(h_n[0], ref.y[-1])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_torch_names_shapes_and_init_bounds(kind):
    G = GATES[kind]
    layer = LAYERS[kind](7, 16, seed=3)
    assert {name: p.shape for name, p in layer.params.items()} == {
        "weight_ih_l0": (G * 16, 7), "weight_hh_l0": (G * 16, 16), "bias_ih_l0": (G * 16,), "bias_hh_l0": (G * 16,)}
    assert all(p.dtype == np.float32 for p in layer.params.values())
    everything = np.concatenate([p.ravel() for p in layer.params.values()])
    assert np.abs(everything).max() <= 0.25 and np.abs(everything).max() > 0.24  # U(-1/sqrt(16), 1/sqrt(16))
    assert all(np.array_equal(g, np.zeros_like(p)) for g, p in zip(layer.grads.values(), layer.params.values()))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_same_seed_same_parameters_other_seed_different(kind):
    a, b, c = (LAYERS[kind](3, 4, seed=s) for s in (5, 5, 6))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_accumulates_into_grads(kind):
    layer = make_layer(kind)
    x, states, upstream = problem(layer)
    run_layer(layer, x, states, upstream, backward=True)
    once = {name: g.copy() for name, g in layer.grads.items()}
    identity = {name: id(g) for name, g in layer.grads.items()}
    run_layer(layer, x, states, upstream, backward=True)
    for name, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-12)
        assert id(g) == identity[name]
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_without_forward_or_twice_raises(kind):
    layer = make_layer(kind)
    x, _, (dy, _) = problem(layer)
    with pytest.raises(RuntimeError, match="preceding forward"):
        layer.backward(dy)
    layer.forward(x)
    layer.backward(dy)
    with pytest.raises(RuntimeError, match="already consumed"):
        layer.backward(dy)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_return_cache_leaves_the_pending_forward_alone(kind):
    layer = make_layer(kind)
    x, _, (dy, _) = problem(layer)
    layer.forward(x)
    pending = layer.cache_nbytes
    *_, cache = layer.forward(2 * x, return_cache=True)  # e.g. sampling in the middle of a step
    assert layer.cache_nbytes == pending
    dx_pending, _ = layer.backward(dy)
    fresh = make_layer(kind)
    fresh.forward(x)
    np.testing.assert_array_equal(dx_pending, fresh.backward(dy)[0])
    dx_1, _ = layer.backward(dy, cache=cache)
    dx_2, _ = layer.backward(dy, cache=cache)  # an explicit cache may be reused
    np.testing.assert_array_equal(dx_1, dx_2)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_optimizer_step_between_forward_and_backward_does_not_change_the_gradient(kind):
    layer, reference = make_layer(kind), make_layer(kind)
    x, _, (dy, _) = problem(layer)
    layer.forward(x)
    reference.forward(x)
    for p in layer.params.values():
        p += 1.0
    np.testing.assert_array_equal(layer.backward(dy)[0], reference.backward(dy)[0])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_inputs_are_not_modified(kind):
    layer = make_layer(kind)
    x, states, upstream = problem(layer)
    before = [a.copy() for a in (x, *states, upstream[0], *upstream[1])]
    run_layer(layer, x, states, upstream, backward=True)
    for old, new in zip(before, (x, *states, upstream[0], *upstream[1])):
        np.testing.assert_array_equal(old, new)


def test_bad_input_names_the_argument():
    layer = nn.LSTM(3, 5)
    with pytest.raises(TypeError, match="x has dtype float64 but the layer's dtype is float32"):
        layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"x has shape \(2, 1, 4\); expected \(T, B, D\) with D=3"):
        layer.forward(np.zeros((2, 1, 4), np.float32))
    with pytest.raises(ValueError, match="h0 has shape"):
        layer.forward(np.zeros((2, 1, 3), np.float32), (np.zeros((1, 2, 5), np.float32), None))
    with pytest.raises(TypeError, match=r"state must be a tuple \(h, c\)"):
        layer.forward(np.zeros((2, 1, 3), np.float32), np.zeros((1, 1, 5), np.float32))
    layer.forward(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        layer.backward(np.zeros((3, 1, 5), np.float32))
    with pytest.raises(TypeError, match="cache must be the LayerCache of 1 LSTMCache from LSTM.forward"):
        layer.backward(np.zeros((2, 1, 5), np.float32), cache=("not", "a cache"))
    layer.backward(np.zeros((2, 1, 5), np.float32))  # a rejected backward leaves the pending cache
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.RNN(3, 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.RNN(3, 2, dtype=np.int32)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_stacked_bidirectional_names_and_shapes_are_torchs(kind):
    G, D, H = GATES[kind], 3, 4
    layer = make_layer(kind, D, H, num_layers=2, bidirectional=True)
    expected = {}
    for k, inputs in ((0, D), (1, 2 * H)):
        for suffix in ("", "_reverse"):
            expected.update({f"weight_ih_l{k}{suffix}": (G * H, inputs), f"weight_hh_l{k}{suffix}": (G * H, H),
                             f"bias_ih_l{k}{suffix}": (G * H,), f"bias_hh_l{k}{suffix}": (G * H,)})
    assert {name: p.shape for name, p in layer.params.items()} == expected
    x, states, upstream = problem(layer, T=5, B=3)
    _, (dx, *dstates0) = run_layer(layer, x, states, upstream, backward=True)
    assert dx.shape == x.shape and all(d.shape == (4, 3, H) for d in dstates0)


def test_stacking_is_composition_and_reverse_is_time_reversal():
    """A 2-layer bidirectional GRU equals its four cells wired by hand with the kernels."""
    layer = make_layer("gru", num_layers=2, bidirectional=True)
    x, (h0,), (dy, (dh_n,)) = problem(layer, T=6, B=2)
    y, h_n = layer.forward(x, h0)
    p = layer.params

    def cell(inputs, k, suffix, index):
        args = [p[f"{name}_l{k}{suffix}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return fr.gru_forward(inputs, *args, h0[index])

    forward_0, reverse_0 = cell(x, 0, "", 0), cell(x[::-1], 0, "_reverse", 1)
    middle = np.concatenate([forward_0.y, reverse_0.y[::-1]], axis=2)
    forward_1, reverse_1 = cell(middle, 1, "", 2), cell(middle[::-1], 1, "_reverse", 3)
    np.testing.assert_array_equal(y, np.concatenate([forward_1.y, reverse_1.y[::-1]], axis=2))
    np.testing.assert_array_equal(h_n, np.stack([forward_0.h_n, reverse_0.h_n, forward_1.h_n, reverse_1.h_n]))


def test_linear_gradients_match_central_differences():
    rng = np.random.default_rng(2)
    layer = nn.Linear(4, 3, dtype=np.float64, seed=0)
    x, dy = rng.standard_normal((5, 2, 4)), rng.standard_normal((5, 2, 3))

    def run(backward):
        y = layer.forward(x)
        if backward:
            run.dx = layer.backward(dy)
        return np.sum(dy * y)

    report = nn.gradcheck_layers({"head": layer}, run)
    assert report.worst <= GRADCHECK_RTOL, report
    report = fr.gradcheck(lambda x: np.sum(dy * layer.forward(x)), {"x": x}, {"x": run.dx})
    assert report.worst <= GRADCHECK_RTOL, report


def test_linear_forward_is_affine_and_rejects_mismatches():
    layer = nn.Linear(4, 3, dtype=np.float64, seed=0)
    x = np.arange(8.0).reshape(2, 4)
    np.testing.assert_allclose(layer.forward(x), x @ layer.params["weight"].T + layer.params["bias"], rtol=1e-15)
    with pytest.raises(ValueError, match="D_in=4"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="dy has shape"):
        layer.backward(np.zeros((3, 3)))

"""Dropout between stacked layers (PyTorch's ``dropout``): masks, gradients, modes, validation, interop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastrnn as fr
from conftest import GRADCHECK_RTOL, assert_close
from fastrnn import nn

from test_nn_layers import LAYERS, make_layer, problem, run_layer

KERNELS = {"lstm": fr.lstm_forward, "rnn": fr.rnn_forward, "gru": fr.gru_forward}


def fixed_masks(layer, seed=7):
    """Reseed the layer's mask generator, so the next forward draws the same masks as the last one did."""
    layer._dropout_rng = np.random.default_rng(seed)


def manual_forward(layer, x, masks, lengths=None):
    """The stack built from the kernels, with ``masks[k]`` multiplied into layer k's output."""
    H, Z = layer.hidden_size, layer.num_directions
    inputs = x
    for k in range(layer.num_layers):
        outputs = []
        for d in range(Z):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = layer.params["weight_ih" + suffix], layer.params["weight_hh" + suffix]
            b_ih, b_hh = layer.params["bias_ih" + suffix], layer.params["bias_hh" + suffix]
            biases = (b_ih, b_hh) if layer.cell_name == "gru" else (b_ih + b_hh,)
            sequence = inputs[::-1] if d else inputs
            y = KERNELS[layer.cell_name](sequence, w_ih, w_hh, *biases).y
            outputs.append(y[::-1] if d else y)
        inputs = np.concatenate(outputs, axis=2)
        if k < layer.num_layers - 1:
            inputs = inputs * masks[k]
    assert inputs.shape[2] == Z * H
    return inputs


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_training_forward_applies_the_masks_between_layers(kind, bidirectional):
    layer = make_layer(kind, D=4, H=6, num_layers=3, bidirectional=bidirectional, dropout=0.4)
    x = np.random.default_rng(1).standard_normal((7, 3, 4))
    y, *_, cache = layer.forward(x, return_cache=True)
    assert len(cache.masks) == 2
    scale = 1 / (1 - 0.4)
    for mask in cache.masks:
        assert mask.shape == (7, 3, layer.num_directions * 6)
        assert set(np.unique(mask)) <= {0.0, scale} and 0 < (mask == 0).sum() < mask.size
    assert_close(y, manual_forward(layer, x, cache.masks), name="y")


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_eval_mode_and_zero_dropout_apply_no_masks(kind):
    plain = make_layer(kind, num_layers=2, bidirectional=True)
    x, states, _ = problem(plain)
    expected = run_layer(plain, x, states, problem(plain)[2], False)[0]
    for layer in (make_layer(kind, num_layers=2, bidirectional=True, dropout=0.5).eval(),
                  make_layer(kind, num_layers=2, bidirectional=True, dropout=0.0)):
        assert run_layer(layer, x, states, problem(layer)[2], False)[0] == expected  # same seed, same params
        *_, cache = layer.forward(x, return_cache=True)
        assert cache.masks == ()
    layer = make_layer(kind, num_layers=2, dropout=0.5)
    assert layer.training and not layer.eval().training and layer.train().training


@pytest.mark.parametrize("options", [dict(num_layers=2), dict(num_layers=3, bidirectional=True)],
                         ids=["2layers", "3layers-bidirectional"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradients_with_dropout_match_central_differences(kind, options):
    """With the masks held fixed (the generator reseeded before every forward), the backward is the
    exact gradient of the dropped-out network: parameters, inputs and initial states."""
    layer = make_layer(kind, dropout=0.3, **options)
    x, states, upstream = problem(layer, T=5, B=3)

    def run(backward, x=x, states=states):
        fixed_masks(layer)
        return run_layer(layer, x, states, upstream, backward)

    report = nn.gradcheck_layers({"rnn": layer}, lambda backward: run(backward)[0])
    assert report.worst <= GRADCHECK_RTOL, report
    _, input_grads = run(True)
    args = {"x": x, **{f"s{k}": s for k, s in enumerate(states)}}

    def loss(x, **s):
        return run(False, x, tuple(s[f"s{k}"] for k in range(len(s))))[0]

    report = fr.gradcheck(loss, args, dict(zip(args, input_grads)))
    assert report.worst <= GRADCHECK_RTOL, report
    *_, cache = layer.forward(x, return_cache=True)
    assert any((m == 0).any() for m in cache.masks), "no unit was dropped: the check tested nothing"


def test_backward_uses_the_forward_masks_even_in_eval_mode():
    layer = make_layer("lstm", num_layers=2, dropout=0.5)
    x, states, upstream = problem(layer)
    fixed_masks(layer)
    _, trained = run_layer(layer, x, states, upstream, True)
    fixed_masks(layer)
    layer.forward(x, states)
    layer.eval()
    dx, _ = layer.backward(*upstream)
    np.testing.assert_array_equal(dx, trained[0])


def test_masks_are_fresh_per_forward_seeded_and_of_the_stated_rate():
    a = make_layer("gru", D=4, H=40, num_layers=2, bidirectional=True, dropout=0.3, seed=3)
    b = make_layer("gru", D=4, H=40, num_layers=2, bidirectional=True, dropout=0.3, seed=3)
    x = np.random.default_rng(0).standard_normal((64, 8, 4))
    first = a.forward(x, return_cache=True)[-1].masks[0]
    second = a.forward(x, return_cache=True)[-1].masks[0]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b.forward(x, return_cache=True)[-1].masks[0], first)
    assert abs((first == 0).mean() - 0.3) < 0.02  # 40960 draws: the standard error is 0.0023
    assert first.dtype == a.dtype


def test_variable_lengths_with_dropout_equal_sequences_run_alone():
    """Dropout composes with ``lengths``: each sequence's result is that of running it alone with its
    own slice of the masks (the padded steps are zero either way)."""
    layer = make_layer("lstm", D=3, H=5, num_layers=2, bidirectional=True, dropout=0.5)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 3))
    lengths = np.array([6, 2, 4])
    y, (h_n, c_n), cache = layer.forward(x, lengths=lengths, return_cache=True)
    for b, n in enumerate(lengths):
        alone = make_layer("lstm", D=3, H=5, num_layers=2, bidirectional=True, dropout=0.5)
        alone._dropout_rng = _Replay([m[:n, b:b + 1] for m in cache.masks])
        y_b, (h_b, c_b) = alone.forward(x[:n, b:b + 1])
        assert_close(y[:n, b:b + 1], y_b, name=f"y[{b}]")
        assert not y[n:, b].any()
        assert_close(h_n[:, b:b + 1], h_b, name=f"h_n[{b}]")


class _Replay:
    """Stands in for the mask generator: ``random`` returns draws that reproduce given masks."""

    def __init__(self, masks):
        self.draws = [np.where(m == 0, 0.0, 1.0) for m in masks]  # 0.0 < p drops, 1.0 >= p keeps

    def random(self, shape, dtype):
        draw = self.draws.pop(0)
        assert draw.shape == shape
        return draw.astype(dtype)


@pytest.mark.parametrize(
    "value, error, match",
    [("0.1", TypeError, "dropout must be a number"), (True, TypeError, "dropout must be a number"),
     (-0.1, ValueError, r"dropout must be in \[0, 1\); got -0.1"), (1.0, ValueError, r"in \[0, 1\); got 1.0"),
     (float("nan"), ValueError, r"in \[0, 1\)")],
)
def test_bad_dropout_is_rejected(value, error, match):
    with pytest.raises(error, match=match):
        nn.LSTM(3, 4, num_layers=2, dropout=value)


def test_dropout_with_one_layer_warns_and_train_checks_its_flag():
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        nn.RNN(3, 4, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.RNN(3, 4, num_layers=2, dropout=0.2)
    with pytest.raises(TypeError, match="mode must be True or False"):
        nn.RNN(3, 4).train("no")


def test_a_tampered_mask_is_rejected():
    layer = make_layer("rnn", num_layers=2, dropout=0.5)
    x, states, upstream = problem(layer)
    *_, cache = layer.forward(x, return_cache=True)
    bad = cache._replace(masks=(cache.masks[0][:, :1],))
    with pytest.raises(ValueError, match="cache.masks is not as forward left it"):
        layer.backward(upstream[0], cache=bad)
    layer.backward(upstream[0], cache=cache)  # the good cache still works


def test_a_resumed_run_draws_the_masks_of_the_uninterrupted_one(tmp_path):
    """The generator's state is saved with the parameters: training 3 + 3 steps through a checkpoint
    gives bit for bit the parameters of 6 steps in one go."""
    x = np.random.default_rng(5).standard_normal((6, 4, 3))

    def train(layer, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            y, _ = layer.forward(x)
            layer.backward(y - 1)
            optimizer.step()

    straight = make_layer("gru", num_layers=2, dropout=0.5, seed=9)
    optimizer = nn.Adam([straight], lr=0.01)
    train(straight, optimizer, 6)

    first = make_layer("gru", num_layers=2, dropout=0.5, seed=9)
    optimizer = nn.Adam([first], lr=0.01)
    train(first, optimizer, 3)
    nn.save_checkpoint(tmp_path / "c.npz", {"rnn": first}, optimizer=optimizer, step=3)
    resumed = make_layer("gru", num_layers=2, dropout=0.5, seed=123)  # another seed: all must come from the file
    optimizer = nn.Adam([resumed], lr=0.01)
    nn.restore(nn.load_checkpoint(tmp_path / "c.npz"), {"rnn": resumed}, optimizer)
    train(resumed, optimizer, 3)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name])

    plain = make_layer("gru", num_layers=2)
    assert plain.rng_state() is None  # nothing drawn, nothing saved
    with pytest.raises(ValueError, match="no random generator"):
        plain.set_rng_state(first.rng_state())
    with pytest.raises(ValueError, match="not a random state"):
        first.set_rng_state('{"bit_generator": "MT19937"}')

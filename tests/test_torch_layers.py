"""fastrnn.nn layers against torch modules: from_torch/to_torch, and layer autograd parity.

Every gradient is compared by torch's parameter name -- ``layer.grads[name]``
against ``module.<name>.grad`` -- so both biases are checked separately.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.interop import from_torch, to_torch

from conftest import DTYPES, assert_close

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed; install the 'peers' extra (torch==2.13.0) to compare with torch"
)

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
SHAPES = [(1, 1, 3, 5), (6, 1, 4, 2), (5, 3, 4, 4)]  # (T, B, D, H): T = 1, B = 1, D != H
MODES = ["LSTM", "RNN", "GRU"]
STACKS = [pytest.param(dict(num_layers=2), id="2layers"), pytest.param(dict(bidirectional=True), id="bidirectional"),
          pytest.param(dict(num_layers=3, bidirectional=True), id="3layers-bidirectional")]


def make_module(mode, D, H, dtype, seed, **options):
    torch.manual_seed(seed)
    return getattr(torch.nn, mode)(D, H, **options).to(TORCH_DTYPES[np.dtype(dtype)])


def draw_problem(module, T, B, dtype, seed):
    """x, initial states and upstream gradients, in the module's layout (states (L*Z, B, H))."""
    rng = np.random.default_rng(seed)
    draw = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    D, H, Z = module.input_size, module.hidden_size, 1 + module.bidirectional
    LZ = module.num_layers * Z
    sequence = (B, T) if module.batch_first else (T, B)
    n_states = 2 if module.mode == "LSTM" else 1
    return {
        "x": draw(*sequence, D),
        "states0": tuple(draw(LZ, B, H) for _ in range(n_states)),
        "dy": draw(*sequence, Z * H),
        "dstates_n": tuple(draw(LZ, B, H) for _ in range(n_states)),
    }


def layer_run(layer, p, lengths=None):
    """(y, final_states, dx, dstates0) from the layer's forward and backward."""
    if isinstance(layer, nn.LSTM):
        y, finals = layer.forward(p["x"], p["states0"], lengths=lengths)
        dx, dstates0 = layer.backward(p["dy"], p["dstates_n"])
    else:
        y, h_n = layer.forward(p["x"], p["states0"][0], lengths=lengths)
        finals = (h_n,)
        dx, dh0 = layer.backward(p["dy"], p["dstates_n"][0])
        dstates0 = (dh0,)
    return y, tuple(finals), dx, tuple(dstates0)


def torch_run(module, p, lengths=None):
    """The same through torch autograd on sum(dy*y) + sum(dstate_n*state_n); param grads stay on the module.

    With ``lengths``, torch's variable-length path: pack_padded_sequence, run, pad back to T.
    """
    x = torch.tensor(p["x"], requires_grad=True)
    states0 = [torch.tensor(s, requires_grad=True) for s in p["states0"]]
    if lengths is None:
        y, final = module(x, tuple(states0) if module.mode == "LSTM" else states0[0])
    else:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=module.batch_first, enforce_sorted=False)
        out, final = module(packed, tuple(states0) if module.mode == "LSTM" else states0[0])
        T = x.shape[1 if module.batch_first else 0]
        y, _ = pad_packed_sequence(out, batch_first=module.batch_first, total_length=T)
    finals = tuple(final) if module.mode == "LSTM" else (final,)
    loss = (torch.tensor(p["dy"]) * y).sum()
    for d_final, state in zip(p["dstates_n"], finals):
        loss = loss + (torch.tensor(d_final) * state).sum()
    loss.backward()
    to_numpy = lambda t: t.detach().numpy()  # noqa: E731
    return to_numpy(y), tuple(map(to_numpy, finals)), to_numpy(x.grad), tuple(to_numpy(s.grad) for s in states0)


def assert_layer_matches_torch(module, T, B, dtype, seed, lengths=None):
    """Outputs, final states, dx, dstates0 and every parameter gradient, by torch's names
    (with ``lengths``: against torch's PackedSequence path)."""
    layer = from_torch(module)
    p = draw_problem(module, T, B, dtype, seed)
    y, finals, dx, dstates0 = layer_run(layer, p, lengths)
    y_t, finals_t, dx_t, dstates0_t = torch_run(module, p, lengths)
    assert_close(y, y_t, name="y")
    assert_close(dx, dx_t, name="dx")
    for name, a, e in zip(("h_n", "c_n"), finals, finals_t):
        assert_close(a, e, name=name)
    for name, a, e in zip(("dh0", "dc0"), dstates0, dstates0_t):
        assert_close(a, e, name=name)
    torch_grads = {name: param.grad.numpy() for name, param in module.named_parameters()}
    assert set(layer.grads) == set(torch_grads)
    for name, grad in torch_grads.items():
        assert_close(layer.grads[name], grad, name=f"grads[{name!r}]")


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("T,B,D,H", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_layer_matches_torch_module_autograd(mode, T, B, D, H, dtype, batch_first):
    seed = T * 100 + B * 10 + D
    assert_layer_matches_torch(make_module(mode, D, H, dtype, seed, batch_first=batch_first), T, B, dtype, seed)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("options", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_stacked_and_bidirectional_layers_match_torch(mode, options, dtype, batch_first):
    module = make_module(mode, 3, 4, dtype, seed=4, batch_first=batch_first, **options)
    assert_layer_matches_torch(module, 5, 2, dtype, seed=4)


@pytest.mark.parametrize("options", [pytest.param({}, id="1layer"), *STACKS])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_from_torch_then_to_torch_is_exact(mode, dtype, options):
    module = make_module(mode, 3, 4, dtype, seed=0, batch_first=True, **options)
    layer = from_torch(module)
    assert (type(layer), layer.dtype) == ({"LSTM": nn.LSTM, "RNN": nn.RNN, "GRU": nn.GRU}[mode], np.dtype(dtype))
    config = (3, 4, True, module.num_layers, module.bidirectional)
    assert (layer.input_size, layer.hidden_size, layer.batch_first, layer.num_layers, layer.bidirectional) == config
    back = to_torch(layer)
    assert type(back) is type(module)
    assert (back.input_size, back.hidden_size, back.batch_first, back.num_layers, back.bidirectional) == config
    original = module.state_dict()
    assert list(back.state_dict()) == list(original)
    for name, tensor in back.state_dict().items():
        assert tensor.dtype == original[name].dtype
        assert torch.equal(tensor, original[name]), name
    # Copies all the way: changing the layer changes neither module.
    layer.params["weight_hh_l0"][:] = 0
    assert module.weight_hh_l0.abs().sum() > 0 and back.weight_hh_l0.abs().sum() > 0


@pytest.mark.parametrize("mode", MODES)
def test_bias_free_module_becomes_zero_biases(mode):
    module = make_module(mode, 3, 4, np.float64, seed=2, bias=False)
    layer = from_torch(module)
    assert not layer.params["bias_ih_l0"].any() and not layer.params["bias_hh_l0"].any()
    p = draw_problem(module, 5, 2, np.float64, seed=2)
    y, *_ = layer_run(layer, p)
    y_t, *_ = torch_run(module, p)
    assert_close(y, y_t, name="y")


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: torch.nn.LSTM(3, 4, proj_size=2), ValueError, "proj_size"),
        (lambda: torch.nn.RNN(3, 4, nonlinearity="relu"), ValueError, "nonlinearity='relu'"),
        (lambda: torch.nn.LSTM(3, 4).half(), TypeError, r"float16.*module.float\(\)"),
    ],
)
def test_from_torch_rejects_what_fastrnn_cannot_reproduce(build, error, match):
    with pytest.raises(error, match=match):
        from_torch(build())


@pytest.mark.parametrize("mode", MODES)
def test_dropout_and_the_training_mode_carry_over_both_ways(mode):
    """A module with dropout converts in either mode; in eval mode the layer computes what it does."""
    module = make_module(mode, 3, 4, np.float64, seed=6, num_layers=2, bidirectional=True, dropout=0.25)
    layer = from_torch(module)
    assert layer.dropout == 0.25 and layer.training
    back = to_torch(layer)
    assert back.dropout == 0.25 and back.training and back.num_layers == 2 and back.bidirectional
    module.eval()
    layer = from_torch(module)
    assert not layer.training and not to_torch(layer).training
    p = draw_problem(module, 5, 2, np.float64, seed=6)
    for ours, theirs, name in zip(layer_run(layer, p), torch_run(module, p), ("y", "finals", "dx", "dstates0")):
        assert_close(ours, theirs, name=name)


def test_to_torch_rejects_other_objects():
    with pytest.raises(TypeError, match="fastrnn.nn.LSTM, fastrnn.nn.RNN or fastrnn.nn.GRU; got Linear"):
        to_torch(nn.Linear(3, 4))


def test_training_in_fastrnn_equals_training_in_torch():
    """torch -> fastrnn -> 3 SGD steps -> torch gives what 3 torch SGD steps give, parameter by parameter."""
    module = make_module("LSTM", 3, 5, np.float64, seed=5)
    layer = from_torch(module)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 2, 3))
    target = rng.uniform(-0.5, 0.5, (7, 2, 5))
    optimizer = nn.SGD(layer, lr=0.5, momentum=0.9)
    torch_optimizer = torch.optim.SGD(module.parameters(), lr=0.5, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        y, _ = layer.forward(x)
        layer.backward(nn.mse(y, target).grad)
        optimizer.step()
        torch_optimizer.zero_grad()
        torch.nn.functional.mse_loss(module(torch.tensor(x))[0], torch.tensor(target)).backward()
        torch_optimizer.step()
    trained = to_torch(layer).state_dict()
    for name, tensor in module.state_dict().items():
        assert_close(trained[name].numpy(), tensor.numpy(), name=name)
    assert not torch.equal(trained["weight_hh_l0"], make_module("LSTM", 3, 5, np.float64, seed=5).weight_hh_l0)

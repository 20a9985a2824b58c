"""fastrnn.interop's functional helpers: names, shapes, biases, errors, round trips."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.interop import GRUCellWeights, weights_from_torch, weights_to_state_dict

from conftest import assert_close

TORCH_REASON = "PyTorch is not installed; install the 'peers' extra (torch==2.13.0)"


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def numpy_state_dict(G, H, D, num_layers=1, num_directions=1, bias=True, dtype=np.float64, seed=0):
    """A torch-style state dict of NumPy arrays, built without torch."""
    rng = np.random.default_rng(seed)
    state = {}
    for k in range(num_layers):
        for suffix in ("", "_reverse")[:num_directions]:
            inputs = D if k == 0 else H * num_directions
            state[f"weight_ih_l{k}{suffix}"] = rng.standard_normal((G * H, inputs)).astype(dtype)
            state[f"weight_hh_l{k}{suffix}"] = rng.standard_normal((G * H, H)).astype(dtype)
            if bias:
                state[f"bias_ih_l{k}{suffix}"] = rng.standard_normal(G * H).astype(dtype)
                state[f"bias_hh_l{k}{suffix}"] = rng.standard_normal(G * H).astype(dtype)
    return state


def test_import_and_numpy_state_dicts_work_without_torch():
    """torch is imported lazily: with torch unimportable, numpy state dicts still convert."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, fastrnn.interop as interop\n"
        "state = {'weight_ih_l0': np.ones((4, 3)), 'weight_hh_l0': np.ones((4, 1)),"
        " 'bias_ih_l0': np.ones(4), 'bias_hh_l0': np.ones(4)}\n"
        "(cell,), = interop.weights_from_torch(state)\n"
        "assert (cell.b == 2).all()\n"
        "try:\n"
        "    interop.weights_to_state_dict([[cell]])\n"
        "except ImportError as error:\n"
        "    assert 'peers' in str(error)\n"
        "else:\n"
        "    raise AssertionError('expected ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("num_layers,num_directions", [(1, 1), (3, 1), (2, 2)])
@pytest.mark.parametrize("G", [4, 1])
def test_layers_directions_and_summed_bias(G, num_layers, num_directions):
    state = numpy_state_dict(G, 5, 3, num_layers, num_directions)
    weights = weights_from_torch(state)
    assert len(weights) == num_layers
    for k, directions in enumerate(weights):
        assert len(directions) == num_directions
        for suffix, cell in zip(("", "_reverse"), directions):
            name = f"_l{k}{suffix}"
            np.testing.assert_array_equal(cell.w_ih, state["weight_ih" + name])
            np.testing.assert_array_equal(cell.w_hh, state["weight_hh" + name])
            np.testing.assert_array_equal(cell.b, state["bias_ih" + name] + state["bias_hh" + name])
            assert not np.shares_memory(cell.w_ih, state["weight_ih" + name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_false_gives_zero_biases_of_the_weights_dtype(dtype):
    (cell,), = weights_from_torch(numpy_state_dict(4, 3, 2, bias=False, dtype=dtype))
    assert cell.b.shape == (12,) and cell.b.dtype == dtype and not cell.b.any()


@pytest.mark.parametrize(
    "edit, error, match",
    [
        (lambda s: s.update(weight_hr_l0=np.zeros((3, 3))), ValueError, "proj_size"),
        (lambda s: s.pop("bias_hh_l0"), ValueError, "missing.*bias_hh_l0"),
        (lambda s: s.update(extra=np.zeros(3)), ValueError, "unexpected parameter 'extra'"),
        (lambda s: s.update(weight_ih_l0=np.zeros((12, 2), np.float16)), TypeError, "weight_ih_l0.*float16"),
        (lambda s: s.update(weight_ih_l0=np.zeros((12, 2), np.float32)), TypeError, "weight_ih_l0.*mixed"),
        (lambda s: s.update(bias_ih_l0=np.zeros(11)), ValueError, r"bias_ih_l0 has shape \(11,\)"),
        # 3 gates is a GRU, so the LSTM-sized weight_ih no longer fits.
        (lambda s: s.update(weight_hh_l0=np.zeros((9, 3))), ValueError, r"weight_ih_l0 .* expected .* G=3"),
        (lambda s: s.update(weight_hh_l0=np.zeros((6, 3))), ValueError, "2 gates"),
    ],
)
def test_bad_state_dicts_name_the_problem(edit, error, match):
    state = numpy_state_dict(4, 3, 2)
    edit(state)
    with pytest.raises(error, match=match):
        weights_from_torch(state)


def test_inconsistent_layers_are_rejected():
    state = numpy_state_dict(4, 3, 2, num_layers=2)
    state["weight_ih_l1"] = np.zeros((12, 5))  # layer 1 must read H = 3 features
    with pytest.raises(ValueError, match=r"weight_ih_l1 has shape \(12, 5\).*D=3"):
        weights_from_torch(state)
    rnn_layer = numpy_state_dict(1, 3, 3, seed=1)
    state.update({name.replace("_l0", "_l1"): value for name, value in rnn_layer.items()})
    with pytest.raises(ValueError, match="1 gates; expected 4"):
        weights_from_torch(state)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda nn: nn.LSTM(3, 4, proj_size=2), ValueError, "proj_size=2"),
        (lambda nn: nn.RNN(3, 4, nonlinearity="relu"), ValueError, "nonlinearity='relu'"),
        (lambda nn: nn.LSTM(3, 4, num_layers=2, dropout=0.5), ValueError, "dropout=0.5 in training mode"),
        (lambda nn: nn.LSTM(3, 4, batch_first=True), ValueError, "batch_first"),
        (lambda nn: nn.Linear(3, 4), TypeError, "torch.nn.LSTM, torch.nn.RNN or torch.nn.GRU; got Linear"),
    ],
)
def test_unsupported_modules_name_the_option(torch, build, error, match):
    with pytest.raises(error, match=match):
        weights_from_torch(build(torch.nn))


def test_dropout_is_fine_in_eval_mode_and_batch_first_when_acknowledged(torch):
    module = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5).eval()
    assert len(weights_from_torch(module)) == 2
    (cell,), = weights_from_torch(torch.nn.RNN(3, 4, batch_first=True), batch_first=True)
    assert cell.w_ih.shape == (4, 3)
    with pytest.raises(ValueError, match="batch_first mismatch"):
        weights_from_torch(torch.nn.RNN(3, 4), batch_first=True)


def stacked_forward(weights, x, cell_forward):
    """Run a multi-layer, possibly bidirectional stack with the functional kernels.

    ``cell_forward`` is fr.lstm_forward, fr.rnn_forward or fr.gru_forward; the reverse
    direction runs over the time-reversed input and its output is flipped back.
    Returns y (T, B, directions*H) and the final hidden states (layers*directions, B, H).
    """
    finals = []
    for directions in weights:
        outputs = []
        for d, weights_d in enumerate(directions):
            inputs = x if d == 0 else x[::-1]
            out = cell_forward(inputs, *weights_d)
            outputs.append(out.y if d == 0 else out.y[::-1])
            finals.append(out[1][0] if isinstance(out, fr.LSTMForward) else out[1])
        x = np.concatenate(outputs, axis=2)
    return x, np.stack(finals)


FORWARDS = {"LSTM": fr.lstm_forward, "RNN": fr.rnn_forward, "GRU": fr.gru_forward}


@pytest.mark.parametrize("mode", ["LSTM", "RNN", "GRU"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multilayer_bidirectional_stack_matches_torch(torch, mode, dtype):
    """Layer and direction indexing is right: composing the kernels reproduces torch's stack."""
    torch.manual_seed(0)
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    module = getattr(torch.nn, mode)(3, 5, num_layers=3, bidirectional=True).to(torch_dtype)
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(dtype)
    y_t, final_t = module(torch.tensor(x))
    h_n_t = final_t[0] if mode == "LSTM" else final_t
    weights = weights_from_torch(module)
    assert all(cell.w_ih.dtype == dtype for directions in weights for cell in directions)
    y, h_n = stacked_forward(weights, x, FORWARDS[mode])
    assert_close(y, y_t.detach().numpy(), name="y")
    assert_close(h_n, h_n_t.detach().numpy(), name="h_n")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_reproduces_the_module(torch, bias, dtype):
    torch.manual_seed(1)
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    original = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, bias=bias).to(torch_dtype)
    weights = weights_from_torch(original)
    state_dict = weights_to_state_dict(weights, bias=bias)
    assert all(tensor.dtype == torch_dtype for tensor in state_dict.values())
    copy = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, bias=bias).to(torch_dtype)
    copy.load_state_dict(state_dict)  # strict: every name present, nothing extra
    x = torch.tensor(np.random.default_rng(1).standard_normal((5, 2, 4)).astype(dtype))
    (y, (h_n, c_n)), (y_e, (h_n_e, c_n_e)) = copy(x), original(x)
    for name, a, e in (("y", y, y_e), ("h_n", h_n, h_n_e), ("c_n", c_n, c_n_e)):
        assert_close(a.detach().numpy(), e.detach().numpy(), name=name)
    # The state dict owns its memory: editing the weights later changes nothing in it.
    weights[0][0].w_ih[:] = 0
    assert state_dict["weight_ih_l0"].abs().sum() > 0


def test_to_state_dict_refuses_to_drop_a_nonzero_bias(torch):
    weights = weights_from_torch(numpy_state_dict(1, 3, 2))
    with pytest.raises(ValueError, match=r"bias=False but weights\[0\]\[0\].b is nonzero"):
        weights_to_state_dict(weights, bias=False)


def test_gru_weights_keep_both_biases():
    state = numpy_state_dict(3, 5, 4, num_layers=2, num_directions=2)
    weights = weights_from_torch(state)
    for k, directions in enumerate(weights):
        for suffix, cell in zip(("", "_reverse"), directions):
            assert isinstance(cell, GRUCellWeights)
            np.testing.assert_array_equal(cell.b_ih, state[f"bias_ih_l{k}{suffix}"])
            np.testing.assert_array_equal(cell.b_hh, state[f"bias_hh_l{k}{suffix}"])
    (cell,), = weights_from_torch(numpy_state_dict(3, 2, 2, bias=False, dtype=np.float32))
    assert cell.b_ih.shape == cell.b_hh.shape == (6,) and cell.b_ih.dtype == np.float32
    assert not cell.b_ih.any() and not cell.b_hh.any() and not np.shares_memory(cell.b_ih, cell.b_hh)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_state_dict_round_trip_is_exact(torch, bias):
    torch.manual_seed(2)
    original = torch.nn.GRU(4, 3, num_layers=2, bidirectional=True, bias=bias).double()
    state_dict = weights_to_state_dict(weights_from_torch(original), bias=bias)
    assert list(state_dict) == list(original.state_dict())
    for name, tensor in original.state_dict().items():
        assert torch.equal(state_dict[name], tensor), name
    state = numpy_state_dict(3, 3, 2)
    state["bias_ih_l0"][:] = 0  # b_hh alone must still stop a bias-free export
    with pytest.raises(ValueError, match=r"bias=False but weights\[0\]\[0\].b_hh is nonzero"):
        weights_to_state_dict(weights_from_torch(state), bias=False)

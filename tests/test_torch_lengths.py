"""Variable-length layers against PyTorch's PackedSequence path: outputs, states, every gradient."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, assert_close
from fastrnn.interop import from_torch
from test_torch_layers import MODES, draw_problem, make_module

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed; install the 'peers' extra (torch==2.13.0) to compare with torch"
)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

LENGTHS = np.array([5, 2, 4, 1])


def torch_packed_run(module, p, lengths):
    """torch with pack_padded_sequence: padded outputs are zero, states end at each sequence's end."""
    x = torch.tensor(p["x"], requires_grad=True)
    states0 = [torch.tensor(s, requires_grad=True) for s in p["states0"]]
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=module.batch_first, enforce_sorted=False)
    out, final = module(packed, tuple(states0) if module.mode == "LSTM" else states0[0])
    y, _ = pad_packed_sequence(out, batch_first=module.batch_first, total_length=x.shape[1 if module.batch_first else 0])
    finals = tuple(final) if module.mode == "LSTM" else (final,)
    loss = (torch.tensor(p["dy"]) * y).sum()
    for d_final, state in zip(p["dstates_n"], finals):
        loss = loss + (torch.tensor(d_final) * state).sum()
    loss.backward()
    numpy = lambda t: t.detach().numpy()  # noqa: E731
    return numpy(y), tuple(map(numpy, finals)), numpy(x.grad), tuple(numpy(s.grad) for s in states0)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_variable_lengths_match_packed_sequences(mode, dtype, batch_first):
    module = make_module(mode, 3, 4, dtype, seed=2, num_layers=2, bidirectional=True, batch_first=batch_first)
    layer = from_torch(module)
    p = draw_problem(module, 5, len(LENGTHS), dtype, seed=3)
    if mode == "LSTM":
        y, finals = layer.forward(p["x"], p["states0"], lengths=LENGTHS)
        dx, dstates0 = layer.backward(p["dy"], p["dstates_n"])
    else:
        y, h_n = layer.forward(p["x"], p["states0"][0], lengths=LENGTHS)
        finals = (h_n,)
        dx, dh0 = layer.backward(p["dy"], p["dstates_n"][0])
        dstates0 = (dh0,)
    y_t, finals_t, dx_t, dstates0_t = torch_packed_run(module, p, LENGTHS)
    assert_close(y, y_t, name="y")
    assert_close(dx, dx_t, name="dx")
    for name, a, e in zip(("h_n", "c_n"), finals, finals_t):
        assert_close(a, e, name=name)
    for name, a, e in zip(("dh0", "dc0"), dstates0, dstates0_t):
        assert_close(a, e, name=name)
    for name, param in module.named_parameters():
        assert_close(layer.grads[name], param.grad.numpy(), name=f"grads[{name!r}]")

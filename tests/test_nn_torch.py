"""The layers against PyTorch (when installed): a state dict maps 1:1 and outputs and grads agree."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close
from fastrnn import nn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_layer_matches_torch_with_its_state_dict(kind, batch_first):
    torch.manual_seed(0)
    T, B, D, H = 5, 3, 4, 6
    peer = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(D, H, batch_first=batch_first).double()
    layer = (nn.LSTM if kind == "lstm" else nn.RNN)(D, H, batch_first=batch_first, dtype=np.float64)
    layer.load_params({name: p.detach().numpy() for name, p in peer.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    dy = rng.standard_normal((B, T, H) if batch_first else (T, B, H))
    x_t = torch.tensor(x, requires_grad=True)
    y_t, _ = peer(x_t)
    (y_t * torch.tensor(dy)).sum().backward()
    y, *_ = layer.forward(x)
    dx, _ = layer.backward(dy)
    assert_close(y, y_t.detach().numpy(), name="y")
    assert_close(dx, x_t.grad.numpy(), name="dx")
    for name, p in peer.named_parameters():
        assert_close(layer.grads[name], p.grad.numpy(), name=name)

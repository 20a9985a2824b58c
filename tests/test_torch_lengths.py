"""Variable-length layers against PyTorch's PackedSequence path: outputs, states, every gradient."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES
from test_torch_layers import MODES, assert_layer_matches_torch, make_module

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed; install the 'peers' extra (torch==2.13.0) to compare with torch"
)
LENGTHS = np.array([5, 2, 4, 1])


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_variable_lengths_match_packed_sequences(mode, dtype, batch_first):
    module = make_module(mode, 3, 4, dtype, seed=2, num_layers=2, bidirectional=True, batch_first=batch_first)
    assert_layer_matches_torch(module, 5, len(LENGTHS), dtype, seed=3, lengths=LENGTHS)

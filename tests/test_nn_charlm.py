"""Character model pieces: deterministic batches, sampling, gradients through the one-hot path."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GRADCHECK_RTOL
from fastrnn import nn
from fastrnn.data import default_text


def test_default_text_is_the_hamlet_passage():
    text = default_text()
    assert text.startswith("To be, or not to be") and text.endswith("his quietus make") and len(text) == 866


def test_text_batch_walks_contiguous_streams_and_resets_each_pass():
    data = np.arange(23)  # N = 23 -> L = 11 per stream for B = 2; S = 5 -> 2 steps per pass
    first = nn.text_batch(data, 0, batch=2, seq_len=5)
    np.testing.assert_array_equal(first.inputs[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(first.inputs[:, 1], [11, 12, 13, 14, 15])
    np.testing.assert_array_equal(first.targets, first.inputs + 1)
    second = nn.text_batch(data, 1, batch=2, seq_len=5)
    np.testing.assert_array_equal(second.inputs[:, 0], [5, 6, 7, 8, 9])
    assert first.reset and not second.reset and nn.text_batch(data, 2, 2, 5).reset


def test_full_text_in_one_step_with_seq_len_865():
    data = np.arange(len(default_text()))
    batch = nn.text_batch(data, 7, batch=1, seq_len=865)
    assert batch.inputs.shape == (865, 1) and batch.reset


def test_charlm_gradients_match_central_differences():
    text = "abcab"
    lm = nn.CharLM(nn.vocab_of(text), 3, dtype=np.float64, seed=0)
    ids = lm.encode(text)[:, None]  # (T, 1)

    def run(backward):
        logits, _ = lm.forward(ids[:-1])
        loss, dlogits = nn.cross_entropy(logits, ids[1:])
        if backward:
            lm.backward(dlogits)
        return loss

    report = nn.gradcheck_layers(lm.layers, run)
    assert report.worst <= GRADCHECK_RTOL, report


def test_sampling_is_seeded_and_leaves_training_caches_alone():
    lm = nn.CharLM("abc", 4, seed=0)
    lm.forward(np.zeros((3, 1), np.int64))
    pending = lm.cache_nbytes
    a = lm.sample(50, seed=1, prime="ab")
    assert a == lm.sample(50, seed=1, prime="ab") and a != lm.sample(50, seed=2, prime="ab")
    assert len(a) == 50 and set(a) <= set("abc")
    assert lm.cache_nbytes == pending
    with pytest.raises(ValueError, match="temperature must be positive"):
        lm.sample(5, temperature=0)
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        lm.encode("abz")


def test_unigram_entropy():
    assert nn.unigram_entropy("aabb") == pytest.approx(np.log(2))
    assert nn.unigram_entropy("aaaa") == 0.0

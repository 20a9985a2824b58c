"""Batch-parallel recurrences give the reference's answers (forced on small problems here)."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import _parallel
from conftest import DTYPES, assert_close, forward_args, make_problem


@pytest.fixture
def chunked(monkeypatch):
    """Every call with B >= 2 runs in chunks over 3 threads."""
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_MACS", 0)
    previous = _parallel._threads
    fr.set_num_threads(3)
    yield
    _parallel._threads = previous


@pytest.mark.parametrize("lengths", [None, np.array([5, 1, 3, 0, 5])], ids=["full", "varied"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_chunked_batches_match_the_reference(cell, dtype, lengths, chunked):
    assert _parallel.batch_chunks(5, 1.0) is not None  # really chunked
    p = make_problem(cell, 5, 5, 3, 6, dtype, seed=11)
    fast = cell.forward(*forward_args(cell, p), lengths=lengths)
    ref = cell.ref_forward(*forward_args(cell, p), lengths=lengths)
    assert_close(fast.y, ref.y, name="y")
    for a, e in zip(cell.final_state(fast), cell.final_state(ref)):
        assert_close(a, e, name="final state")
    grads = cell.backward(p["dy"], fast.cache, *p["dstates_n"])
    expected = cell.ref_backward(p["dy"], ref.cache, *p["dstates_n"])
    for name, a, e in zip(cell.grad_names, grads, expected):
        assert_close(a, e, name=name)


def test_chunks_cover_the_batch_evenly():
    previous = _parallel._threads
    try:
        fr.set_num_threads(2)
        assert _parallel.batch_chunks(32, _parallel.PARALLEL_MIN_MACS) == [(0, 16), (16, 32)]
        assert _parallel.batch_chunks(32, _parallel.PARALLEL_MIN_MACS - 1) is None  # too small to pay
        assert _parallel.batch_chunks(3, _parallel.PARALLEL_MIN_MACS) is None  # too few rows per chunk
        fr.set_num_threads(3)
        chunks = _parallel.batch_chunks(10, _parallel.PARALLEL_MIN_MACS)
        assert chunks[0][0] == 0 and chunks[-1][1] == 10 and all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        fr.set_num_threads(1)
        assert _parallel.batch_chunks(32, 1e12) is None
    finally:
        _parallel._threads = previous


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)])
def test_set_num_threads_rejects_bad_values(bad, error):
    with pytest.raises(error, match="threads must"):
        fr.set_num_threads(bad)


def test_blas_threads_restored_after_chunked_calls(chunked):
    from fastrnn import _blas

    setter = _blas._set_local()
    if setter is None:
        pytest.skip("no openblas_set_num_threads_local")
    before = setter(2)
    try:
        p = make_problem(fr.registry.CELLS["lstm"], 4, 6, 3, 5, np.float32)
        out = fr.lstm_forward(*forward_args(fr.registry.CELLS["lstm"], p))
        fr.lstm_backward(p["dy"], out.cache)
        current = setter(2)
        assert current == 2
    finally:
        setter(before)

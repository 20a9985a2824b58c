"""The wrappers' memory pool (``fastrnn._memory``): reuse only what nothing refers to any more."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import _memory, nn

from conftest import assert_close, run_forking_script

F32 = np.dtype(np.float32)
LARGE = (_memory.POOL_FROM_BYTES // 4 + 100,)  # float32 elements: just above the pooling size


@pytest.fixture(autouse=True)
def empty_pool():
    fr.release_memory()
    yield
    fr.release_memory()


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def pooled_view(array: np.ndarray) -> bool:
    return any(array.base is block for block, _, _ in _memory._blocks)


def test_pooled_arrays_start_on_a_cache_line():
    """np.empty starts large arrays 16 bytes past a page; the pool's start on 64-byte lines, for
    every size and dtype and when a block is handed out again."""
    arrays = [_memory.empty((n,), dtype) for n in (LARGE[0], LARGE[0] + 1, 3 * LARGE[0] + 5)
              for dtype in (F32, np.dtype(np.float64))]
    assert all(pooled_view(array) for array in arrays)
    assert {address(array) % _memory.ALIGN_BYTES for array in arrays} == {0}
    assert _memory.ALIGN_BYTES == 64
    start = address(arrays[0])
    del arrays
    again = _memory.empty(LARGE, F32)
    assert address(again) == start and address(again) % 64 == 0


def test_small_arrays_are_plain():
    array = _memory.empty((3, 4), F32)
    assert array.base is None and array.shape == (3, 4) and array.dtype == F32
    assert fr.pooled_bytes() == (0, 0)


def test_a_dropped_array_is_reused_and_a_live_one_is_not():
    first = _memory.empty(LARGE, F32)
    start = address(first)
    assert fr.pooled_bytes() == (0, first.nbytes)
    second = _memory.empty(LARGE, F32)  # first is alive: new memory
    assert not np.shares_memory(first, second)
    del first
    assert fr.pooled_bytes()[0] == second.nbytes
    third = _memory.empty(LARGE, np.dtype(np.float64))  # twice the bytes: the free block is too small
    assert not np.shares_memory(second, third)
    fourth = _memory.empty(LARGE, F32)
    assert address(fourth) == start  # the freed block, handed out again
    for array in (second, third, fourth):
        assert array.flags.c_contiguous and array.flags.writeable


def test_a_view_keeps_its_block_busy():
    array = _memory.empty((8,) + LARGE, F32)
    array[...] = 1
    row = array[3]  # a view of a view: refers to the block itself
    del array
    again = _memory.empty((8,) + LARGE, F32)
    again[...] = 2
    assert not np.shares_memory(row, again)
    assert (row == 1).all()


def test_blocks_are_matched_by_size():
    big = _memory.empty((4 * LARGE[0],), F32)
    del big
    small = _memory.empty(LARGE, F32)  # the free block is more than twice the request: not used
    assert fr.pooled_bytes()[1] == small.nbytes
    half = _memory.empty((2 * LARGE[0],), F32)  # exactly half of the free block: used
    assert fr.pooled_bytes() == (0, small.nbytes + 4 * half.nbytes // 2)


def test_the_pool_is_bounded_and_released():
    kept = [_memory.empty(LARGE, F32) for _ in range(_memory.POOL_BLOCKS + 5)]
    free, busy = fr.pooled_bytes()
    assert free == 0 and busy == _memory.POOL_BLOCKS * kept[0].nbytes
    del kept
    assert fr.pooled_bytes() == (_memory.POOL_BLOCKS * LARGE[0] * 4, 0)
    assert fr.release_memory() == _memory.POOL_BLOCKS * LARGE[0] * 4
    assert fr.pooled_bytes() == (0, 0)


def test_concurrent_requests_never_share_memory():
    results, errors = [], []

    def work(seed):
        try:
            mine = []
            for k in range(50):
                array = _memory.empty(LARGE, F32)
                array[...] = seed
                mine.append(array)
                if k % 3 == 0:
                    mine.pop(0)
            assert all((a == seed).all() for a in mine)
            results.append(mine)
        except AssertionError as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    live = [a for mine in results for a in mine]
    for i, a in enumerate(live):
        for b in live[i + 1:]:
            assert not np.shares_memory(a, b)


def test_results_kept_across_calls_stay_intact(cell):
    """A forward's outputs and cache, and a backward's gradients, held while later calls run,
    are not overwritten by them (the later calls must take other memory)."""
    from conftest import forward_args, make_problem

    forward, backward = cell.impl("fast")
    T, B, D, H = 64, 8, 24, 40  # large enough for pooled arrays
    first = make_problem(cell, T, B, D, H, np.float64, seed=1)
    second = make_problem(cell, T, B, D, H, np.float64, seed=2)
    out = forward(*forward_args(cell, first))
    grads = backward(first["dy"], out.cache)
    saved = [np.array(a) for a in (out.y, *out.cache[:-1], *grads)]
    for _ in range(3):
        backward(second["dy"], forward(*forward_args(cell, second)).cache)
    for before, now in zip(saved, (out.y, *out.cache[:-1], *grads)):
        np.testing.assert_array_equal(now, before)
    ref = cell.ref_forward(*forward_args(cell, first))
    assert_close(out.y, ref.y, name="y")


def test_a_training_loop_reuses_its_memory(cell):
    """forward, backward, drop both: from the second step on every pooled array is a reused block."""
    from conftest import forward_args, make_problem

    forward, backward = cell.impl("fast")
    p = make_problem(cell, 64, 8, 24, 40, np.float32, seed=3)
    backward(p["dy"], forward(*forward_args(cell, p)).cache)
    free, busy = fr.pooled_bytes()
    assert free > 0 and busy == 0
    for _ in range(3):
        backward(p["dy"], forward(*forward_args(cell, p)).cache)
        assert fr.pooled_bytes() == (free, 0)


def test_a_stacked_bidirectional_layer_reuses_its_memory():
    """The layers' own large arrays (the directions' joined outputs, copies of strided gradients)
    are pooled too: from the second training step on, the pool neither grows nor churns."""
    layer = nn.LSTM(24, 40, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(4).standard_normal((64, 8, 24)).astype(np.float32)

    def step():
        y, _ = layer.forward(x)
        layer.backward(np.ones_like(y))
        return y

    y = step()
    assert pooled_view(y), "the joined output is not pooled"
    reference = y.copy()  # a plain copy: the pooled y is dropped, as a training loop would
    del y
    pooled = fr.pooled_bytes()
    assert pooled[0] > 0 and pooled[1] == 0
    for _ in range(3):
        np.testing.assert_array_equal(step(), reference)
        assert fr.pooled_bytes() == pooled


def test_large_private_copies_are_pooled_and_converted():
    from fastrnn import _validate as v

    source = np.asfortranarray(np.arange(2 * LARGE[0], dtype=">f8").reshape(2, -1))
    copy = v.private_copy(source, np.dtype(np.float64))
    assert pooled_view(copy)
    assert copy.flags.c_contiguous and copy.dtype == np.dtype(np.float64) and copy.dtype.isnative
    np.testing.assert_array_equal(copy, source)
    assert not np.shares_memory(copy, source)


FORK_SCRIPT = """
import os, sys, numpy as np
from fastrnn import _memory
F32 = np.dtype(np.float32)
LARGE = (_memory.POOL_FROM_BYTES // 4 + 100,)
keep = _memory.empty(LARGE, F32)
with _memory._lock:  # as if another thread were inside empty() at the fork
    pid = os.fork()
    if pid == 0:  # the child: allocate and check
        ok = False
        try:
            ok = not np.shares_memory(_memory.empty(LARGE, F32), keep)
        finally:
            os._exit(0 if ok else 1)
"""


def test_a_forked_child_can_allocate_even_if_the_lock_was_held():
    run_forking_script(FORK_SCRIPT, "the forked child hung in _memory.empty (the lock it inherited was held)")

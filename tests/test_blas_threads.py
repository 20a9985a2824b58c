"""Small kernel calls run SciPy's BLAS on one thread, and always give the count back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import _blas

setter = _blas._set_local()
pytestmark = pytest.mark.skipif(setter is None, reason="SciPy's OpenBLAS has no openblas_set_num_threads_local")


def current_threads() -> int:
    previous = setter(1)
    setter(previous)
    return previous


@pytest.fixture
def two_threads():
    before = setter(2)
    yield
    setter(before)


def test_small_call_is_single_threaded_and_restores(two_threads):
    seen = []
    _blas.call_kernel(1000, 1 << 20, lambda: seen.append(current_threads()))
    assert seen == [1]
    assert current_threads() == 2


def test_call_without_threadable_products_is_left_alone(two_threads):
    """Products OpenBLAS runs on one thread anyway need no toggle (it costs microseconds)."""
    seen = []
    _blas.call_kernel(1000, _blas.OPENBLAS_THREADS_ABOVE_MACS, lambda: seen.append(current_threads()))
    assert seen == [2]


def test_large_call_keeps_openblas_choice(two_threads):
    seen = []
    _blas.call_kernel(_blas.SINGLE_THREAD_BELOW_MACS, 1 << 20, lambda: seen.append(current_threads()))
    assert seen == [2]


def test_restored_when_the_kernel_raises(two_threads):
    def boom():
        raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError):
        _blas.call_kernel(1000, 1 << 20, boom)
    assert current_threads() == 2


def test_overlapping_calls_from_threads_restore_the_count(two_threads):
    """A enters, B enters, A leaves, B leaves: plain save/restore would end with B
    restoring the 1 it saw on entry, leaving the program's BLAS on one thread."""
    a_inside, b_inside = threading.Event(), threading.Event()

    def kernel_a():
        a_inside.set()
        assert b_inside.wait(10)

    def kernel_b():
        assert a_inside.wait(10)
        b_inside.set()
        thread_a.join(10)  # A has left completely before B leaves

    thread_a = threading.Thread(target=_blas.call_kernel, args=(1000, 1 << 20, kernel_a))
    thread_b = threading.Thread(target=_blas.call_kernel, args=(1000, 1 << 20, kernel_b))
    thread_a.start()
    thread_b.start()
    thread_b.join(10)
    assert current_threads() == 2


def test_concurrent_small_kernels_restore_the_count(two_threads):
    x = np.ones((3, 2, 4), np.float32)
    weights = np.ones((8, 4), np.float32), np.ones((8, 2), np.float32), np.ones(8, np.float32)
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda _: fr.lstm_forward(x, *weights).y, range(16)))
    assert all(np.array_equal(y, outputs[0]) for y in outputs)
    assert current_threads() == 2

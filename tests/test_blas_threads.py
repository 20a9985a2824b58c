"""Small kernel calls run SciPy's BLAS on one thread, and always give the count back."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import _blas

from conftest import run_forking_script

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


# The kernel family OpenBLAS reports must be the one it runs: threadpoolctl reads it through
# OpenBLAS's own API as well, and a pinned OPENBLAS_CORETYPE must show up in a fresh process.
def test_openblas_kernels_agree_with_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS so threadpoolctl sees it)

    kernels = _blas.openblas_kernels()
    assert set(kernels) == {"scipy", "numpy"}
    seen = {info["filepath"].split("site-packages/")[1].split(".libs")[0]: info["architecture"]
            for info in threadpoolctl.threadpool_info() if info["internal_api"] == "openblas"}
    assert kernels == {package: seen[package] for package in kernels}


@pytest.mark.parametrize("core", ["Haswell", "SkylakeX"])
def test_pinned_coretype_is_reported(core):
    import subprocess
    import sys

    code = "import numpy, scipy.linalg; from fastrnn import _blas; print(_blas.openblas_kernels(), '|', _blas.coretype_note())"
    env = dict(os.environ, OPENBLAS_CORETYPE=core)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    kernels, note = out.split("|")
    assert kernels.strip() == repr({"scipy": core, "numpy": core})
    assert f"OPENBLAS_CORETYPE={core} is set" in note


@pytest.mark.parametrize("scipy_kernels, expected", [("SkylakeX", True), ("Cooperlake", True), ("SAPPHIRERAPIDS", True),
                                                     ("Haswell", False), ("Zen", False), (None, False)])
def test_small_path_follows_scipys_kernel_family(monkeypatch, scipy_kernels, expected):
    """Lanes split a step into halves only where SciPy's OpenBLAS has the small-matrix path."""
    kernels = {"numpy": "SkylakeX"} if scipy_kernels is None else {"scipy": scipy_kernels, "numpy": "Haswell"}
    monkeypatch.setattr(_blas, "openblas_kernels", lambda: kernels)
    _blas.has_small_path.cache_clear()
    try:
        assert _blas.has_small_path() is expected
    finally:
        monkeypatch.undo()
        _blas.has_small_path.cache_clear()


def test_no_note_without_a_pinned_coretype(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert _blas.coretype_note() is None


FORK_SCRIPT = """
import os, sys
from fastrnn import _blas
setter = _blas._set_local()


def current():
    previous = setter(1)
    setter(previous)
    return previous


saved = setter(2)
with _blas._lock:  # as if another thread were inside a small call's section at the fork
    _blas._in_flight, _blas._saved_threads = 1, setter(1)
    pid = os.fork()
    if pid == 0:  # the child: a small call runs, and BLAS is back on two threads after it
        ok = False
        try:
            seen = []
            _blas.call_kernel(1000, 1 << 20, lambda: seen.append(current()))
            ok = seen == [1] and current() == 2
        finally:
            os._exit(0 if ok else 1)
    _blas._in_flight = 0
setter(saved)
"""


def test_a_forked_child_gets_its_blas_threads_back():
    """A fork while another thread is inside a small call: the child neither hangs on the
    section's lock nor keeps one BLAS thread."""
    run_forking_script(FORK_SCRIPT, "the forked child hung in a small call (the lock it inherited was held)")


@pytest.mark.parametrize("rows, expected", [(400, 1), (8192, 2)])
def test_linear_layer_follows_the_small_call_rule(two_threads, monkeypatch, rows, expected):
    """The head's products, like the recurrent kernels', run on one BLAS thread when the call is
    small (400 x 64 -> 65: 1.7 M multiply-adds, which OpenBLAS would thread) and keep OpenBLAS's
    choice when it is large (8192 x 512 -> 512: 2**31)."""
    from fastrnn.nn import linear as module

    seen = []
    for name in ("linear_forward", "linear_backward"):
        kernel = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, kernel=kernel: (seen.append(current_threads()), kernel(*args)))
    width = 64 if rows == 400 else 512
    layer = fr.nn.Linear(width, width + 1 if rows == 400 else width, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((rows, width)).astype(np.float32)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    assert seen == [expected, expected]
    assert current_threads() == 2


def test_global_grad_norm_wakes_no_blas_worker():
    """NumPy's dot of more than 10,000 elements is threaded, and OpenBLAS's worker then spins for
    about 0.1 s; the norm of a 64-unit LSTM's gradients (33,792 numbers) must not start one."""
    import time

    from fastrnn.bench.harness import _threads_running

    if _threads_running() is None:
        pytest.skip("no /proc/self/task here")
    layer = fr.nn.LSTM(64, 64, dtype=np.float64, seed=0)
    for grad in layer.grads.values():
        grad[...] = 0.5
    deadline = time.perf_counter() + 1.0
    while _threads_running() and time.perf_counter() < deadline:  # workers of earlier tests go to sleep
        time.sleep(0.005)
    if _threads_running():
        pytest.skip("another thread of the process stays busy")
    norm = fr.nn.global_grad_norm(layer)
    time.sleep(0.003)
    assert _threads_running() == 0
    assert norm == pytest.approx(0.5 * np.sqrt(sum(g.size for g in layer.grads.values())), rel=1e-14)

"""Per-call control of the BLAS threads the kernels use.

Numba's ``np.dot`` calls SciPy's OpenBLAS, which threads a product once it
passes about 2**19 multiply-adds.  A threaded product waits for its worker to
be scheduled, and on a busy machine that wait can be a whole scheduler tick:
the LSTM forward for T=32, B=4, H=64 took 17 ms instead of 0.26 ms, and
``fastrnn train --hidden 10`` ran 10x slower, both from the few threaded
input-projection and weight-gradient products of each call (measured while
other jobs shared this 2-core machine).  The per-step products of such small
problems are below OpenBLAS's threshold and single-threaded already.

So a kernel call whose total work is below ``SINGLE_THREAD_BELOW_MACS`` runs
on one BLAS thread: a call that small takes well under a millisecond, so two
threads can save little and a stall costs much more.  Larger calls keep
OpenBLAS's own choice, because there two threads pay (0.55-0.64x the time of
one for per-step products of 0.5-2 M multiply-adds, measured interleaved in
one process with ``openblas_set_num_threads_local``).

The count is set with ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27),
which returns the previous count.  Despite its name it acts process-wide in
the pthreads build SciPy ships (measured: a value set in one Python thread is
seen in another; OpenBLAS's maintainers call the function not yet complete,
OpenMathLib/OpenBLAS#5808).  So entering and leaving is reference-counted
under a lock: the first small call in flight saves the count and sets 1, the
last one restores it, and overlapping calls from several Python threads can
never leave the program's BLAS stuck at one thread (nor can a fork: the child
starts with no section open and the count given back).  While a small call runs,
SciPy BLAS calls elsewhere in the process also run on one thread -- a
performance effect only.  Where the symbol is missing the kernels run with
OpenBLAS's own choice.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading

SINGLE_THREAD_BELOW_MACS = 1 << 24  # ~0.2 ms of single-threaded SGEMM on this machine
# OpenBLAS itself runs a GEMM of at most this many multiply-adds on one thread
# (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD = 65536 * 4 in its interface/gemm.c;
# the per-step crossover measured here agrees: 2**18 ran alike on 1 and 2 threads,
# 2**19 did not).  A call whose products are all this small needs no toggle, which
# costs about 3 us per call when OpenBLAS's count goes back up.
OPENBLAS_THREADS_ABOVE_MACS = 1 << 18


def openblas_functions(name: str, packages=("scipy",)) -> list:
    """``name`` from the OpenBLAS bundled with each of ``packages`` that exports it (ctypes
    functions of the already-loaded libraries: loading the same path again gives the same
    instance)."""
    found = []
    for package in packages:
        folder = os.path.dirname(__import__(package).__file__)
        paths = glob.glob(folder + ".libs/libscipy_openblas*.so*") + glob.glob(folder + "/.dylibs/libscipy_openblas*")
        for path in paths:
            try:
                found.append(getattr(ctypes.CDLL(path), name))
            except (OSError, AttributeError):
                continue
    return found


@functools.lru_cache(maxsize=None)
def _set_local():
    """SciPy's OpenBLAS ``openblas_set_num_threads_local``, or None."""
    for function in openblas_functions("openblas_set_num_threads_local"):
        function.argtypes = [ctypes.c_int]
        function.restype = ctypes.c_int
        return function
    return None


_lock = threading.Lock()
_in_flight = 0  # single-threaded sections running now
_saved_threads = 0  # the count to restore when the last one ends


def _enter(setter) -> None:
    global _in_flight, _saved_threads
    with _lock:
        if _in_flight == 0:
            _saved_threads = setter(1)
        _in_flight += 1


def _leave(setter) -> None:
    global _in_flight
    with _lock:
        _in_flight -= 1
        if _in_flight == 0:
            setter(_saved_threads)


def _after_fork_in_child() -> None:
    """A forked child has only the thread that forked.  A section another thread had open
    will never be left in the child, which would keep the child's BLAS on one thread for
    good, and a lock held at the fork would stay held, hanging the child's first small call.
    So the child starts afresh, with OpenBLAS's count given back if a section was open."""
    global _lock, _in_flight
    _lock = threading.Lock()
    if _in_flight:
        _in_flight = 0
        setter = _set_local()
        if setter is not None:
            setter(_saved_threads)


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def single_threaded():
    """SciPy's BLAS on one thread for the duration (reference-counted across Python threads)."""
    setter = _set_local()
    if setter is None:
        yield
        return
    _enter(setter)
    try:
        yield
    finally:
        _leave(setter)


def call_kernel(macs: float, largest: float, kernel, *args) -> None:
    """``kernel(*args)``, with SciPy's BLAS on one thread while it runs when the call is small
    (``macs`` multiply-adds in all) but has a product OpenBLAS would thread (``largest``).
    Not written with :func:`single_threaded`: the context manager's own cost (1.4 us against
    0.4 for the two OpenBLAS calls) was a fair part of a small call."""
    setter = None
    if macs < SINGLE_THREAD_BELOW_MACS and largest > OPENBLAS_THREADS_ABOVE_MACS:
        setter = _set_local()
    if setter is None:
        kernel(*args)
        return
    _enter(setter)
    try:
        kernel(*args)
    finally:
        _leave(setter)


# Names under which SciPy's and NumPy's OpenBLAS builds export the kernel family they
# chose at load time (NumPy's 64-bit-integer build suffixes its symbols with 64_).
_CORENAME_SYMBOLS = ("scipy_openblas_get_corename", "scipy_openblas_get_corename64_", "openblas_get_corename")


def openblas_kernels() -> dict[str, str]:
    """The kernel family ("Haswell", "SkylakeX", ...) of the OpenBLAS that SciPy (whose BLAS
    Numba's ``np.dot`` calls) and NumPy (``np.matmul``, the GEMM peak) each bundle, by package.

    OpenBLAS picks the family from the CPU when it loads unless ``OPENBLAS_CORETYPE`` names
    one, and the family sets the GEMM rate: on this project's AVX-512 machine the AVX2
    "Haswell" kernels ran a 1024^3 float32 GEMM at 252 GFLOP/s and "SkylakeX" at 420-480
    (README, "Performance").  A package whose library is not found is left out."""
    kernels = {}
    for package in ("scipy", "numpy"):
        for symbol in _CORENAME_SYMBOLS:
            functions = openblas_functions(symbol, packages=(package,))
            if functions:
                functions[0].restype = ctypes.c_char_p
                functions[0].argtypes = []
                kernels[package] = functions[0]().decode("ascii", "replace").strip()
                break
    return kernels


# OpenBLAS kernel families with a small-matrix SGEMM path: products of at most 100**3
# multiply-adds computed without packing (its kernel/x86_64/KERNEL.SKYLAKEX names
# sgemm_small_kernel_permit_skylakex.c; KERNEL.COOPERLAKE and KERNEL.SAPPHIRERAPIDS include it).
SMALL_PATH_KERNELS = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


@functools.lru_cache(maxsize=None)
def has_small_path() -> bool:
    """Whether SciPy's OpenBLAS (the one Numba's ``np.dot`` calls) runs a kernel family with the
    small-matrix path, which ``kernels/matmul.py``'s HALVES form relies on: without it (the
    Haswell kernels, e.g. under ``OPENBLAS_CORETYPE=Haswell``) each half packs the whole weights
    and the split ran 1.5x slower."""
    return openblas_kernels().get("scipy", "").lower() in SMALL_PATH_KERNELS


def coretype_note() -> str | None:
    """A sentence for benchmark output when the environment pins OpenBLAS's kernel family, else None."""
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if not pinned:
        return None
    return (f"OPENBLAS_CORETYPE={pinned} is set, so OpenBLAS runs those kernels whatever the CPU; "
            "unset it (with OPENBLAS_L2_SIZE) for this command alone to let OpenBLAS choose (README, 'Performance')")

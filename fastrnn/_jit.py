"""The one place where Numba is configured.

Every kernel in fastrnn is compiled through :func:`jit`; no other module passes
options to Numba (``tests/test_style.py`` rejects ``numba.njit``/``fastmath=``
anywhere else).

Choices and why:

* ``cache=True`` -- compiled machine code is written to disk and a second
  process loads it instead of recompiling (about a second per kernel and
  dtype -> milliseconds).  See :class:`_KernelSourcesStamp` for how the cache
  is kept from going stale.
* ``nogil=True`` -- kernels release the GIL, so threads can run them
  concurrently; the kernels are stateless, so this is safe.
* ``error_model="numpy"`` -- division by zero gives inf/nan as in NumPy instead
  of raising.  The Python error model inserts a zero check before every
  division, and that branch stops LLVM from vectorizing the gate loops.
* ``boundscheck=False`` -- the wrappers validate every shape before a kernel
  runs, so the kernels never index out of bounds.
* ``fastmath`` -- the flags are named one by one.  ``nnan`` and ``ninf`` are
  left out on purpose: with them LLVM may assume no NaN/Inf exists and fold
  away the comparisons that make saturating activations and NaN propagation
  behave like the reference.  ``reassoc`` is left out too: it let LLVM fold
  the Cody-Waite split ``(u - n*hi) - n*lo`` in the activations back into
  ``u - n*(hi + lo)``, which took float64 sigmoid from 2.5 to 30 ulp (measured
  with the dense sample of ``tests/test_activations.py``); no loop here needs it,
  since the bias-gradient sum is vectorized across gates, not within one.
  ``contract`` allows FMA; ``nsz``/``arcp``/``afn`` free LLVM to use
  reciprocal and fused forms.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import platform

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")

FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn"})

JIT_OPTIONS = dict(
    cache=True,
    nogil=True,
    error_model="numpy",
    boundscheck=False,
    fastmath=set(FASTMATH_FLAGS),
)


def jit(func):
    """Compile ``func`` lazily with the project's options (nothing compiles on import)."""
    return numba.njit(**JIT_OPTIONS)(func)


def jit_inline(func):
    """:func:`jit`, inlined into its callers by Numba: for a small dispatching helper called once
    per step, whose call (array arguments are passed as structs) would otherwise cost
    ~25 ns a step -- 20 us of a 864-step H=10 LSTM forward+backward."""
    return numba.njit(**dict(JIT_OPTIONS, inline="always"))(func)


def jit_sum(func):
    """:func:`jit` plus ``reassoc``, for a dot product only: without it LLVM must add the terms
    of a sum in source order and cannot vectorize along it.  Reassociation changes only the
    rounding of the sum, as BLAS does.  Never use it for code that calls the activations
    (see the note on ``reassoc`` above)."""
    return numba.njit(**dict(JIT_OPTIONS, fastmath=set(FASTMATH_FLAGS | {"reassoc"})))(func)


def jit_lanes(func):
    """:func:`jit` with ``parallel=True``, for the two-lane drivers (``kernels/lanes.py``) only:
    their ``prange(2)`` puts each lane on a thread of Numba's pool.  Nothing else is
    auto-parallelized in them; the lanes' work is plain calls of :func:`jit` kernels."""
    return numba.njit(**dict(JIT_OPTIONS, parallel=True))(func)


def _int64_cell(context, builder, array_type, array, index):
    """A pointer to ``array[index]`` of an int64 array (for the atomics below)."""
    view = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, view, [index])


def _is_int64_array(array) -> bool:
    return isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1


@intrinsic
def load_acquire(typingctx, array, index):
    """``array[index]`` of an int64 array, read atomically with acquire ordering: what another
    thread wrote before its :func:`store_release` of the value read is visible after it."""
    if not _is_int64_array(array):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_int64_cell(context, builder, signature.args[0], *args), "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def store_release(typingctx, array, index, value):
    """``array[index] = value`` (int64), atomically with release ordering (see :func:`load_acquire`)."""
    if not _is_int64_array(array):
        return None

    def codegen(context, builder, signature, args):
        cell = _int64_cell(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(context.cast(builder, args[2], signature.args[2], types.int64), cell, "release", 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def compare_swap(typingctx, array, index, expected, new):
    """Atomically: if ``array[index] == expected`` set it to ``new`` and return True, else False."""
    if not _is_int64_array(array):
        return None

    def codegen(context, builder, signature, args):
        cell = _int64_cell(context, builder, signature.args[0], args[0], args[1])
        old = context.cast(builder, args[2], signature.args[2], types.int64)
        new_value = context.cast(builder, args[3], signature.args[3], types.int64)
        return builder.extract_value(builder.cmpxchg(cell, old, new_value, "acq_rel", "acquire"), 1)

    return types.boolean(array, index, expected, new), codegen


@intrinsic
def cpu_relax(typingctx):
    """The x86 ``pause`` hint, for spin-waits: it keeps a waiting loop from flooding the core
    (and, on SMT machines, its sibling) with speculative loads."""

    def codegen(context, builder, signature, args):
        if _X86:  # elsewhere the wait is a plain loop of atomic loads
            pause = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                   "llvm.x86.sse2.pause")
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def float_from_bits(typingctx, bits):
    """Reinterpret an int32 as float32 or an int64 as float64 (an LLVM bitcast, so it vectorizes).

    Used to build 2**n directly in the exponent field inside the activations.
    """
    if bits == types.int32:
        result, llvm_type = types.float32, ir.FloatType()
    elif bits == types.int64:
        result, llvm_type = types.float64, ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)

    return result(bits), codegen


def by_float_type(float32_impl, float64_impl):
    """A function callable from kernels that runs ``float32_impl`` on a float32 first
    argument and ``float64_impl`` on a float64 one, chosen at compile time.

    Lets one kernel source serve both dtypes while each dtype gets constants and
    polynomial degrees of its own precision.
    """

    def dispatch(value):
        raise NotImplementedError("callable from compiled kernels only")

    options = {key: val for key, val in JIT_OPTIONS.items() if key != "cache"}

    @overload(dispatch, jit_options=options)
    def _select(value):
        if value == types.float32:
            return float32_impl
        if value == types.float64:
            return float64_impl
        return None

    dispatch.__name__ = dispatch.__qualname__ = float32_impl.__name__.replace("_f32", "")
    dispatch.__doc__ = float32_impl.__doc__
    return dispatch


# --- keeping the on-disk cache honest -------------------------------------
# Numba stamps a cached kernel with a hash of the kernel's *own* source file
# only.  A kernel in kernels/lstm.py that calls a helper in
# kernels/activations.py would then survive an edit of the helper and keep
# running the old machine code -- and the tests would test stale code.  So the
# stamp of every fastrnn kernel covers all the sources kernels are built from.

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
KERNEL_SOURCES = ("_jit.py", "kernels")


def kernel_source_files() -> list[pathlib.Path]:
    files = []
    for name in KERNEL_SOURCES:
        path = PACKAGE_DIR / name
        files.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return files


@functools.lru_cache(maxsize=None)
def _hash_sources(stats: tuple) -> bytes:
    digest = hashlib.sha256()
    for path, _mtime, _size in stats:
        digest.update(path.encode())
        digest.update(pathlib.Path(path).read_bytes())
    return digest.digest()


def kernel_sources_stamp() -> bytes:
    """A content hash of every file the kernels are compiled from."""
    stats = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in kernel_source_files())
    return _hash_sources(stats)


def _install_cache_locators() -> None:
    from numba.core import caching

    class _KernelSourcesStamp:
        """Mixin: the freshness stamp of a fastrnn kernel covers all kernel sources."""

        @classmethod
        def from_function(cls, py_func, py_file):
            if not pathlib.Path(py_file).resolve().is_relative_to(PACKAGE_DIR):
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return (super().get_source_stamp(), kernel_sources_stamp())

    class UserDirLocator(_KernelSourcesStamp, caching.UserProvidedCacheLocator):
        pass

    class InTreeLocator(_KernelSourcesStamp, caching.InTreeCacheLocator):
        pass

    class UserWideLocator(_KernelSourcesStamp, caching.UserWideCacheLocator):
        pass

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed in Numba 0.61
    locators = impl._locator_classes
    if not any(getattr(cls, "__module__", None) == __name__ for cls in locators):
        locators[:0] = [UserDirLocator, InTreeLocator, UserWideLocator]


if os.environ.get("FASTRNN_PLAIN_NUMBA_CACHE") != "1":  # escape hatch if Numba's internals change
    try:
        _install_cache_locators()
    except (ImportError, AttributeError):  # pragma: no cover - a Numba without these internals
        pass

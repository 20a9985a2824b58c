"""The one place where Numba options are chosen.

Every kernel in fastrnn is compiled through :func:`jit`; no other module passes
options to Numba (``tests/test_style.py`` rejects a bare ``fastmath=``/``njit``
anywhere else).

Choices and why:

* ``cache=True`` -- compiled machine code is written next to the source and a
  second process loads it instead of recompiling (seconds -> milliseconds).
* ``nogil=True`` -- kernels release the GIL, so threads can run them
  concurrently; the kernels are stateless, so this is safe.
* ``error_model="numpy"`` -- division by zero gives inf/nan as in NumPy instead
  of raising.  The Python error model inserts a zero check before every
  division, and that branch stops LLVM from vectorizing the gate loops.
* ``boundscheck=False`` -- the wrappers validate every shape before a kernel
  runs, so the kernels never index out of bounds.
* ``fastmath`` -- the flags are named one by one.  ``nnan`` and ``ninf`` are
  left out on purpose: with them LLVM may assume no NaN/Inf exists and fold
  away the very comparisons that make saturating activations and NaN
  propagation behave like the reference.  ``reassoc`` lets reductions (the
  bias gradient, dot loops) vectorize; ``contract`` allows FMA; ``nsz``/``arcp``
  /``afn`` are harmless here and free LLVM to use reciprocal and fused forms.
"""

from __future__ import annotations

import numba

FASTMATH_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

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

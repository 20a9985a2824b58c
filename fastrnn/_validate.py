"""Argument checking and preparation for every public entry point.

Kernels never check anything (bounds checks are off), so every shape, dtype and
layout question is settled here, before any kernel runs.  The fast wrappers and
the reference twin share this module, so both accept and reject exactly the same
inputs.

What the wrappers hand to kernels is always: C-contiguous, native byte order,
one common dtype (float32 or float64), and private -- a copy wherever the
array is kept (in the cache) or written to, so a caller's array is never
modified and never aliased by anything returned.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from . import _memory

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(name: str, value, ndim: int, layout: str) -> np.ndarray:
    """``value`` as an ndarray of float32/float64 with ``ndim`` dims (no copy made here).

    ``layout`` is the documented shape, e.g. ``"(T, B, D)"``, used in messages.
    """
    if value is None:
        raise TypeError(f"{name} must be a float32 or float64 array of shape {layout}; got None")
    try:
        array = np.asarray(value)
    except ValueError as error:
        # NumPy's own message (e.g. for ragged nested lists) does not say which argument.
        raise ValueError(f"{name} could not be converted to an array of shape {layout}: {error}") from None
    dtype = array.dtype
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{name} must have dtype float32 or float64; got {dtype} "
            f"(convert explicitly, e.g. {name}.astype(np.float32))"
        )
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D with shape {layout}; got {array.ndim}-D shape {array.shape}")
    return array


def native(dtype: np.dtype) -> np.dtype:
    """The native-byte-order twin of a float dtype (byte-swapped input is accepted)."""
    return dtype.newbyteorder("=")


def check_same_dtype(name: str, array: np.ndarray, dtype: np.dtype, leader: str) -> None:
    if array.dtype == dtype:  # the common case, without building the native twin (~0.3 us)
        return
    if native(array.dtype) != dtype:
        raise TypeError(
            f"{name} has dtype {native(array.dtype)} but {leader} has dtype {dtype}; "
            "all arrays of one call must share a dtype (mixed float32/float64 is not allowed)"
        )


def check_shape(name: str, array: np.ndarray, expected: tuple, layout: str, **fields) -> None:
    """ValueError unless ``array.shape == expected``; ``layout`` names the documented shape, and
    with ``fields`` it is a ``str.format`` template filled in only for the message (formatting
    every message in advance was a fair part of a small call's checks)."""
    if array.shape != tuple(expected):
        layout = layout.format(**fields) if fields else layout
        raise ValueError(f"{name} has shape {array.shape}; expected {layout} = {tuple(expected)}")


def check_flag(check_finite) -> None:
    """``check_finite`` must be a real bool: a truthy string such as "no" would silently enable it."""
    if not isinstance(check_finite, (bool, np.bool_)):
        raise TypeError(f"check_finite must be True or False; got {type(check_finite).__name__} {check_finite!r}")


def check_finite_values(name: str, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf (raised because check_finite=True)")


def kernel_readable(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` itself when a kernel can read it as it is, else a private copy.

    Read-only arrays are copied too, although kernels never write them: Numba
    types read-only arrays separately, so one would compile a second kernel
    (seconds; see tests/test_layouts.py::test_layouts_compile_no_extra_kernel_specializations).
    """
    if array.flags.c_contiguous and array.flags.writeable and array.dtype == dtype:
        return array
    return private_copy(array, dtype)


def private_copy(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous, native-order copy that nobody else holds (in pooled memory when large,
    see :mod:`fastrnn._memory`)."""
    if array.size * dtype.itemsize >= _memory.POOL_FROM_BYTES:
        copy = _memory.empty(array.shape, dtype)
        copy[...] = array  # also converts byte order and layout
        return copy
    return np.array(array, dtype=dtype, order="C", copy=True)


BLOCK_ALIGN = _memory.ALIGN_BYTES  # bytes: a cache line, and the widest (AVX-512) vector
# Smaller sets of arrays come from glibc's heap free lists, which it does not trim; there the
# views of one block cost more (about 2 us for a small LSTM forward) than they save.  The
# memory pool draws the same line.
SEPARATE_BELOW_BYTES = _memory.POOL_FROM_BYTES


def one_block(dtype: np.dtype, shapes, originals=()) -> list[np.ndarray]:
    """C-contiguous arrays of ``shapes``, carved from one allocation: the first ``len(originals)``
    hold copies of ``originals`` (converted to ``dtype``, native order), the rest are uninitialized.

    Why one allocation: glibc's malloc gives memory back to the system when the
    free space at the top of its heap exceeds twice the largest block it has
    seen freed, and a forward's cache is several arrays of similar size.  Freed
    together, they went back every call and the next call faulted them in
    again: LSTM forward at T=256, B=1, H=128 took 1.81 ms with ~500 page faults
    per call, and 1.26 ms with 28 as one block (float32, median of 30, faults
    from ``getrusage``; with ``MALLOC_TRIM_THRESHOLD_`` set instead, 1.03 ms
    with 16).  As one block, the block itself sets glibc's threshold, so its
    memory stays in the heap between calls.  Each array starts a multiple of
    ``BLOCK_ALIGN`` bytes after the block's start, which the pool aligns, so every
    array starts on a cache line of its own.
    """
    # Plain Python integers and no ``ctypes``: NumPy's prod/cumsum on these few small tuples and
    # ``block.ctypes.data`` cost ~25 us a call, as much as a small forward's kernel.
    per_line = BLOCK_ALIGN // dtype.itemsize
    spans, total = [], 0
    for shape in shapes:
        size = math.prod(shape)
        spans.append((total, size))
        total += -(-size // per_line) * per_line
    if total * dtype.itemsize < SEPARATE_BELOW_BYTES:
        # One copying call per original: 0.25-0.35 us here, against 0.5 for an empty array
        # filled by assignment.
        return [private_copy(original, dtype) for original in originals] + [
            np.empty(shape, dtype) for shape in shapes[len(originals):]]
    block = _memory.empty((total,), dtype)
    arrays = [block[offset:offset + size].reshape(shape) for shape, (offset, size) in zip(shapes, spans)]
    for array, original in zip(arrays, originals):
        array[...] = original  # also converts byte order and layout
    return arrays


@functools.lru_cache(maxsize=None)
def _weight_layouts(gates: int) -> tuple[str, str, str, str]:
    """The gate factor ("4*", or "" for one gate) and the documented shapes of w_hh, w_ih and a
    bias for a cell with ``gates`` gates, for messages (built once, not on every call)."""
    g = "" if gates == 1 else f"{gates}*"
    return g, f"({g}H, H)", f"({g}H, D)", f"({g}H,)"


class ForwardArgs(NamedTuple):
    x: np.ndarray  # (T, B, D), private copy
    w_ih: np.ndarray  # (G*H, D), private copy
    w_hh: np.ndarray  # (G*H, H), private copy
    biases: tuple  # each (G*H,), private copies: (b,), or (b_ih, b_hh) for the GRU
    states: tuple  # each (B, H) array or None (None means zeros)
    dtype: np.dtype
    buffers: tuple  # uninitialized arrays of the shapes ``buffers(T, B, H)`` asked for


def prepare_forward(gates: int, x, w_ih, w_hh, biases: dict, states: dict, check_finite: bool,
                    buffers=None) -> ForwardArgs:
    """Validate the forward arguments of a cell with ``gates`` gates (G).

    ``biases`` maps bias argument names (``"b"``, or ``"b_ih"`` and ``"b_hh"``)
    and ``states`` maps state argument names (``"h0"``, ``"c0"``) to the
    caller's values, in the order they are checked.  ``buffers(T, B, H)``, if
    given, lists the shapes of further arrays the forward keeps in its cache;
    they share one allocation with the private copies (see :func:`one_block`).
    """
    check_flag(check_finite)
    g_layout, hh_layout, ih_layout, bias_layout = _weight_layouts(gates)
    x = as_float_array("x", x, 3, "(T, B, D)")
    dtype = x.dtype if x.dtype.isnative else native(x.dtype)
    w_hh = as_float_array("w_hh", w_hh, 2, hh_layout)
    w_ih = as_float_array("w_ih", w_ih, 2, ih_layout)
    biases = {name: as_float_array(name, value, 1, bias_layout) for name, value in biases.items()}
    for name, array in (("w_ih", w_ih), ("w_hh", w_hh), *biases.items()):
        check_same_dtype(name, array, dtype, "x")

    T, B, D = x.shape
    H = w_hh.shape[1]
    if H < 1:
        raise ValueError(f"w_hh has shape {w_hh.shape}; the hidden size H (its second dimension) must be at least 1")
    check_shape("w_hh", w_hh, (gates * H, H), "({g}H, H) with H={H} from w_hh.shape[1]", g=g_layout, H=H)
    check_shape("w_ih", w_ih, (gates * H, D), "({g}H, D) with H={H}, D={D} from x", g=g_layout, H=H, D=D)
    for name, array in biases.items():
        check_shape(name, array, (gates * H,), "({g}H,) with H={H}", g=g_layout, H=H)

    prepared_states = []
    for name, value in states.items():
        if value is None:
            prepared_states.append(None)
            continue
        array = as_float_array(name, value, 2, "(B, H)")
        check_same_dtype(name, array, dtype, "x")
        check_shape(name, array, (B, H), "(B, H) with B={B} from x, H={H} from w_hh", B=B, H=H)
        prepared_states.append(array)

    if check_finite:
        for name, array in (("x", x), ("w_ih", w_ih), ("w_hh", w_hh), *biases.items()):
            check_finite_values(name, array)
        for name, array in zip(states, prepared_states):
            if array is not None:
                check_finite_values(name, array)

    originals = (x, w_ih, w_hh)
    shapes = [x.shape, w_ih.shape, w_hh.shape, *(buffers(T, B, H) if buffers else ())]
    copies = one_block(dtype, shapes, originals)
    return ForwardArgs(
        *copies[:3],
        # Biases are read, never kept or written: the caller's array serves when the kernel can take it.
        biases=tuple([kernel_readable(array, dtype) for array in biases.values()]),
        states=tuple(prepared_states),
        dtype=dtype,
        buffers=tuple(copies[3:]),
    )


def prepare_lengths(lengths, T: int, B: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``lengths`` as a private (B,) int64 array with 0 <= lengths <= T (None means all T), and the
    (T, B) mask of padded steps, or None when there are none (computed once: small NumPy
    reductions cost about a microsecond each, a fair part of a small call)."""
    if lengths is None:
        steps = np.empty(B, np.int64)  # (B,); empty + fill: 0.27 us against 0.60 for np.full
        steps.fill(T)
        return steps, None
    try:
        array = np.asarray(lengths)
    except ValueError as error:
        raise ValueError(f"lengths could not be converted to an array of shape (B,): {error}") from None
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers (one length per sequence); got dtype {array.dtype}")
    if array.shape != (B,):
        raise ValueError(f"lengths has shape {array.shape}; expected (B,) = ({B},) with B from x")
    if B and (array.min() < 0 or array.max() > T):
        raise ValueError(f"lengths must lie in [0, T] = [0, {T}]; got values from {array.min()} to {array.max()}")
    array = np.array(array, dtype=np.int64, order="C", copy=True)
    return array, padding_mask(array, T)


def padding_mask(lengths: np.ndarray, T: int) -> np.ndarray | None:
    """(T, B) True at padded steps (t >= lengths[b]), or None when there are none."""
    if not lengths.size or lengths.min() >= T:
        return None
    return np.arange(T)[:, None] >= lengths[None, :]


def zero_padding(x: np.ndarray, mask: np.ndarray | None) -> None:
    """Zero the padded steps (``mask`` (T, B), from :func:`prepare_lengths`) of a private (T, B, D) copy.

    Padding is never an input to the recurrence, but the hoisted products
    (x @ w_ih.T, dgates.T @ x) read all T*B rows; with a NaN in padding,
    0 * NaN would put NaN into dw_ih.
    """
    if mask is not None:
        x[mask] = 0


def describe(value) -> str:
    """How an argument looks, for error messages: dtype, shape and layout, or its type."""
    if type(value) is not np.ndarray:
        return type(value).__name__
    dtype = value.dtype.name if value.dtype.isnative else f"byte-swapped {value.dtype.str}"
    layout = "C-contiguous" if value.flags.c_contiguous else "not C-contiguous"
    return f"{dtype} array of shape {value.shape}, {layout}"


_INT64 = np.dtype(np.int64)


def _is_plain(value, ndim: int) -> bool:
    return type(value) is np.ndarray and value.ndim == ndim and value.flags.c_contiguous


def _tampered(cache, name: str, producer: str, expected: str) -> ValueError:
    return ValueError(
        f"cache.{name} is not as {producer} left it: expected a C-contiguous {expected}; "
        f"got {describe(getattr(cache, name))}. Pass the cache unchanged"
    )


def check_cache(cache, cache_type: type, gates: int, producer: str) -> tuple:
    """Check a cache's type and internal shapes; return (T, B, D, H, dtype).

    A cache is normally what ``producer`` returned, but it is a plain tuple a
    caller could build or edit, and kernels would read out of bounds on a bad
    one, so every field is checked to be exactly what the forward allocates: a
    plain ndarray (not a subclass such as ``np.matrix``, whose ``*`` and
    indexing differ), C-contiguous, native-order, of the shape implied by
    ``x`` (T, B, D) and ``w_hh`` (H).
    """
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must be the {cache_type.__name__} returned by {producer}; got {type(cache).__name__}")
    x = cache.x
    if not _is_plain(x, 3) or x.dtype not in SUPPORTED_DTYPES:
        raise _tampered(cache, "x", producer, "float32 or float64 array of shape (T, B, D)")
    dtype = x.dtype
    T, B, D = x.shape
    if not _is_plain(cache.w_hh, 2) or cache.w_hh.dtype != dtype:
        raise _tampered(cache, "w_hh", producer, f"{dtype} array of shape ({_weight_layouts(gates)[0]}H, H)")
    H = cache.w_hh.shape[1]
    expected = {
        "lengths": (B,),
        "w_ih": (gates * H, D),
        "w_hh": (gates * H, H),
        "h": (T + 1, B, H),
        "c": (T + 1, B, H),
        "gates": (T, B, gates * H),
        "recurrent_n": (T, B, H),  # GRU only
    }
    for name in cache_type._fields[1:]:
        array = getattr(cache, name)
        want = _INT64 if name == "lengths" else dtype
        shape = expected[name]
        # The shape test implies the number of dimensions; flags (an object built per access) last.
        if type(array) is not np.ndarray or array.shape != shape or array.dtype != want or not array.flags.c_contiguous:
            raise _tampered(cache, name, producer, f"{want} array of shape {shape}")
    # lengths' values are not checked: kernels only compare t < lengths[b], so no
    # value can index out of bounds, and the forward validated them.
    return T, B, D, H, dtype


def prepare_backward(dy, T: int, B: int, H: int, dtype: np.dtype, dstates: dict, check_finite: bool) -> tuple:
    """Validate ``dy`` and the final-state gradients against a checked cache.

    Returns ``(dy, [dstate, ...])``: ``dy`` C-contiguous (the caller's array
    itself when it already is, native and writeable: kernels only read it) and
    each final-state gradient as a fresh array (zeros for None), because the
    kernels use it as the running gradient.
    """
    check_flag(check_finite)
    dy = as_float_array("dy", dy, 3, "(T, B, H)")
    check_same_dtype("dy", dy, dtype, "the forward pass (cache)")
    check_shape("dy", dy, (T, B, H), "(T, B, H), the shape of y")
    if check_finite:
        check_finite_values("dy", dy)
    prepared = []
    for name, value in dstates.items():
        if value is None:
            prepared.append(np.zeros((B, H), dtype))  # (B, H)
            continue
        array = as_float_array(name, value, 2, "(B, H)")
        check_same_dtype(name, array, dtype, "the forward pass (cache)")
        check_shape(name, array, (B, H), "(B, H), the shape of the final state")
        if check_finite:
            check_finite_values(name, array)
        prepared.append(private_copy(array, dtype))
    return kernel_readable(dy, dtype), prepared

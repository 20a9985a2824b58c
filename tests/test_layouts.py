"""Accepted inputs in any memory layout give the C-contiguous result; callers' arrays stay untouched.

Every layout is copied once to a C-contiguous native-order array before a
kernel sees it, so the results must be *bitwise* equal to the C-contiguous
call's, not merely close.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest

from fastrnn import _validate as v
from fastrnn.kernels import gru, lstm, rnn

from conftest import DTYPES, assert_close, flat_outputs, forward_args, make_problem, run_cell
from layouts import LAYOUTS, problem_in_layouts

IMPLS = ["fast", "reference"]


def in_layout(problem: dict, layouts) -> dict:
    """``problem`` with its arrays in ``layouts`` (a cycle, so mixed layouts meet in one call)."""
    return problem_in_layouts(problem, itertools.cycle(layouts).__next__)


def arrays_of(problem: dict) -> list:
    return [a for v in problem.values() for a in (v if isinstance(v, tuple) else (v,)) if a is not None]


LAYOUT_CASES = [pytest.param([name], id=name) for name in LAYOUTS if name != "C"]
LAYOUT_CASES.append(pytest.param(list(LAYOUTS), id="mixed"))
LAYOUT_CASES.append(pytest.param(list(reversed(LAYOUTS)), id="mixed_reversed"))


@pytest.mark.parametrize("layouts", LAYOUT_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", IMPLS)
def test_any_layout_gives_the_c_contiguous_result(cell, impl, dtype, layouts):
    problem = make_problem(cell, 4, 3, 5, 6, dtype)
    expected = run_cell(cell, impl, problem)
    spread = in_layout(problem, layouts)
    snapshot = [(a.copy(), a.flags.writeable) for a in arrays_of(spread)]

    actual = run_cell(cell, impl, spread)

    for got, want in zip(flat_outputs(actual), flat_outputs(expected)):
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        np.testing.assert_array_equal(got, want)
    for array, (before, writeable) in zip(arrays_of(spread), snapshot):
        np.testing.assert_array_equal(array, before, err_msg="an input was modified")
        assert array.flags.writeable == writeable, "an input's writeable flag changed"
    # Nothing returned (nor kept in the cache) may share memory with any input.
    forward, _ = cell.impl(impl)
    out = forward(*forward_args(cell, spread))
    for returned in [*flat_outputs(actual), *out.cache, out.y]:
        assert returned.flags.writeable, "outputs belong to the caller and must be writable"
        for array in arrays_of(spread):
            assert not np.shares_memory(returned, array)



@pytest.mark.parametrize("impl", IMPLS)
def test_outputs_do_not_alias_each_other(cell, impl):
    """Editing one returned array (e.g. clipping a gradient in place) cannot change another."""
    problem = make_problem(cell, 3, 2, 4, 5, np.float64)
    forward, backward = cell.impl(impl)
    out = forward(*forward_args(cell, problem))
    grads = backward(problem["dy"], out.cache, *problem["dstates_n"])
    returned = [out.y, *cell.final_state(out), *grads]
    for first, second in itertools.combinations(returned, 2):
        assert not np.shares_memory(first, second)


def _empty_cases():
    """Every combination of empty and size-1 axes, with and without optional arguments."""
    for T, B, D in itertools.product([0, 1, 2], [0, 1], [0, 3]):
        if 0 not in (T, B, D):
            continue
        for with_state, with_dstate in itertools.product([False, True], repeat=2):
            yield pytest.param(T, B, D, with_state, with_dstate,
                               id=f"T{T}-B{B}-D{D}-{'h0' if with_state else 'no_h0'}-{'dh_n' if with_dstate else 'no_dh_n'}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("T,B,D,with_state,with_dstate", list(_empty_cases()))
def test_empty_axes_are_defined_and_match_the_reference(cell, T, B, D, with_state, with_dstate, dtype):
    """T == 0: final state = initial state, dstate0 = dstate_n.  B == 0: all empty.  Weight grads 0 then.

    D == 0 (no input features) is a valid, input-free recurrence: dx and dw_ih are empty.
    """
    H = 4
    problem = make_problem(cell, T, B, D, H, dtype, with_state=with_state, with_dstate=with_dstate)
    y, states, grads = run_cell(cell, "fast", problem)
    y_ref, states_ref, grads_ref = run_cell(cell, "reference", problem)
    for got, want in zip([y, *states, *grads], [y_ref, *states_ref, *grads_ref]):
        assert_close(got, want)
    G = cell.gates
    n_biases = len(cell.bias_names)
    dx, dw_ih, dw_hh, dbiases, dstates0 = grads[0], grads[1], grads[2], grads[3:3 + n_biases], grads[3 + n_biases:]
    assert (y.shape, dx.shape, dw_ih.shape, dw_hh.shape) == ((T, B, H), (T, B, D), (G * H, D), (G * H, H))
    assert all(db.shape == (G * H,) for db in dbiases)
    for final, initial, d0, dn in zip(states, problem["states0"], dstates0, problem["dstates_n"]):
        assert final.shape == d0.shape == (B, H)
        if T == 0:
            np.testing.assert_array_equal(final, np.zeros((B, H)) if initial is None else initial)
            np.testing.assert_array_equal(d0, np.zeros((B, H)) if dn is None else dn)
    if T == 0 or B == 0:
        assert not dw_ih.any() and not dw_hh.any() and not any(db.any() for db in dbiases)


def test_layouts_compile_no_extra_kernel_specializations(cell):
    """Every layout reaches the kernels as a writeable C-contiguous array, so nothing recompiles.

    Numba compiles a separate specialization for each array layout and for
    read-only arrays (a second or more each, on a user's first call); before
    read-only ``dy`` was copied, it compiled one.
    """
    for dtype in DTYPES:
        for layout in LAYOUTS:
            run_cell(cell, "fast", in_layout(make_problem(cell, 2, 2, 3, 4, dtype), [layout]))
    for module in (lstm, rnn, gru):
        for kernel in vars(module).values():
            if not isinstance(kernel, numba.core.registry.CPUDispatcher):
                continue
            for signature in kernel.signatures:
                for argument in signature:
                    if isinstance(argument, numba.types.Array):
                        assert argument.layout == "C" and argument.mutable, f"{kernel.__name__}{signature}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_block_carves_disjoint_arrays_a_cache_line_apart(dtype):
    """The forward's cache shares one allocation (see ``_validate.one_block``); its arrays must
    still be separate, aligned, C-contiguous and writeable -- including empty ones."""
    dtype = np.dtype(dtype)
    shapes = [(3, 1, 5), (0, 2, 4), (7,), (2, 3), (1, 1, 1), (v.SEPARATE_BELOW_BYTES // dtype.itemsize,)]
    arrays = v.one_block(dtype, shapes)
    assert [a.shape for a in arrays] == shapes
    for index, array in enumerate(arrays):
        assert array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable
        array[...] = index + 1
    starts = [array.ctypes.data for array in arrays if array.size]  # an empty array points nowhere
    assert all((start - starts[0]) % v.BLOCK_ALIGN == 0 for start in starts)
    for index, array in enumerate(arrays):
        assert (array == index + 1).all(), "an array of the block was overwritten by another"
        for other in arrays[index + 1:]:
            assert not np.shares_memory(array, other)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("large", [False, True], ids=["separate", "one-block"])
def test_one_block_copies_the_originals(dtype, large):
    """With ``originals``, the first arrays are private copies converted to ``dtype``: C-ordered,
    native byte order, equal in value -- both below ``SEPARATE_BELOW_BYTES`` (separate arrays)
    and above it (views of one block)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(3)
    n = v.SEPARATE_BELOW_BYTES // dtype.itemsize if large else 6
    swapped = rng.standard_normal((n, 2)).astype(dtype.newbyteorder(">" if dtype.isnative else "<"))
    fortran = np.asfortranarray(rng.standard_normal((3, 5)).astype(dtype))
    plain = rng.standard_normal(4).astype(dtype)
    originals = (swapped, fortran, plain)
    keep = [original.copy() for original in originals]
    arrays = v.one_block(dtype, [a.shape for a in originals] + [(2, 3)], originals)
    assert [a.shape for a in arrays] == [(n, 2), (3, 5), (4,), (2, 3)]
    for array, original in zip(arrays, originals):
        assert array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable
        np.testing.assert_array_equal(array, original)
        assert not np.shares_memory(array, original)
    for array, original in zip(arrays, keep):
        array[...] = 0
    for original, before in zip(originals, keep):
        np.testing.assert_array_equal(original, before)


def test_forward_cache_arrays_share_no_memory(cell):
    """The cache's private copies and buffers come from one block: none may overlap another,
    and nothing returned outside the cache may point into it."""
    problem = make_problem(cell, 5, 3, 4, 6, np.float64)
    forward, _ = cell.impl("fast")
    out = forward(*forward_args(cell, problem))
    kept = [value for value in out.cache if isinstance(value, np.ndarray)]
    assert len(kept) >= 5
    for index, array in enumerate(kept):
        for other in kept[index + 1:]:
            assert not np.shares_memory(array, other)
    returned = [out.y, *cell.final_state(out)]
    for array in returned:
        assert not any(np.shares_memory(array, cached) for cached in kept)

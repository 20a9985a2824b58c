"""NaN and Inf: propagate exactly where the reference puts them, or raise with check_finite=True."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, RTOL, flat_outputs, forward_args, make_problem, run_cell

NONFINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def problem_slots(cell) -> list[tuple[str, str, int]]:
    """(argument name, problem key, index within a tuple entry or -1) for every array argument."""
    slots = [(name, name, -1) for name in ("x", "w_ih", "w_hh", *cell.bias_names, "dy")]
    slots += [(state, "states0", k) for k, state in enumerate(cell.state_names)]
    slots += [(f"d{state[0]}_n", "dstates_n", k) for k, state in enumerate(cell.state_names)]
    return slots


def poisoned(problem: dict, key: str, index: int, value: float) -> dict:
    """A copy of ``problem`` with one element of one argument set to ``value`` (the middle one)."""
    problem = dict(problem)
    if index < 0:
        array = problem[key].copy()
        array.flat[array.size // 2] = value
        problem[key] = array
    else:
        arrays = list(problem[key])
        arrays[index] = arrays[index].copy()
        arrays[index].flat[arrays[index].size // 2] = value
        problem[key] = tuple(arrays)
    return problem


def slot_params():
    from fastrnn.registry import CELLS

    return [pytest.param(cell_name, name, key, index, id=f"{cell_name}-{name}")
            for cell_name in sorted(CELLS) for name, key, index in problem_slots(CELLS[cell_name])]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("value", NONFINITE, ids=str)
@pytest.mark.parametrize("cell,name,key,index", slot_params(), indirect=["cell"])
def test_nonfinite_input_propagates_like_the_reference(cell, name, key, index, value, dtype):
    clean = make_problem(cell, 4, 3, 5, 6, dtype)
    problem = poisoned(clean, key, index, NONFINITE[value])
    # inf - inf = NaN is what is being tested; NumPy's "invalid value" warning about it is noise.
    with np.errstate(invalid="ignore"):
        fast, reference, unpoisoned = (flat_outputs(run_cell(cell, impl, p)) for impl, p in
                                       (("fast", problem), ("reference", problem), ("reference", clean)))
    # An infinite bias only saturates its gate, so "reaches an output" means "changes one", not "is NaN".
    assert any(not np.array_equal(a, b) for a, b in zip(reference, unpoisoned)), "the poison had no effect"
    for got, want in zip(fast, reference):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN positions differ")
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want), err_msg="+Inf positions differ")
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), err_msg="-Inf positions differ")
        finite = np.isfinite(want)
        if finite.any():
            scale = max(np.abs(want[finite]).max(), np.finfo(dtype).tiny)
            assert np.abs(got[finite] - want[finite]).max() <= RTOL[np.dtype(dtype)] * scale


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("value", NONFINITE, ids=str)
@pytest.mark.parametrize("cell,name,key,index", slot_params(), indirect=["cell"])
def test_check_finite_names_the_argument(cell, name, key, index, value, impl):
    problem = poisoned(make_problem(cell, 3, 2, 4, 5, np.float64), key, index, NONFINITE[value])
    forward, backward = cell.impl(impl)
    p = problem
    pattern = rf"^{name} contains NaN or Inf \(raised because check_finite=True\)$"
    if key in ("dy", "dstates_n"):
        # Backward checks only its own arguments; the (finite) forward runs unchecked.
        cache = forward(*forward_args(cell, p), check_finite=True).cache
        with pytest.raises(ValueError, match=pattern):
            backward(p["dy"], cache, *p["dstates_n"], check_finite=True)
    else:
        with pytest.raises(ValueError, match=pattern):
            forward(*forward_args(cell, p), check_finite=True)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_check_finite_changes_nothing_on_finite_input(cell, impl):
    p = make_problem(cell, 3, 2, 4, 5, np.float64)
    forward, backward = cell.impl(impl)
    results = []
    for flag in (False, True):
        out = forward(*forward_args(cell, p), check_finite=flag)
        grads = backward(p["dy"], out.cache, *p["dstates_n"], check_finite=flag)
        results.append([out.y, *cell.final_state(out), *grads])
    for unchecked, checked in zip(*results):
        np.testing.assert_array_equal(unchecked, checked)

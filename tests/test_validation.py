"""Every rejected input, with the exact error type and message, for both implementations.

The cases are generated from a description of each argument's shape in the
convention letters (T, B, D, H, G*H), so every argument gets every kind of bad
value: wrong ndim, a wrong size on each axis, each unsupported dtype, the other
float dtype, None; plus wrong and tampered caches.  ``pytest --collect-only -q
tests/test_validation.py`` lists them all by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from fastrnn.registry import CELLS

from conftest import forward_args, make_problem

T, B, D, H = 3, 2, 5, 4  # all different, so a swapped axis cannot pass unnoticed
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
BAD_DTYPES = [np.int64, np.int32, np.uint8, np.bool_, np.float16, np.longdouble,
              np.complex64, np.complex128, np.object_, np.str_]


class ArraySubclass(np.ndarray):
    """Stands for np.matrix, masked arrays and the like, whose operators differ from ndarray's."""


@dataclass(frozen=True)
class Case:
    """One bad call: ``phase`` is "forward" or "backward"; ``spoil`` edits the valid arguments."""

    id: str
    phase: str
    spoil: Callable  # (forward kwargs, backward kwargs) -> None, edits them in place
    error: type
    pattern: str
    dtype: np.dtype = F64  # of the valid arguments the spoiler starts from


def dstate_name(state: str) -> str:
    return f"d{state[0]}_n"  # h0 -> dh_n, c0 -> dc_n


def arg_letters(cell) -> tuple[dict, dict]:
    """Each argument's shape in letters, in the order the wrappers check them."""
    forward = {"x": ("T", "B", "D"), "w_hh": ("GH", "H"), "w_ih": ("GH", "D")}
    forward.update({bias: ("GH",) for bias in cell.bias_names})
    forward.update({state: ("B", "H") for state in cell.state_names})
    backward = {"dy": ("T", "B", "H")}
    backward.update({dstate_name(state): ("B", "H") for state in cell.state_names})
    return forward, backward


def layout(cell, letters: tuple) -> str:
    """The documented layout, as the messages spell it: ``(4*H, D)``, ``(H,)``, ``(B, H)``."""
    g = "" if cell.gates == 1 else f"{cell.gates}*"
    names = [f"{g}H" if letter == "GH" else letter for letter in letters]
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def shape_of(letters: tuple, sizes: dict) -> tuple:
    return tuple(sizes[letter] for letter in letters)


def sizes_for(cell) -> dict:
    return {"T": T, "B": B, "D": D, "H": H, "GH": cell.gates * H}


def replace(kwargs_index: int, name: str, make: Callable) -> Callable:
    """A spoiler that replaces argument ``name`` of the forward (0) or backward (1) kwargs."""
    def spoil(forward_kwargs, backward_kwargs):
        kwargs = (forward_kwargs, backward_kwargs)[kwargs_index]
        kwargs[name] = make(kwargs[name])
    return spoil


def grow(array: np.ndarray, axis: int) -> np.ndarray:
    """``array`` with one more entry along ``axis``."""
    return np.concatenate([array, np.take(array, [0], axis=axis)], axis=axis)


# Which argument defines which size: growing one of these axes changes what the
# other arguments are checked against, so a different argument gets the blame.
DEFINES = {("x", 0): "T", ("x", 1): "B", ("x", 2): "D", ("w_hh", 1): "H"}


def ndim_cases(cell, index: int, letters: dict):
    for name, shape in letters.items():
        expected = re.escape(layout(cell, shape))
        for label, make, got in (("extra_axis", lambda a: a[np.newaxis], len(shape) + 1),
                                 ("missing_axis", lambda a: a[..., 0], len(shape) - 1)):
            yield Case(f"{name}-{label}", ("forward", "backward")[index], replace(index, name, make), ValueError,
                       rf"^{name} must be {len(shape)}-D with shape {expected}; got {got}-D shape")


def shape_cases(cell, index: int, letters: dict):
    """Grow each axis of each argument by one; the message names the argument that no longer fits."""
    base = sizes_for(cell)
    for name, shape in letters.items():
        for axis in range(len(shape)):
            sizes = dict(base)
            if index == 0 and (name, axis) in DEFINES:
                sizes[DEFINES[name, axis]] += 1
                sizes["GH"] = cell.gates * sizes["H"]
            # The first argument, in check order, whose shape no longer fits is blamed.
            for blamed, blamed_letters in letters.items():
                actual = shape_of(blamed_letters, base)
                if blamed == name:
                    actual = tuple(n + (k == axis) for k, n in enumerate(actual))
                expected = shape_of(blamed_letters, sizes)
                if actual != expected:
                    break
            else:
                continue  # T is free in the forward: any length is a valid sequence
            pattern = (rf"^{blamed} has shape {re.escape(str(actual))}; "
                       rf"expected {re.escape(layout(cell, blamed_letters))}.* = {re.escape(str(expected))}$")
            yield Case(f"{name}-axis{axis}+1", ("forward", "backward")[index],
                       replace(index, name, lambda a, axis=axis: grow(a, axis)), ValueError, pattern)


def dtype_cases(cell, index: int, letters: dict):
    for name in letters:
        for dtype in BAD_DTYPES:
            shown = re.escape(str(np.ones(1).astype(dtype).dtype))
            yield Case(f"{name}-{np.dtype(dtype).name}", ("forward", "backward")[index],
                       replace(index, name, lambda a, dtype=dtype: a.astype(dtype)), TypeError,
                       rf"^{name} must have dtype float32 or float64; got {shown}")


def mixed_cases(cell, index: int, letters: dict, base: np.dtype):
    """Cast one argument to the other float dtype (also byte-swapped): covers every mixed pair."""
    other = F32 if base == F64 else F64
    leader = "x" if index == 0 else re.escape("the forward pass (cache)")
    for name in letters:
        # Casting x makes every other argument the odd one out; w_ih is checked first.
        blamed, blamed_dtype, leader_dtype = ("w_ih", base, other) if name == "x" else (name, other, base)
        for swapped in (False, True):
            target = other.newbyteorder(">" if other.isnative else "<") if swapped else other
            yield Case(f"{name}-{base.name}-with-{'swapped-' if swapped else ''}{other.name}",
                       ("forward", "backward")[index],
                       replace(index, name, lambda a, target=target: a.astype(target)), TypeError,
                       rf"^{blamed} has dtype {blamed_dtype} but {leader} has dtype {leader_dtype}; ", base)


def none_cases(cell):
    forward, backward = arg_letters(cell)
    for index, letters in enumerate((forward, backward)):
        for name in letters:
            if name in cell.state_names or name.endswith("_n"):
                continue  # None is documented to mean zeros
            yield Case(f"{name}-None", ("forward", "backward")[index], replace(index, name, lambda a: None),
                       TypeError, rf"^{name} must be a float32 or float64 array of shape "
                                  rf"{re.escape(layout(cell, letters[name]))}; got None$")


def other_forward_cases(cell):
    yield Case("x-ragged-list", "forward", replace(0, "x", lambda a: [a[0].tolist(), a[1, :1].tolist()]),
               ValueError, r"^x could not be converted to an array of shape \(T, B, D\)")
    for bias in cell.bias_names:
        yield Case(f"{bias}-scalar", "forward", replace(0, bias, lambda a: 0.5), ValueError,
                   rf"^{bias} must be 1-D with shape .*; got 0-D shape \(\)")
    yield Case("w_hh-H0", "forward", replace(0, "w_hh", lambda a: a[:0, :0]), ValueError,
               r"^w_hh has shape \(0, 0\); the hidden size H .* must be at least 1")
    for phase, index in (("forward", 0), ("backward", 1)):
        for flag in ("no", 1, None):
            yield Case(f"check_finite-{flag!r}", phase,
                       replace(index, "check_finite", lambda _, flag=flag: flag), TypeError,
                       rf"^check_finite must be True or False; got {type(flag).__name__} ")


def reference_cache(cell):
    return cell.ref_forward(*forward_args(cell, make_problem(cell, T, B, D, H, np.float64))).cache


def is_tampering(array, make) -> bool:
    changed = make(array)
    return not (type(changed) is np.ndarray and changed.dtype == array.dtype and changed.shape == array.shape
                and changed.flags.c_contiguous)


def cache_cases(cell):
    cache_type = type(reference_cache(cell)).__name__
    producer = f"{cell.name}_forward"
    other_cell = CELLS["rnn" if cell.name == "lstm" else "lstm"]
    other_type = type(reference_cache(other_cell)).__name__
    for label, make, got in (("other-cell", lambda cache: reference_cache(other_cell), other_type),
                             ("plain-tuple", tuple, "tuple"), ("list", list, "list"), ("None", lambda c: None, "NoneType")):
        yield Case(f"cache-{label}", "backward", replace(1, "cache", make), TypeError,
                   rf"^cache must be the {cache_type} returned by {producer}; got {got}$")

    tamperings = {
        "None": lambda a: None,
        "shorter": lambda a: a[:-1].copy(),
        "float32": lambda a: a.astype(np.float32),
        "int64": lambda a: a.astype(np.int64),
        "F-order": np.asfortranarray,
        "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
        "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder(">")),
        "extra-axis": lambda a: a[np.newaxis],
        "subclass": lambda a: a.view(ArraySubclass),
    }
    sample = reference_cache(cell)
    for field in sample._fields:
        for label, make in tamperings.items():
            if not is_tampering(getattr(sample, field), make):
                continue  # e.g. int64 or F-order of the 1-D int64 lengths: nothing changes
            # x defines T and the dtype, so changing those puts the blame on what no longer fits x.
            blamed = {("x", "shorter"): "h", ("x", "float32"): "w_hh"}.get((field, label), field)
            yield Case(f"cache.{field}-{label}", "backward",
                       replace(1, "cache", lambda c, field=field, make=make: c._replace(**{field: make(getattr(c, field))})),
                       ValueError, rf"^cache\.{blamed} is not as {producer} left it: expected a C-contiguous ")


def cases_for(cell):
    forward, backward = arg_letters(cell)
    for index, letters in enumerate((forward, backward)):
        yield from ndim_cases(cell, index, letters)
        yield from shape_cases(cell, index, letters)
        yield from dtype_cases(cell, index, letters)
        for base in (F32, F64):
            yield from mixed_cases(cell, index, letters, base)
    yield from none_cases(cell)
    yield from other_forward_cases(cell)
    yield from cache_cases(cell)


CASES = [pytest.param(name, case, id=f"{name}-{case.phase}-{case.id}")
         for name in sorted(CELLS) for case in cases_for(CELLS[name])]


def valid_kwargs(cell, dtype=np.float64):
    p = make_problem(cell, T, B, D, H, dtype)
    forward = dict(zip(cell.arg_names, forward_args(cell, p)), check_finite=False)
    backward = dict(dy=p["dy"], check_finite=False)
    backward.update((dstate_name(s), d) for s, d in zip(cell.state_names, p["dstates_n"]))
    return forward, backward


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("cell,case", CASES, indirect=["cell"])
def test_bad_input_is_rejected_with_a_clear_message(cell, case, impl):
    forward_kwargs, backward_kwargs = valid_kwargs(cell, case.dtype)
    forward, backward = cell.impl(impl)
    if case.phase == "forward":
        case.spoil(forward_kwargs, backward_kwargs)
        with pytest.raises(case.error, match=case.pattern):
            forward(**forward_kwargs)
        return
    backward_kwargs["cache"] = forward(**forward_kwargs).cache
    case.spoil(forward_kwargs, backward_kwargs)
    with pytest.raises(case.error, match=case.pattern):
        backward(**backward_kwargs)


def test_the_valid_arguments_are_accepted(cell):
    """Guards the cases above: without the spoiling, the very same call succeeds."""
    for dtype in (F32, F64):
        forward_kwargs, backward_kwargs = valid_kwargs(cell, dtype)
        for impl in ("fast", "reference"):
            forward, backward = cell.impl(impl)
            backward(**backward_kwargs, cache=forward(**forward_kwargs).cache)


def test_every_argument_gets_every_kind_of_case(cell):
    """The generators cover each argument of each phase (a renamed argument cannot drop out)."""
    ids = {case.id for case in cases_for(cell)}
    forward, backward = arg_letters(cell)
    for name in (*forward, *backward):
        for kind in ("extra_axis", "missing_axis", "float16", "complex128", "object", "bool"):
            assert f"{name}-{kind}" in ids, f"{name}-{kind}"
        assert any(i.startswith(f"{name}-float64-with-") for i in ids), name

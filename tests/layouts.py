"""Memory layouts a caller may hand us, as functions from a C-contiguous array to the same values.

Shared by tests/test_layouts.py (each layout once, compared bitwise) and
tests/test_properties.py (layouts drawn at random).
"""

from __future__ import annotations

import numpy as np


def f_order(a: np.ndarray) -> np.ndarray:
    return np.asfortranarray(a)


def strided(a: np.ndarray) -> np.ndarray:
    """Every other element of a buffer twice as large along every axis."""
    buffer = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    every_other = tuple(slice(None, None, 2) for _ in a.shape)
    buffer[every_other] = a
    return buffer[every_other]


def negative_strides(a: np.ndarray) -> np.ndarray:
    """A view with negative strides on every axis (a reversed copy, reversed again)."""
    return np.flip(np.flip(a).copy())


def byte_swapped(a: np.ndarray) -> np.ndarray:
    return a.astype(a.dtype.newbyteorder("S"))


def read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def swapped_f_order_read_only(a: np.ndarray) -> np.ndarray:
    return read_only(f_order(byte_swapped(a)))


LAYOUTS = {
    "C": np.ascontiguousarray,
    "F": f_order,
    "strided": strided,
    "negative_strides": negative_strides,
    "byte_swapped": byte_swapped,
    "read_only": read_only,
    "swapped_F_read_only": swapped_f_order_read_only,
}


def as_layout(layout: str, value):
    """``value`` in ``layout``; None (a default state) stays None."""
    return None if value is None else LAYOUTS[layout](value)


def problem_in_layouts(problem: dict, next_layout) -> dict:
    """A ``make_problem`` dict with each array in the layout ``next_layout()`` names (called once per array)."""
    converted = {}
    for key, value in problem.items():
        if isinstance(value, tuple):
            converted[key] = tuple(as_layout(next_layout(), v) for v in value)
        else:
            converted[key] = as_layout(next_layout(), value)
    return converted

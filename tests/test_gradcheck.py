"""Analytic gradients of both twins against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn as fr
from conftest import GRADCHECK_RTOL, make_problem


def cell_loss(cell, impl):
    """L = sum(dy*y) + sum(dh_n*h_n) [+ sum(dc_n*c_n)] as a function of every input (keyword arguments)."""
    forward, _ = cell.impl(impl)

    def loss(dy, **rest):
        dstates = [rest["d" + name[:-1] + "_n"] for name in cell.state_names]
        out = forward(*(rest[name] for name in cell.arg_names))
        total = np.sum(dy * out.y)
        for d, s in zip(dstates, cell.final_state(out)):
            total += np.sum(d * s)
        return total

    return loss


def analytic(cell, impl, args):
    forward, backward = cell.impl(impl)
    out = forward(*(args[name] for name in cell.arg_names))
    grads = backward(args["dy"], out.cache, *(args["d" + n[:-1] + "_n"] for n in cell.state_names))
    return {name[1:]: g for name, g in zip(cell.grad_names, grads)}


def problem_args(cell, T=4, B=2, D=3, H=5, seed=1):
    p = make_problem(cell, T, B, D, H, np.float64, seed=seed)
    args = {k: p[k] for k in ("x", "w_ih", "w_hh", *cell.bias_names, "dy")}
    args.update(zip(cell.state_names, p["states0"]))
    args.update(("d" + n[:-1] + "_n", d) for n, d in zip(cell.state_names, p["dstates_n"]))
    return args


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_gradients_match_finite_differences(cell, impl):
    args = problem_args(cell)
    report = fr.gradcheck(cell_loss(cell, impl), args, analytic(cell, impl, args))
    assert set(report) == set(cell.arg_names)
    assert report.worst <= GRADCHECK_RTOL, str(report)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_gradients_in_saturation(cell, impl):
    """Large weights push gates towards saturation, where sloppy derivatives show."""
    args = problem_args(cell, seed=7)
    for name in ("w_ih", "w_hh"):
        args[name] = args[name] * 3
    report = fr.gradcheck(cell_loss(cell, impl), args, analytic(cell, impl, args), eps=1e-7)
    assert report.worst <= GRADCHECK_RTOL, str(report)


def test_gradcheck_catches_a_wrong_gradient(cell):
    args = problem_args(cell)
    grads = analytic(cell, "fast", args)
    grads["w_hh"] = grads["w_hh"].copy()
    grads["w_hh"][1, 2] *= 1.001
    report = fr.gradcheck(cell_loss(cell, "fast"), args, grads)
    assert report["w_hh"] > GRADCHECK_RTOL
    assert report["x"] <= GRADCHECK_RTOL


def test_gradcheck_restores_every_argument_between_evaluations(cell):
    """The classic broken check lets h0 drift between the +eps and -eps runs.

    This loss mutates h0 in place (as a buggy forward might); gradcheck must
    still hand each evaluation pristine inputs, and leave the caller's alone.
    """
    args = problem_args(cell)
    original = {k: v.copy() for k, v in args.items()}
    inner = cell_loss(cell, "fast")

    def mutating_loss(**kw):
        value = inner(**kw)
        kw["h0"] += 1.0
        kw["w_hh"] *= 2.0
        return value

    report = fr.gradcheck(mutating_loss, args, analytic(cell, "fast", args))
    assert report.worst <= GRADCHECK_RTOL, str(report)
    for k in args:
        np.testing.assert_array_equal(args[k], original[k])


def test_gradcheck_subsampling_and_errors():
    loss = lambda a: float(np.sum(a**3))  # noqa: E731
    a = np.linspace(-1, 1, 50)
    report = fr.gradcheck(loss, {"a": a}, {"a": 3 * a**2}, max_checks=10)
    assert report["a"] < 1e-8
    assert "max rel error" in str(report)
    with pytest.raises(ValueError, match="not among args"):
        fr.gradcheck(loss, {"a": a}, {"b": a})
    with pytest.raises(ValueError, match="shape"):
        fr.gradcheck(loss, {"a": a}, {"a": a[:3]})

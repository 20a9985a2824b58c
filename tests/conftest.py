"""Shared tolerances and problem generators for the test suite."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from fastrnn.registry import CELLS

# Relative tolerances, normwise: max|actual - expected| <= RTOL * max|expected|.
# float64: both implementations round differently (hoisted GEMMs, fused
#   multiply-adds, reassociated sums) but stay within a few hundred ulps
#   (~1e-13) on these sizes; 1e-10 is the project's contract and leaves room.
# float32: the contract is 1e-4; observed error is ~1e-6 (a few ulps of 6e-8,
#   amplified through the recurrence).
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
# Gradients against central differences (float64 only): the project's contract.
GRADCHECK_RTOL = 1e-7

DTYPES = [np.float32, np.float64]

# Hypothesis profiles (tests/test_properties.py); choose with HYPOTHESIS_PROFILE=long.
# "ci" (default): a few hundred examples in all, the same ones every run
#   (derandomize), so CI is reproducible and never flaky; ~5 s on 2 cores.
# "long": 10,000 fresh random examples per property test, run on demand.
# deadline=None in both: the first example of a dtype compiles the kernels.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def assert_close(actual, expected, rtol=None, name="array", floor=0.0):
    """Normwise relative comparison; ``floor`` is a lower bound on the scale (see saturated_gradient_floor)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
    if rtol is None:
        rtol = RTOL[expected.dtype]
    if expected.size == 0:
        return
    scale = max(float(np.abs(expected).max()), floor, np.finfo(expected.dtype).tiny)
    error = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) / scale
    assert error <= rtol, f"{name}: relative error {error:.3e} > {rtol:.0e}"


def saturated_gradient_floor(problem) -> float:
    """The size a gradient would have if no gate were saturated: max|upstream grad| * max(1, max|w|).

    Near saturation ``1 - tanh(a)**2`` and ``s * (1 - s)`` are computed from an
    activation rounded to about one ulp of 1, so a gradient carries an
    *absolute* error of about eps times this size, however small the gradient
    itself is.  Normwise relative error of an all-tiny gradient (e.g. dh0 when
    the first step saturates) is therefore meaningless; comparing against this
    floor keeps the tolerance relative to the gradient's natural size.
    Observed without it: dh0 of size 5e-8 off by 100% in float32 (RNN, H=1,
    first pre-activation ~9), found by the property tests.
    """
    upstream = [problem["dy"], *(d for d in problem["dstates_n"] if d is not None)]
    weights = [problem["w_ih"], problem["w_hh"]]
    largest = lambda arrays: max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)  # noqa: E731
    return largest(upstream) * max(1.0, largest(weights))


def make_problem(cell, T, B, D, H, dtype, *, with_state=True, with_dstate=True, seed=0, scale=0.5):
    """Random inputs for ``cell`` as a dict of forward args, states and upstream gradients.

    Each bias is its own key, named as the cell names it (``"b"``, or ``"b_ih"`` and ``"b_hh"``).
    """
    rng = np.random.default_rng(seed)
    G = cell.gates

    def draw(*shape, s=1.0):
        return (s * rng.standard_normal(shape)).astype(dtype)

    return {
        "x": draw(T, B, D),
        "w_ih": draw(G * H, D, s=scale),
        "w_hh": draw(G * H, H, s=scale),
        **{name: draw(G * H, s=scale) for name in cell.bias_names},
        "states0": tuple(draw(B, H) if with_state else None for _ in cell.state_names),
        "dy": draw(T, B, H),
        "dstates_n": tuple(draw(B, H) if with_dstate else None for _ in cell.state_names),
    }


def biases(cell, problem) -> tuple:
    return tuple(problem[name] for name in cell.bias_names)


def forward_args(cell, problem) -> tuple:
    """The forward's positional arguments (x, w_ih, w_hh, *biases, *states0) from a ``make_problem`` dict."""
    return (problem["x"], problem["w_ih"], problem["w_hh"], *biases(cell, problem), *problem["states0"])


def run_cell(cell, impl, problem):
    """Forward then backward through ``impl`` ("fast" or "reference").

    Returns (y, final_states, grads), grads in order dx, dw_ih, dw_hh, *dbiases, *dstates0.
    """
    forward, backward = cell.impl(impl)
    out = forward(*forward_args(cell, problem))
    grads = backward(problem["dy"], out.cache, *problem["dstates_n"])
    return out.y, cell.final_state(out), tuple(grads)


def flat_outputs(result) -> list:
    """``run_cell``'s (y, final_states, grads) as one list of arrays."""
    y, states, grads = result
    return [y, *states, *grads]


@pytest.fixture(params=sorted(CELLS), ids=lambda name: name)
def cell(request):
    return CELLS[request.param]


_FORK_WAIT = """
import signal, time
deadline = time.monotonic() + 20
while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
    time.sleep(0.01)
if done[0] == 0:  # the child hangs on a lock it inherited
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    sys.exit(HUNG)
sys.exit(os.WEXITSTATUS(done[1]) if os.WIFEXITED(done[1]) else 2)
"""


def run_forking_script(script: str, hung: str) -> None:
    """Run ``script`` in a fresh interpreter (this test process has other libraries' threads, and
    JAX warns on fork).  The script imports os and sys, forks, leaves the child's verdict in its
    exit status and the child's pid in ``pid``; a child still running after 20 s is killed and
    reported as ``hung``."""
    import os
    import subprocess
    import sys

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    source = script + f"HUNG = {hung!r}\n" + _FORK_WAIT
    done = subprocess.run([sys.executable, "-c", source], timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

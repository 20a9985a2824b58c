"""Interleaved timing of several implementations of the same case.

Shared machines are noisy and their speed drifts, so implementations are
compared only within one run: every round times each implementation once, in
a rotating order, and the figure reported is the median over rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Timing:
    seconds: float  # median time per call
    samples: list = field(default_factory=list)  # time per call of each round
    calls_per_sample: int = 1


def _time_calls(run: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls


def measure(runners: dict[str, Callable[[], None]], *, min_sample: float = 2e-3, rounds: int = 7,
            budget: float = 1.0, min_rounds: int = 3, cold: tuple = ("reference",)) -> dict[str, Timing]:
    """Median seconds per call of each runner, measured interleaved.

    Each runner is called once first (compilation, caches, allocator warm-up)
    and then timed once; runners named in ``cold`` (plain NumPy, nothing to
    compile) skip the warm-up call.  A runner whose single call already exceeds
    ``budget`` keeps that one timing (a slow reference must not stall the run);
    the others take samples, each repeating the call until it lasts
    ``min_sample`` seconds, for ``rounds`` rounds -- fewer, but at least
    ``min_rounds``, once they have used ``budget`` seconds.
    """
    calls = {}
    samples: dict[str, list] = {}
    for name, run in runners.items():
        if name not in cold:
            run()
        once = _time_calls(run, 1)
        calls[name] = max(1, int(np.ceil(min_sample / max(once, 1e-9))))
        samples[name] = [once] if once > budget else []
    finished = {name for name in runners if samples[name]}  # too slow to repeat
    spent = dict.fromkeys(runners, 0.0)
    names = list(runners)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        active = [n for n in order if n not in finished and (len(samples[n]) < min_rounds or spent[n] < budget)]
        if not active:
            break
        for name in active:
            seconds = _time_calls(runners[name], calls[name])
            samples[name].append(seconds)
            spent[name] += seconds * calls[name]
    return {name: Timing(float(np.median(s)), s, calls[name]) for name, s in samples.items()}


def gemm_gflops(dtype, n: int = 1024, repeats: int = 5) -> float:
    """This machine's GEMM rate (best of ``repeats``) for an n x n x n ``np.matmul``: the peak figure."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    np.matmul(a, b, out=out)
    best = min(_time_calls(lambda: np.matmul(a, b, out=out), 1) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9

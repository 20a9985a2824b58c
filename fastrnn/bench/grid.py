"""The shape grids, defined once for ``fastrnn bench``, asv, pytest-benchmark and the CI gate."""

from __future__ import annotations

import itertools
from typing import NamedTuple


class Shape(NamedTuple):
    T: int  # steps
    B: int  # batch
    D: int  # input features
    H: int  # hidden size

    def label(self) -> str:
        return f"T={self.T} B={self.B} D={self.D} H={self.H}"


def product(batches, hiddens, seq_lens, input_size=None) -> list[Shape]:
    """Every (B, H, T) combination, D = H unless ``input_size`` is given."""
    return [Shape(T, B, input_size or H, H) for B, H, T in itertools.product(batches, hiddens, seq_lens)]


# The grid the speed targets are stated on (issue "Speed"): float32, D = H.
TARGET = dict(batches=(1, 32), hiddens=(32, 128, 512), seq_lens=(32, 256))
# fastrnn bench without options: the target grid with T=128 for T=256, so that
# it finishes within a minute with torch and JAX (JAX compiles every shape);
# the README's table is the full TARGET grid (--seq-len 32 256).
DEFAULT = dict(batches=(1, 32), hiddens=(32, 128, 512), seq_lens=(32, 128))
# Seconds, for a smoke run and for the CI regression gate.
QUICK = dict(batches=(1, 32), hiddens=(32, 128), seq_lens=(32,))
# asv: the axes of the issue "Benchmark suite"; trimmed there, not here.
ASV = dict(batches=(1, 32), hiddens=(32, 128, 512, 1024), seq_lens=(16, 128, 1024))

MODES = ("fwd", "fwdbwd")  # forward only; forward then backward of sum(y * dy)

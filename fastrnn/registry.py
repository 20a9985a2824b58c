"""One table of cells that drives the tests, ``fastrnn bench`` and the benchmarks.

Adding a cell means adding one :class:`Cell` entry here.  The uniform calling
convention lets generic code treat every cell alike:

* ``forward(x, w_ih, w_hh, b, *states0)`` -> ``(y, final_state(out), cache)``
* ``backward(dy, cache, *dstates_n)`` -> ``(dx, dw_ih, dw_hh, db, *dstates0)``

where ``states0`` is ``(h0,)`` for the RNN and ``(h0, c0)`` for the LSTM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import cells, reference


@dataclass(frozen=True)
class Cell:
    name: str
    gates: int  # G
    state_names: tuple  # names of the initial states, e.g. ("h0", "c0")
    forward: Callable  # fast (Numba) implementation
    backward: Callable
    ref_forward: Callable  # NumPy reference twin
    ref_backward: Callable
    final_state: Callable  # forward output -> tuple of final states

    def impl(self, name: str) -> tuple[Callable, Callable]:
        """(forward, backward) of ``"fast"`` or ``"reference"``."""
        if name == "fast":
            return self.forward, self.backward
        if name == "reference":
            return self.ref_forward, self.ref_backward
        raise ValueError(f"impl must be 'fast' or 'reference'; got {name!r}")

    def flops(self, T: int, B: int, D: int, H: int, backward: bool = False) -> float:
        """Multiply-add FLOPs of the matrix products (2 per MAC); elementwise work not counted.

        Forward: x @ w_ih.T and h @ w_hh.T over T*B rows.  Backward does three
        products of the same size per weight (dx/dh, dw_ih/dw_hh), so
        forward+backward is three times the forward.
        """
        forward = 2.0 * T * B * self.gates * H * (D + H)
        return 3 * forward if backward else forward


CELLS: dict[str, Cell] = {
    "lstm": Cell(
        name="lstm",
        gates=4,
        state_names=("h0", "c0"),
        forward=cells.lstm_forward,
        backward=cells.lstm_backward,
        ref_forward=reference.lstm_forward,
        ref_backward=reference.lstm_backward,
        final_state=lambda out: tuple(out.state),
    ),
    "rnn": Cell(
        name="rnn",
        gates=1,
        state_names=("h0",),
        forward=cells.rnn_forward,
        backward=cells.rnn_backward,
        ref_forward=reference.rnn_forward,
        ref_backward=reference.rnn_backward,
        final_state=lambda out: (out.h_n,),
    ),
}

"""One table of cells that drives the tests, ``fastrnn bench`` and the benchmarks.

Adding a cell means adding one :class:`Cell` entry here.  The uniform calling
convention lets generic code treat every cell alike:

* ``forward(x, w_ih, w_hh, *biases, *states0)`` -> ``(y, final_state(out), cache)``
* ``backward(dy, cache, *dstates_n)`` -> ``(dx, dw_ih, dw_hh, *dbiases, *dstates0)``

where ``biases`` are named by ``bias_names`` -- ``("b",)`` for the LSTM and RNN,
whose two torch biases are only ever added, ``("b_ih", "b_hh")`` for the GRU,
whose ``r`` gate scales the recurrent bias -- each ``(G*H,)``, and ``states0``
is named by ``state_names``: ``(h0,)`` for the RNN and GRU, ``(h0, c0)`` for
the LSTM.  Code that builds arguments draws one ``(G*H,)`` array per bias name
(:meth:`Cell.arg_names` lists them all in calling order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import cells, reference


@dataclass(frozen=True)
class Cell:
    name: str
    gates: int  # G
    bias_names: tuple  # names of the bias arguments, each (G*H,): ("b",) or ("b_ih", "b_hh")
    state_names: tuple  # names of the initial states, e.g. ("h0", "c0")
    forward: Callable  # fast (Numba) implementation
    backward: Callable
    ref_forward: Callable  # NumPy reference twin
    ref_backward: Callable
    final_state: Callable  # forward output -> tuple of final states

    @property
    def arg_names(self) -> tuple:
        """The forward's positional argument names, in order: x, w_ih, w_hh, *bias_names, *state_names."""
        return ("x", "w_ih", "w_hh", *self.bias_names, *self.state_names)

    @property
    def grad_names(self) -> tuple:
        """The backward's results, in order: dx, dw_ih, dw_hh, d<bias>..., d<state>0..."""
        return tuple("d" + name for name in self.arg_names)

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
        bias_names=("b",),
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
        bias_names=("b",),
        state_names=("h0",),
        forward=cells.rnn_forward,
        backward=cells.rnn_backward,
        ref_forward=reference.rnn_forward,
        ref_backward=reference.rnn_backward,
        final_state=lambda out: (out.h_n,),
    ),
    "gru": Cell(
        name="gru",
        gates=3,
        bias_names=("b_ih", "b_hh"),
        state_names=("h0",),
        forward=cells.gru_forward,
        backward=cells.gru_backward,
        ref_forward=reference.gru_forward,
        ref_backward=reference.gru_backward,
        final_state=lambda out: (out.h_n,),
    ),
}

"""Two lanes: one call split across two threads -- a single sequence's hidden units (B = 1; the
LSTM and RNN), or a batch's rows (B >= 2; every cell).

Why: at B = 1 each step is a matrix-vector product that streams all of
``w_hh`` from cache -- bandwidth-bound on one core (about 110 GB/s from L2
here).  Two threads that each own half of the hidden units read half of the
weights each, from their own core's cache, and meet once per step: each
publishes its half of the new state and waits for the other's.

Protocol (``ctl``, an int64 array of ``CTL_SIZE`` zeros per call):

* Both iterations of the driver's ``prange(2)`` call :func:`pair_up`.  The
  second to arrive marks the pair; the first waits up to ``PAIR_SPINS`` for it.
  If its partner never comes -- Numba's pool has one thread, or the call is
  nested inside another parallel region, so the two iterations run one after
  the other -- the first claims the whole job instead (``SOLO``) and the late
  one finds nothing to do.  A call is therefore never stuck waiting for a
  thread that is not running, and solo mode runs the one-thread kernels.
* Paired lanes count finished steps in their own cache line of ``ctl``
  (:func:`signal`) and spin on the other's (:func:`wait_for`), with
  release/acquire ordering, so a state row written before the count is seen
  whole after it.

Each lane computes its hidden units with the one-thread kernel's row functions, and
each weight gradient is formed whole by one lane, so two lanes agree with one thread
to rounding (bit for bit where the one-thread kernel also uses the four-row loop form,
``matmul.matrix_times_row``; its LONG_DOTS form sums a row in another order).

A batch (B >= 2, :func:`use_batch_lanes`) splits more simply: each lane runs the one-thread
kernel's recurrence on its own rows, so the lanes meet once after the input projection
(forward) and once before the weight-gradient products (backward), never per step.  Measured
with it (float32, alternating processes against the previous commit with OpenBLAS choosing its
own kernels, medians of 15 fwd/bwd pairs, three runs): LSTM T=256 B=32 H=32 fwd 2.88-2.97 ->
1.90-1.97 ms, bwd 4.4-4.9 -> 2.2-2.5 ms; H=64 fwd 6.4-6.6 -> 4.4-4.5 ms, bwd 8.1-8.5 -> 4.9-5.3
ms; H=128 fwd 14.6-15.0 -> 12.2-12.6 ms, bwd 22.3-23.4 -> 17.8-18.4 ms; LSTM T=256 B=8 H=64 fwd
2.2-2.3 -> 0.85-0.89 ms, bwd 1.9-2.0 -> 1.3-1.4 ms; RNN T=256 B=32 H=128 fwd 4.7-5.1 -> 3.8-3.9
ms, bwd 5.7-6.0 -> 4.0-4.1 ms.

The batch split is on by default for calls of at least ``BATCH_LANES_BY_DEFAULT_FROM_MACS``
(:func:`use_batch_lanes`); the rest is opt-in, ``FASTRNN_LANES=1`` (see :func:`enabled` for
why), and ``FASTRNN_LANES=0`` switches every kind off.  Measured with it
(float32, alternating processes against the one-thread kernels of the same tree,
medians of 20 fwd/bwd pairs, ``OPENBLAS`` workers undisturbed): LSTM B=1 H=128
T=256 fwd 1155-1178 -> 897-913 us, bwd 1421-1439 -> 1167-1198 us; T=32 bwd
282-289 -> 207-210 us; RNN H=512 T=256 fwd 4.6-4.9 -> 3.5 ms, bwd 5.7-6.2 ->
4.4-4.5 ms.  At RNN H=512 T=32 the forward was slower (1.05-1.12 -> 1.27-1.31 ms).
"""

from __future__ import annotations

import functools
import importlib
import os

import numba
import numpy as np

from .._blas import has_small_path, single_threaded
from .._jit import compare_swap, cpu_relax, jit, load_acquire, store_release
from .matmul import column_sums, project

CTL_SIZE = 24  # three 64-byte lines of int64: the pairing word and one step counter per lane
_MODE, _COUNT = 0, 8  # ctl[_MODE]; lane k's counter is ctl[_COUNT * (k + 1)]
WAITING, ARRIVED, PAIRED, SOLO, DONE = 0, 1, 2, 3, 4
PAIR_SPINS = 1 << 17  # pause loops: a lone pair_up gives up after 3.2 ms here, far longer than a pool thread takes to start


@jit
def pair_up(ctl):
    """PAIRED (run your half), SOLO (run everything alone) or DONE (the other lane went solo)."""
    if compare_swap(ctl, _MODE, WAITING, ARRIVED):  # first here: wait for the partner
        for _ in range(PAIR_SPINS):
            if load_acquire(ctl, _MODE) == PAIRED:
                return PAIRED
            cpu_relax()
        if compare_swap(ctl, _MODE, ARRIVED, SOLO):
            return SOLO
        return PAIRED  # the partner arrived between the last look and the claim
    if compare_swap(ctl, _MODE, ARRIVED, PAIRED):  # second here, and the first is waiting
        return PAIRED
    return DONE


@jit
def signal(ctl, lane, steps):
    """Publish that this lane has finished ``steps`` steps (everything written before is visible)."""
    store_release(ctl, _COUNT * (lane + 1), steps)


@jit
def wait_for(ctl, lane, steps):
    """Spin until the other lane has finished ``steps`` steps."""
    other = _COUNT * (2 - lane)
    while load_acquire(ctl, other) < steps:
        cpu_relax()


@jit
def time_rows(lane, T):
    """The steps [t0, t1) whose non-recurrent products this lane does: the first or second half."""
    half = (T + 1) // 2
    return (0, half) if lane == 0 else (half, T)


@jit
def project_half(x, w_ih, out, lane, ctl):
    """This lane's half of ``project`` (x (T,B,D) @ w_ih.T -> out (T,B,G*H)), then a meeting,
    after which every step's projection is in place.  Counts as step 1 in ``ctl``."""
    t0, t1 = time_rows(lane, x.shape[0])
    project(x[t0:t1], w_ih, out[t0:t1])
    meet(ctl, lane, 1)


@jit
def project_halves(x, w_ih, out):
    """Both lanes' halves of ``project_half`` in turn, for a lane alone: the same products as a
    pair computes (a single ``project`` over all steps may round differently)."""
    for lane in range(2):
        t0, t1 = time_rows(lane, x.shape[0])
        project(x[t0:t1], w_ih, out[t0:t1])


@jit
def products_halves(x, w_ih, h, dpre_ih, dpre_hh, dx, dw_ih, dw_hh, db):
    """Both lanes' shares of ``products_half`` in turn, for a lane alone."""
    for lane in range(2):
        products_half(x, w_ih, h, dpre_ih, dpre_hh, dx, dw_ih, dw_hh, db, lane)


@jit
def products_half(x, w_ih, h, dpre_ih, dpre_hh, dx, dw_ih, dw_hh, db, lane):
    """This lane's share of ``backward_products``, after the recurrence: dx for half of the
    steps, and dw_ih with db (lane 0) or dw_hh (lane 1), each formed whole as the one-thread
    kernel forms it, so the weight gradients come out the same."""
    T, B, D = x.shape
    H = h.shape[2]
    rows_ih = dpre_ih.reshape(T * B, dpre_ih.shape[2])
    t0, t1 = time_rows(lane, T)
    np.dot(rows_ih[t0 * B:t1 * B], w_ih, dx.reshape(T * B, D)[t0 * B:t1 * B])
    if lane == 0:
        np.dot(rows_ih.T, x.reshape(T * B, D), dw_ih)
        column_sums(rows_ih, db)
    else:
        np.dot(dpre_hh.reshape(T * B, dpre_hh.shape[2]).T, h[:T].reshape(T * B, H), dw_hh)


@jit
def meet(ctl, lane, steps):
    """Both lanes have finished ``steps`` steps: everything either wrote before is visible."""
    signal(ctl, lane, steps)
    wait_for(ctl, lane, steps)


@jit
def batch_rows(lane, cut, B):
    """The batch rows [b0, b1) this lane runs when the lanes split the batch."""
    return (0, cut) if lane == 0 else (cut, B)


def split(H: int, itemsize: int):
    """Hidden units [0, cut) for lane 0 and [cut, H) for lane 1: about half, on a cache-line
    boundary of the state rows so that the lanes never write the same line."""
    per_line = 64 // itemsize
    cut = (H // 2 + per_line - 1) // per_line * per_line
    return min(cut, H)


LANES_FROM_MACS = 1 << 16  # per-step multiply-adds (G*H*H) from which two lanes pay; see ``use_lanes``
LANE_WEIGHTS_BYTES = 1 << 20  # at most this much of w_hh per lane: half of one core's L2 here


@functools.lru_cache(maxsize=None)
def _pool_is_thread_safe() -> bool:
    """Numba's workqueue pool aborts the process when two threads launch parallel regions at
    once, and fastrnn's kernels promise concurrent calls; lanes run only on the OpenMP or TBB
    pool (Numba picks one of those whenever it is installed)."""
    layer = numba.config.THREADING_LAYER
    if layer in ("omp", "tbb"):
        return True
    if layer not in ("default", "safe", "threadsafe"):
        return False
    for module in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{module}")
            return True
        except ImportError:
            continue
    return False


ENV_SWITCH = "FASTRNN_LANES"


def switch() -> str:
    """``FASTRNN_LANES``, read at every call: "1" (every kind of lanes), "0" (none), or anything
    else, unset included: "auto" (a batch split for large calls only, see
    :func:`use_batch_lanes`)."""
    value = os.environ.get(ENV_SWITCH, "")
    return value if value in ("0", "1") else "auto"


def enabled() -> bool:
    """Every kind of lanes is switched on (``FASTRNN_LANES=1``): also the split of a single
    sequence (B = 1), and the batch split from smaller calls on.

    Why the B = 1 split is not on by default: its lanes meet by spinning once per step, so
    they are only fast while each has a core of its own.  A third busy thread stalls them --
    and OpenBLAS's idle workers, NumPy's included, spin for about 0.1 s after every threaded
    product, which a program may make at any time.  ``fastrnn train`` with lanes trained at
    11-12 thousand chars/s against 77-80 thousand without while its gradient clipping took a
    threaded ``np.dot`` (66-71 against 68-80 thousand once it no longer did).  The one-thread
    kernels only slow down in such company; two lanes that meet every step fall off a cliff.
    """
    return switch() == "1"


def use_lanes(B: int, H: int, G: int, dtype: np.dtype, lengths: np.ndarray, T: int) -> bool:
    """Whether a call runs on two lanes: lanes are switched on (:func:`enabled`), and the call is
    a single unpadded sequence, with two of Numba's threads to run them, whose per-step
    product is

    * large enough: below ``LANES_FROM_MACS`` the per-step meeting costs more than half a
      step saves;
    * small enough that each lane's half of ``w_hh`` stays in its core's L2
      (``LANE_WEIGHTS_BYTES``): beyond, both lanes stream from the shared L3 and two lanes ran
      no faster than one thread with OpenBLAS's two (LSTM, H=512, float32: forward 11.7-11.9
      ms on one thread against 12.3-12.7 on two lanes, alternating processes, medians of 20).

    ``lengths`` (B,) are the call's (or its cache's) sequence lengths, all ``T`` when unpadded.
    """
    macs = G * H * H
    if not (enabled() and B == 1 and LANES_FROM_MACS <= macs <= 2 * LANE_WEIGHTS_BYTES // dtype.itemsize):
        return False
    return lengths[0] == T and numba.get_num_threads() >= 2 and _pool_is_thread_safe()


BATCH_LANES_UP_TO_MACS = 1 << 21  # per-step product (B*G*H*H) up to which splitting the batch pays
BATCH_LANES_FROM_MACS = 1 << 20  # whole-call forward multiply-adds from which it pays (FASTRNN_LANES=1)
BATCH_LANES_BY_DEFAULT_FROM_MACS = 1 << 26  # ... and from which it is on by default (use_batch_lanes)


def use_batch_lanes(B: int, H: int, G: int, T: int, D: int, mode: str | None = None) -> bool:
    """Whether a call with a batch (B >= 2) runs on two lanes that split the batch rows: lanes
    are not switched off (``mode``, :func:`switch` when None), two of Numba's threads can run
    them, and

    * the per-step product is at most ``BATCH_LANES_UP_TO_MACS``: at B=32 the split paid up
      to H=128 for the LSTM, and above it OpenBLAS's own two threads did better (LSTM B=32
      H=512 T=256 forward steps, one process, medians of 5: 89-90 ms on OpenBLAS's two
      threads against 100-106 ms on two lanes);
    * the call's forward has at least ``BATCH_LANES_BY_DEFAULT_FROM_MACS`` multiply-adds by
      default, or ``BATCH_LANES_FROM_MACS`` with ``FASTRNN_LANES=1`` (enough to pay for waking
      Numba's pool).

    Sequences in a batch are independent, so these lanes meet once per call (after the input
    projection in the forward, before the weight-gradient products in the backward) rather
    than once per step.  Why the default starts at 2**26 (a call of a few milliseconds on one
    thread): a lane whose partner is kept off its core waits up to ``PAIR_SPINS`` and then a
    scheduler tick costs a whole small call.  Measured with ``examples/lanes_in_company.py``
    (LSTM fwd+bwd, float32, medians of 30 calls, four runs with lanes off and four on,
    alternating): at T=64 B=8 H=64 (2**24) lanes gained in one run only (0.40 against
    0.56-0.58 ms free), and beside a busy thread their 90th percentile was 4.6-24 ms (above 16
    in three runs) against 4.5-4.6; at T=256 B=32 H=32 (2**26) they took 2.0-3.1 ms free against 3.2-3.8 and 2.6-7.1
    beside a busy thread against 7.2-7.6, and at T=256 B=32 H=128 four Python threads calling
    at once got 32-34 ms a call against 50-62.
    """
    mode = switch() if mode is None else mode
    if mode == "0" or B < 2 or B * G * H * H > BATCH_LANES_UP_TO_MACS:
        return False
    from_macs = BATCH_LANES_FROM_MACS if mode == "1" else BATCH_LANES_BY_DEFAULT_FROM_MACS
    if T * B * G * H * (D + H) < from_macs:
        return False
    return numba.get_num_threads() >= 2 and _pool_is_thread_safe()


_launched = False  # this process has run two lanes, so Numba's threading layer is in use
_forked_after_lanes = False  # this process is a forked child of one that had


def _after_fork_in_child() -> None:
    """A forked child of a process that ran lanes runs the one-thread kernels.

    Why: Numba's threading layer here is GNU OpenMP, which cannot start a parallel region in
    a forked child of a process that already ran one.  Numba then ends the child: with lanes
    switched on, an LSTM call in the child of ``os.fork()`` printed "Terminating: fork()
    called from a process already using GNU OpenMP, this is unsafe." and the child was
    killed by signal 15 (``multiprocessing`` forks too, by default on Linux).  The kernels'
    results do not depend on the lanes, only their speed does."""
    global _forked_after_lanes
    if _launched:
        _forked_after_lanes = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def plan(B: int, H: int, G: int, dtype: np.dtype, lengths: np.ndarray, T: int, D: int, units: bool = True):
    """How a kernel call runs: ``None`` (the one-thread kernel), or ``(cut, by_batch)`` for
    :func:`run` -- batch rows [0, cut) and [cut, B), or hidden units [0, cut) and [cut, H).
    ``units=False`` for a cell whose drivers split batches only (the GRU)."""
    mode = switch()  # read once here: each read of os.environ costs about 0.5 us
    if mode == "0" or _forked_after_lanes:
        return None
    if use_batch_lanes(B, H, G, T, D, mode):
        return ((B + 1) // 2, True)
    if units and mode == "1" and use_lanes(B, H, G, dtype, lengths, T):
        return (split(H, dtype.itemsize), False)
    return None


def run(kernel, how, *args) -> None:
    """``kernel(*args, cut, ctl, by_batch, split)`` for a two-lane driver and a :func:`plan`,
    with SciPy's BLAS on one thread: each lane calls BLAS itself, and OpenBLAS's own workers,
    spinning after a threaded product, would take the core the other lane runs on.  ``split``:
    that OpenBLAS has the small-matrix path, so a lane's step just too large for it runs as two
    halves (``matmul.halves``)."""
    global _launched
    cut, by_batch = how
    _launched = True
    with single_threaded():
        kernel(*args, cut, np.zeros(CTL_SIZE, np.int64), by_batch, has_small_path())

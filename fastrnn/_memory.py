"""Reused memory for the wrappers' large arrays (caches, outputs, gradients, scratch).

Why: glibc's malloc returns the free memory at the top of its heap to the
system once it exceeds a threshold (twice the largest block it has seen
freed), and a forward/backward pair frees more than that at once -- the
forward's cache plus the backward's gradients and scratch.  The next call then
faults every page in again.  A loop of ``forward``, then ``backward``, then
dropping both (what a training step does) took, per call (float32 fwd+bwd, the
bench's inputs, medians over 0.5 s, faults from ``resource.getrusage``):

* GRU T=256 B=32 H=32: 7.5-8.7 ms with 2028 page faults, against 3.9 ms with
  this pool and none;
* LSTM T=32 B=32 H=32: 1.11-1.16 ms with 332 faults, against 0.57-0.65 ms;
* LSTM T=256 B=32 H=512: 347-349 ms with 1645 faults, against 337-338 ms.

(``MALLOC_TOP_PAD_`` set for the process, which stops the trimming, gave the
same times as the pool.)  Whether a size faults depends on the process's
allocation history, so the same call could be fast in one program and twice as
slow in another.

So arrays of at least ``POOL_FROM_BYTES`` are views of blocks that this module
keeps and hands out again once nothing refers to them any more: a block is
free when its reference count shows no view left (``sys.getrefcount``; every
NumPy view of a view refers to the block itself).  A block is reused for
requests of between half its size and its size.

Every pooled array starts on a ``ALIGN_BYTES`` (64-byte) boundary: a cache line,
and the width of an AVX-512 vector.  ``np.empty`` starts large arrays 16 bytes
past a page boundary, so that every 64-byte load of the kernels' vector loops
straddled two cache lines.  Aligned, the per-step matrix-vector products run
faster (fwd+bwd at T=256, B=1, float32, the aligned and the unaligned pool
alternated in one process, medians of 12 rounds of 15 calls): LSTM H=128
1.59 -> 1.45 ms, RNN H=128 0.43 -> 0.39 ms, RNN H=512 6.29 -> 5.79 ms, GRU
H=128 1.20 -> 1.09 ms, GRU H=512 14.1 -> 13.7 ms.  Batches (B=32) and T=32
moved by less than the noise (ratios 0.97-1.03).

At most ``POOL_BLOCKS`` blocks are kept; beyond that the least recently used
is let go -- a free one returns to malloc, a busy one when its last view goes.
Smaller arrays come from malloc's free lists, which are not trimmed, and gain
nothing here.

Memory: after a loop, the pool holds about one call's working set until
:func:`release_memory`.  A caller's arrays are never pooled; only arrays the
wrappers allocate are, and nothing the pool hands out is shared with an array
still in use.
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

POOL_FROM_BYTES = 1 << 17  # below, malloc's free lists serve (and _validate.one_block allocates separately)
POOL_BLOCKS = 16  # a forward and a backward of every cell allocate at most 8 pooled arrays
ALIGN_BYTES = 64  # pooled arrays start on a cache line, the width of an AVX-512 vector
_FREE_REFS = 2  # sys.getrefcount of a block held only by the pool (its entry + the argument)

_lock = threading.Lock()
# (uint8 block, offset of its first aligned byte, usable bytes from there), least recently used first
_blocks: list[tuple[np.ndarray, int, int]] = []


def _after_fork_in_child() -> None:
    """A fork while another thread held the lock would leave the child's copy locked forever.
    The blocks stay valid in the child: their memory and reference counts are copied with it."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def empty(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array, like ``np.empty`` (pooled when large); ``dtype`` is
    an ``np.dtype`` instance (not converted here: this is on every call's path)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_FROM_BYTES:
        return np.empty(shape, dtype)
    with _lock:  # the view is made before the lock is let go, so no other thread can claim the block
        block, start, _ = _claim(nbytes)
        return block[start:start + nbytes].view(dtype).reshape(shape)


def _claim(nbytes: int) -> tuple[np.ndarray, int, int]:
    """A free block of ``nbytes`` to ``2 * nbytes`` usable bytes (the smallest), else a new one."""
    best = -1
    for index in range(len(_blocks)):
        room = _blocks[index][2]
        if nbytes <= room <= 2 * nbytes and _is_free(index):
            if best < 0 or room < _blocks[best][2]:
                best = index
    if best >= 0:
        entry = _blocks.pop(best)
    else:
        block = np.empty(nbytes + ALIGN_BYTES - 1, np.uint8)  # room to start on an aligned byte
        entry = (block, -block.__array_interface__["data"][0] % ALIGN_BYTES, nbytes)
        if len(_blocks) >= POOL_BLOCKS:
            _drop_one()
    _blocks.append(entry)  # most recently used last
    return entry


def _drop_one() -> None:
    """Let go of the least recently used free block, or else the least recently used one."""
    for index in range(len(_blocks)):
        if _is_free(index):
            del _blocks[index]
            return
    del _blocks[0]


def _is_free(index: int) -> bool:
    """No array refers to ``_blocks[index]`` (by index: a variable holding the block would count)."""
    return sys.getrefcount(_blocks[index][0]) == _FREE_REFS


def _free_bytes() -> int:
    return sum(_blocks[index][2] for index in range(len(_blocks)) if _is_free(index))


def pooled_bytes() -> tuple[int, int]:
    """(bytes in free blocks, bytes in blocks still in use) that the pool holds: the bytes they
    can hand out, not counting the up to ``ALIGN_BYTES - 1`` bytes each has for alignment."""
    with _lock:
        free = _free_bytes()
        return free, sum(room for _, _, room in _blocks) - free


def release_memory() -> int:
    """Give the pool's free blocks back to malloc; returns their bytes.  Blocks still in use
    are forgotten too (they go back to malloc when their last array does)."""
    with _lock:
        free = _free_bytes()
        _blocks.clear()
        return free

"""Issue section 6: time one training epoch of the character task at steady state.

Hidden 10, batch 1, full BPTT over the whole 864-step sequence: one epoch is
one update (forward, cross-entropy, backward, clipping, Adam).  Prints the
median over ``repeats`` epochs of the whole step and of its parts.
Run:  python examples/epoch_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from fastrnn import nn
from fastrnn.data import default_text


def median_seconds(func, repeats: int) -> float:
    func()  # compile / load from cache, warm the allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(hidden: int = 10, seq_len: int = 864, repeats: int = 200, verbose: bool = True) -> dict:
    """Return median seconds per epoch: ``step`` (the full update) and its parts."""
    text = default_text()
    lm = nn.CharLM(nn.vocab_of(text), hidden, seed=0)
    optimizer = nn.Adam(lm.layers, lr=0.01)
    batch = nn.text_batch(lm.encode(text), 0, 1, seq_len)
    x = lm.one_hot(batch.inputs)  # (T, 1, V)
    y, _ = lm.model.rnn.forward(x)
    dy = np.ones_like(y)

    def step():
        nn.truncated_bptt(lm, batch.inputs, batch.targets, seq_len, optimizer=optimizer, clip_norm=5.0)

    def layer_pass():
        lm.model.rnn.forward(x)
        lm.model.rnn.backward(dy)

    def head_and_loss():
        logits = lm.model.head.forward(y)
        lm.model.head.backward(nn.cross_entropy(logits, batch.targets).grad)

    def update():
        nn.clip_grad_norm(lm.layers, 5.0)
        optimizer.step()

    result = {name: median_seconds(func, repeats) for name, func in
              (("step", step), ("lstm_forward_backward", layer_pass), ("head_and_loss", head_and_loss),
               ("clip_and_adam", update))}
    if verbose:
        for name, seconds in result.items():
            print(f"{name:>22}: {seconds * 1e3:8.3f} ms")
    return result


if __name__ == "__main__":
    main()

"""(c) A batched vanilla RNN with softmax outputs and cross-entropy over (time, batch, classes).

Task: emit the symbol seen ``delay`` steps earlier (the first outputs are
free: their target is symbol 0), which needs the recurrent state.  Gradients
are clipped to a global norm every step; ``gradcheck`` verifies the whole
model's backward in float64.  Run:  python examples/batched_rnn.py
"""

from __future__ import annotations

import numpy as np

from fastrnn import nn


def echo_batch(rng, T: int, B: int, C: int, delay: int, dtype=np.float32):
    """One-hot inputs (T, B, C) and integer targets (T, B): the input ``delay`` steps back."""
    symbols = rng.integers(0, C, (T, B))  # (T, B)
    inputs = np.eye(C, dtype=dtype)[symbols]  # (T, B, C)
    targets = np.zeros((T, B), np.int64)
    targets[delay:] = symbols[:-delay]
    return inputs, targets


def main(steps: int = 300, hidden: int = 32, C: int = 4, T: int = 20, B: int = 16, delay: int = 2,
         lr: float = 0.01, max_norm: float = 0.5, seed: int = 0, verbose: bool = True) -> dict:
    """Train; return per-step ``losses``, gradient norms before (``norms``) and after (``clipped``) clipping."""
    rng = np.random.default_rng(seed)
    model = nn.SequenceModel("rnn", C, hidden, C, seed=seed)
    optimizer = nn.Adam(model.layers, lr=lr)
    losses, norms, clipped = [], [], []
    for step in range(steps):
        inputs, targets = echo_batch(rng, T, B, C, delay)
        optimizer.zero_grad()
        losses.append(model.loss(inputs, targets, nn.cross_entropy))
        norms.append(nn.clip_grad_norm(model.layers, max_norm))
        clipped.append(nn.global_grad_norm(model.layers))
        optimizer.step()
        if verbose and (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {np.mean(losses[-10:]):.4f} (chance {np.log(C):.4f})")
    return dict(losses=losses, norms=norms, clipped=clipped)


def gradcheck(hidden: int = 5, C: int = 3, T: int = 5, B: int = 3, seed: int = 0):
    """Whole-model gradient check in float64; returns the :class:`fastrnn.GradcheckReport`."""
    rng = np.random.default_rng(seed)
    model = nn.SequenceModel("rnn", C, hidden, C, dtype=np.float64, seed=seed)
    inputs, targets = echo_batch(rng, T, B, C, 1, np.float64)
    return nn.gradcheck_layers(model.layers,
                               lambda backward: model.loss(inputs, targets, nn.cross_entropy, backward=backward))


if __name__ == "__main__":
    main()
    print(gradcheck())

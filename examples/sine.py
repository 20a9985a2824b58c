"""(b) LSTM + Linear head predicting the next value of a sine wave, with MSE.

Each batch holds waves of random phase and frequency; at every step the model
sees the current value and predicts the next.  ``gradcheck`` checks the
hand-written backward of the whole model (LSTM, head, MSE) in float64.
Run:  python examples/sine.py
"""

from __future__ import annotations

import numpy as np

from fastrnn import nn


def waves(rng, T: int, B: int, dtype=np.float32):
    """Inputs (T, B, 1) and next-value targets (T, B, 1) of random sine waves."""
    t = np.arange(T + 1)[:, None]  # (T+1, 1)
    phase = rng.uniform(0, 2 * np.pi, B)  # (B,)
    freq = rng.uniform(0.15, 0.35, B)  # (B,) radians per step
    wave = np.sin(freq * t + phase)[:, :, None].astype(dtype)  # (T+1, B, 1)
    return wave[:-1], wave[1:]


def main(steps: int = 150, hidden: int = 16, T: int = 30, B: int = 16, lr: float = 0.02, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train on fresh random waves each step; return ``losses`` (per step)."""
    rng = np.random.default_rng(seed)
    model = nn.SequenceModel("lstm", 1, hidden, 1, seed=seed)
    optimizer = nn.Adam(model.layers, lr=lr)
    losses = []
    for step in range(steps):
        x, targets = waves(rng, T, B)
        optimizer.zero_grad()
        losses.append(model.loss(x, targets, nn.mse))
        nn.clip_grad_norm(model.layers, 1.0)
        optimizer.step()
        if verbose and (step + 1) % 50 == 0:
            print(f"step {step + 1}: mse {np.mean(losses[-10:]):.5f}")
    return dict(losses=losses)


def gradcheck(hidden: int = 4, T: int = 6, B: int = 2, seed: int = 0):
    """Whole-model gradient check in float64; returns the :class:`fastrnn.GradcheckReport`."""
    rng = np.random.default_rng(seed)
    model = nn.SequenceModel("lstm", 1, hidden, 1, dtype=np.float64, seed=seed)
    x, targets = waves(rng, T, B, np.float64)
    return nn.gradcheck_layers(model.layers, lambda backward: model.loss(x, targets, nn.mse, backward=backward))


if __name__ == "__main__":
    main()
    print(gradcheck())

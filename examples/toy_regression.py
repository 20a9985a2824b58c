"""(d) Toy regression: an LSTM with 100 hidden units reads 4 random 50-dimensional
vectors, and its first hidden unit is trained to output [-0.5, 0.2, 0.1, -0.5].

The loss is the MSE of ``y[:, 0, 0]`` (the first unit's output at each step);
the gradient of the other units' outputs is zero.  Run:  python examples/toy_regression.py
"""

from __future__ import annotations

import numpy as np

from fastrnn import nn

TARGET = np.array([-0.5, 0.2, 0.1, -0.5])


def main(steps: int = 100, hidden: int = 100, D: int = 50, lr: float = 0.01, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train with Adam; return per-step ``losses``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (len(TARGET), 1, D))  # (T=4, B=1, D=50)
    lstm = nn.LSTM(D, hidden, dtype=np.float64, seed=seed)
    optimizer = nn.Adam(lstm, lr=lr)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        y, _ = lstm.forward(x)
        loss, dfirst = nn.mse(y[:, 0, 0], TARGET)
        dy = np.zeros_like(y)  # (T, B, H)
        dy[:, 0, 0] = dfirst
        lstm.backward(dy)
        optimizer.step()
        losses.append(loss)
        if verbose and (step + 1) % 20 == 0:
            print(f"step {step + 1}: loss {loss:.2e}, first unit {np.round(y[:, 0, 0], 3)}")
    return dict(losses=losses)


if __name__ == "__main__":
    main()

"""(a) Character-level LSTM on the Hamlet passage shipped with fastrnn.

The classic tutorial task, with the usual failures designed out: Adam with
global-norm clipping (no divergence to NaN), a stable softmax cross-entropy,
and temperature sampling from the full distribution (no collapse to one
repeated character).  Run:  python examples/char_lstm.py
"""

from __future__ import annotations

import numpy as np

from fastrnn import nn
from fastrnn.data import default_text


def main(steps: int = 300, hidden: int = 64, seq_len: int = 32, batch: int = 4, lr: float = 0.02,
         seed: int = 0, temperature: float = 0.8, verbose: bool = True) -> dict:
    """Train for ``steps`` updates; return the losses, the unigram entropy and a sample.

    Returns
    -------
    dict
        ``losses`` (per step, nats/char), ``final_loss`` (mean of the last 20),
        ``unigram_entropy`` (nats/char; a model that ignores context cannot beat
        it) and ``sample`` (300 generated characters).
    """
    text = default_text()
    lm = nn.CharLM(nn.vocab_of(text), hidden, "lstm", seed=seed)
    optimizer = nn.Adam(lm.layers, lr=lr)
    data = lm.encode(text)
    state, losses = None, []
    for step in range(steps):
        inputs, targets, reset = nn.text_batch(data, step, batch, seq_len)
        result = nn.truncated_bptt(lm, inputs, targets, seq_len, state=None if reset else state,
                                   optimizer=optimizer, clip_norm=5.0)
        state = result.state
        losses.append(result.loss)
        if verbose and (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {np.mean(losses[-20:]):.3f} nats/char")
    sample = lm.sample(300, temperature=temperature, seed=seed, prime="To ")
    if verbose:
        print(f"unigram entropy {nn.unigram_entropy(text):.3f} nats/char\nsample: To {sample}")
    return dict(losses=losses, final_loss=float(np.mean(losses[-20:])), unigram_entropy=nn.unigram_entropy(text),
                sample=sample)


if __name__ == "__main__":
    main()

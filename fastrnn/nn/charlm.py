"""Character-level language model: one-hot characters -> LSTM/RNN/GRU -> Linear -> softmax.

Batching follows the classic tutorials, made deterministic: the text is split
into ``B`` contiguous streams of ``L = (N - 1) // B`` characters, and step
``s`` reads the ``S`` characters at offset ``(s mod (L // S)) * S`` of every
stream (targets are the next characters).  The state is carried from one step
to the next and reset to zeros when the streams start over, so each pass is
truncated BPTT with chunks of ``S`` steps.  A step's batch depends only on
``s``, which is what lets a checkpoint resume the exact same run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .model import SequenceModel


class TextBatch(NamedTuple):
    inputs: np.ndarray  # (S, B) int64 character indices
    targets: np.ndarray  # (S, B) int64, the following characters
    reset: bool  # True when the streams start over: carry no state into this step


def text_batch(data: np.ndarray, step: int, batch: int, seq_len: int) -> TextBatch:
    """The batch of training step ``step`` (see the module docstring).

    Raises
    ------
    ValueError
        The text is too short for ``batch`` streams of ``seq_len + 1`` characters.
    """
    stream_len = (len(data) - 1) // batch  # L
    if stream_len < seq_len:
        raise ValueError(f"the text has {len(data)} characters: too short for batch {batch} x seq-len {seq_len} "
                         f"(needs at least batch * seq_len + 1 = {batch * seq_len + 1})")
    steps_per_pass = stream_len // seq_len
    offset = (step % steps_per_pass) * seq_len
    starts = np.arange(batch) * stream_len + offset  # (B,)
    positions = starts[None, :] + np.arange(seq_len)[:, None]  # (S, B)
    return TextBatch(data[positions], data[positions + 1], step % steps_per_pass == 0)


class CharLM:
    """A :class:`SequenceModel` over one-hot characters of ``vocab``.

    Parameters
    ----------
    vocab : str
        The distinct characters, in index order (``vocab_of(text)``).
    hidden : int
    cell : {"lstm", "rnn", "gru"}, default "lstm"
    dtype : float32 or float64, default float32
    seed : int, optional
    """

    def __init__(self, vocab: str, hidden: int, cell: str = "lstm", dtype=np.float32, seed: int | None = None):
        if len(set(vocab)) != len(vocab) or not vocab:
            raise ValueError("vocab must be a non-empty string of distinct characters")
        self.vocab = vocab
        self.index = {ch: i for i, ch in enumerate(vocab)}
        self.model = SequenceModel(cell, len(vocab), hidden, len(vocab), dtype=dtype, seed=seed)
        self.layers = self.model.layers

    @property
    def cache_nbytes(self) -> int:
        return self.model.cache_nbytes

    def encode(self, text: str) -> np.ndarray:
        """Character indices (int64) of ``text``; ValueError names characters outside the vocabulary."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters {''.join(unknown)!r} are not in the model's vocabulary")
        return np.array([self.index[ch] for ch in text], np.int64)

    def one_hot(self, indices: np.ndarray) -> np.ndarray:
        """(T, B) indices -> (T, B, V) one-hot rows of the model's dtype."""
        rows = np.zeros(indices.shape + (len(self.vocab),), self.model.dtype)  # (T, B, V)
        np.put_along_axis(rows, indices[..., None], 1, axis=-1)
        return rows

    def forward(self, indices, state=None):
        """(T, B) character indices -> logits (T, B, V) and the final state (cache kept for backward)."""
        return self.model.forward(self.one_hot(np.asarray(indices)), state)

    def backward(self, dlogits) -> None:
        """Backpropagate ``dlogits`` (T, B, V); adds to every layer's grads."""
        self.model.backward(dlogits)

    def sample(self, length: int, *, temperature: float = 1.0, seed: int | None = None, prime: str = "") -> str:
        """Generate ``length`` characters after ``prime`` (returned without the prime).

        Sampling never touches a pending training cache (it uses
        ``return_cache=True``).  With no prime the first input is the all-zero
        vector, a "start" symbol the model never saw in training.

        Raises
        ------
        ValueError
            ``length`` negative, ``temperature`` not positive, or a prime character
            outside the vocabulary.
        """
        if length < 0:
            raise ValueError(f"length must be >= 0; got {length}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature!r}")
        rng = np.random.default_rng(seed)
        V = len(self.vocab)
        state = None
        x = np.zeros((1, 1, V), self.model.dtype)  # (T=1, B=1, V)
        if prime:
            primed = self.one_hot(self.encode(prime)[:, None])  # (P, 1, V)
            _, state, _ = self.model.forward(primed[:-1], None, return_cache=True)
            x = primed[-1:]
        out = []
        for _ in range(length):
            logits, state, _ = self.model.forward(x, state, return_cache=True)
            scaled = logits[0, 0].astype(np.float64) / temperature
            probs = np.exp(scaled - scaled.max())
            choice = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
            choice = min(choice, V - 1)  # guards the (measure-zero) round-off at the top end
            out.append(self.vocab[choice])
            x = np.zeros((1, 1, V), self.model.dtype)
            x[0, 0, choice] = 1
        return "".join(out)


def vocab_of(text: str) -> str:
    """The sorted distinct characters of ``text``."""
    return "".join(sorted(set(text)))


def unigram_entropy(text: str) -> float:
    """Entropy (nats per character) of the character frequencies: the loss of a model with no context."""
    _, counts = np.unique(np.array(list(text)), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())

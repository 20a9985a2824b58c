"""Argument types and the error exit shared by the subcommands.

Bad values are rejected while parsing, so argparse reports them as
``fastrnn train: error: argument --hidden: must be a positive integer; got '0'``
(exit status 2) before any work starts.  Problems found while running (an
unreadable --text, a corrupt --checkpoint) go through :func:`fail`: the same
one-line form, exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn


def _number(kind, text: str, low: float, strict: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, 1, False, "a positive integer")


def non_negative_int(text: str) -> int:
    return _number(int, text, 0, False, "an integer >= 0")


def positive_float(text: str) -> float:
    return _number(float, text, 0.0, True, "a positive finite number")


def non_negative_float(text: str) -> float:
    return _number(float, text, 0.0, False, "a finite number >= 0")


def fail(command: str, message: str) -> NoReturn:
    """Stop with exit status 1; Python prints the one line to stderr."""
    raise SystemExit(f"fastrnn {command}: error: {message}")


def os_reason(error: OSError) -> str:
    """``No such file or directory`` rather than ``[Errno 2] No such file or directory: 'x'``."""
    return error.strerror or str(error)


# What fastrnn train stores in a checkpoint's config; a checkpoint without them was not written by it.
TRAIN_CONFIG_KEYS = {"cell", "hidden", "seq_len", "batch", "lr", "optimizer", "clip", "seed", "text_sha256"}


def read_checkpoint(command: str, path: str):
    """The :class:`fastrnn.nn.Checkpoint` that ``fastrnn train`` wrote at ``path``, or :func:`fail`."""
    from .. import nn

    try:
        checkpoint = nn.load_checkpoint(path)
    except OSError as error:
        fail(command, f"--checkpoint {path}: {os_reason(error)}")
    except ValueError as error:  # its message starts with the path
        fail(command, f"--checkpoint {error}")
    if checkpoint.vocab is None or not TRAIN_CONFIG_KEYS <= set(checkpoint.config):
        fail(command, f"--checkpoint {path} is not a character-model checkpoint from fastrnn train")
    return checkpoint


def restore_or_fail(command: str, checkpoint, layers, optimizer=None, *, path: str) -> None:
    """:func:`fastrnn.nn.restore`, with a mismatch (edited or foreign arrays) reported as one line."""
    from .. import nn

    try:
        nn.restore(checkpoint, layers, optimizer)
    except (KeyError, ValueError) as error:
        fail(command, f"--checkpoint {path} does not match the model its config describes: {error.args[0]}")

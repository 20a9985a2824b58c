"""Train a character-level language model (LSTM, or --cell rnn / gru).

The default text is a passage of Hamlet shipped with fastrnn.  A progress bar
with the loss and chars/s goes to stderr, with a short generated sample now and
then.  --checkpoint is written every --checkpoint-every steps and at the end;
--resume continues from it up to --steps total steps, bit-identically to an
uninterrupted run.  --metrics writes a JSON summary.

Example:  fastrnn train --hidden 10 --seq-len 864 --batch 1 --steps 1000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

from .options import (fail, non_negative_float, non_negative_int, os_reason, positive_float, positive_int,
                      read_checkpoint, restore_or_fail)
from .progress import Progress

HELP = "train a character-level LSTM/RNN/GRU language model"

# Options that define the run; on --resume they come from the checkpoint, and
# an explicitly given value that disagrees is an error rather than silently ignored.
RUN_DEFAULTS = dict(cell="lstm", hidden=64, seq_len=32, batch=4, lr=0.01, optimizer="adam", clip=5.0, seed=0)
RECENT = 50  # final_loss averages the losses of this many last steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", help="UTF-8 text file to learn (default: the Hamlet passage shipped with fastrnn)")
    parser.add_argument("--cell", choices=["lstm", "rnn", "gru"], help=f"recurrent cell (default {RUN_DEFAULTS['cell']})")
    for name, kind, text in (("hidden", positive_int, "hidden size H"),
                             ("seq-len", positive_int, "steps of truncated BPTT per update"),
                             ("batch", positive_int, "parallel streams through the text"),
                             ("lr", positive_float, "learning rate"),
                             ("clip", non_negative_float, "clip the global gradient norm to this (0: no clipping)"),
                             ("seed", non_negative_int, "seed of the initialization (and of the samples)")):
        parser.add_argument(f"--{name}", type=kind, help=f"{text} (default {RUN_DEFAULTS[name.replace('-', '_')]})")
    parser.add_argument("--optimizer", choices=["sgd", "adagrad", "adam"], help="default adam")
    parser.add_argument("--steps", type=positive_int, default=1000, help="total training steps (default 1000)")
    parser.add_argument("--checkpoint", help="checkpoint file (.npz), written periodically and at the end")
    parser.add_argument("--checkpoint-every", type=positive_int, default=500, metavar="N", help="default 500")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint up to --steps total steps")
    parser.add_argument("--metrics", help="write a JSON summary (steps, final_loss, chars_per_sec, sample) here")
    parser.add_argument("--sample-every", type=non_negative_int, default=250, metavar="N",
                        help="print a sample every N steps (0: never)")


def run(args: argparse.Namespace) -> int:
    from .. import nn
    from ..data import default_text

    if args.resume and not args.checkpoint:
        fail("train", "--resume needs --checkpoint")
    # Checked before training, not at the first save minutes later.
    for option, path in (("--checkpoint", args.checkpoint), ("--metrics", args.metrics)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            fail("train", f"{option} {path}: its directory does not exist")
    text, text_name = _read_text(args.text, default_text)
    if args.resume:
        saved = read_checkpoint("train", args.checkpoint)
        config = _resumed_config(saved.config, args, text)
        if args.steps <= saved.step:  # else the run would do nothing and look as if it had trained
            fail("train", f"--steps {args.steps}: the checkpoint is already at step {saved.step}, and --steps "
                          f"counts the total; pass more than {saved.step} to train further")
    else:
        saved = None
        config = {name: _given(args, name, default) for name, default in RUN_DEFAULTS.items()}
        config["text_sha256"] = _digest(text)
    lm = nn.CharLM(saved.vocab if saved else nn.vocab_of(text), config["hidden"], config["cell"], seed=config["seed"])
    optimizer = nn.OPTIMIZERS[config["optimizer"]](lm.layers, lr=config["lr"])
    data = lm.encode(text)
    try:
        nn.text_batch(data, 0, config["batch"], config["seq_len"])  # fail early if the text is too short
    except ValueError as error:
        fail("train", f"{'--text ' + args.text if args.text else 'the default text'}: {error}; "
                      "lower --batch or --seq-len")
    step, state = 0, None
    if saved:
        restore_or_fail("train", saved, lm.layers, optimizer, path=args.checkpoint)
        step = saved.step
        state = _state_from(saved.extra, config["cell"])

    progress = Progress(args.steps)
    losses: list[float] = []
    chars_per_step = config["batch"] * config["seq_len"]
    start_step, started = step, time.perf_counter()
    clip = config["clip"] or None
    while step < args.steps:
        batch = nn.text_batch(data, step, config["batch"], config["seq_len"])
        result = nn.truncated_bptt(lm, batch.inputs, batch.targets, config["seq_len"],
                                   state=None if batch.reset else state, optimizer=optimizer, clip_norm=clip)
        state, step = result.state, step + 1
        losses.append(result.loss)
        if not math.isfinite(result.loss):
            progress.message(f"step {step}: the loss is {result.loss}; stopping (try a lower --lr or --clip)")
            return 1
        speed = (step - start_step) * chars_per_step / (time.perf_counter() - started)
        progress.update(step, float(np.mean(losses[-RECENT:])), speed, force=step == args.steps)
        if args.sample_every and step % args.sample_every == 0 and step < args.steps:
            progress.message(f"--- step {step} sample:\n{lm.sample(120, seed=config['seed'] + step)}")
        if args.checkpoint and (step % args.checkpoint_every == 0 or step == args.steps):
            _save(args.checkpoint, lm, optimizer, step, config, state)
    elapsed = time.perf_counter() - started
    progress.end()
    sample = lm.sample(200, seed=config["seed"])
    print(f"--- sample after {step} steps ({text_name}):\n{sample}", file=sys.stderr)
    if args.metrics:
        metrics = dict(steps=step, final_loss=float(np.mean(losses[-RECENT:])) if losses else None,
                       chars_per_sec=(step - start_step) * chars_per_step / elapsed if losses else None,
                       seconds=elapsed, sample=sample, unigram_entropy=nn.unigram_entropy(text), config=config)
        with open(args.metrics, "w", encoding="utf-8") as file:
            json.dump(metrics, file, indent=2)
    return 0


def _read_text(path, default_text):
    if path is None:
        return default_text(), "default text"
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        fail("train", f"--text {path}: {os_reason(error)}")
    except UnicodeDecodeError as error:
        fail("train", f"--text {path} is not UTF-8 text ({error.reason} at byte {error.start})")
    if not text:
        fail("train", f"--text {path} is empty")
    return text, path


def _given(args, name, default):
    value = getattr(args, name)
    return default if value is None else value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _resumed_config(config: dict, args, text: str) -> dict:
    for name in RUN_DEFAULTS:
        value = getattr(args, name)
        if value is not None and value != config[name]:
            option = "--" + name.replace("_", "-")
            fail("train", f"{option} {value} disagrees with the checkpoint's {config[name]}; "
                          "drop it to resume, or start a new run without --resume")
    if _digest(text) != config["text_sha256"]:
        fail("train", "the text differs from the one the checkpoint was trained on (pass the same --text)")
    return config


def _save(path, lm, optimizer, step, config, state) -> None:
    from .. import nn

    # The carried state is part of the run: without it a resumed run would
    # restart its stream from zeros and diverge from the uninterrupted one.
    if state is None:
        extra = {}
    elif config["cell"] == "lstm":
        extra = {"h": state[0], "c": state[1]}
    else:
        extra = {"h": state}
    nn.save_checkpoint(path, lm.layers, optimizer=optimizer, step=step, vocab=lm.vocab, config=config, extra=extra)


def _state_from(extra: dict, cell: str):
    if "h" not in extra:
        return None
    return (extra["h"], extra["c"]) if cell == "lstm" else extra["h"]

"""Generate text from a checkpoint written by ``fastrnn train``.

Example:  fastrnn sample --checkpoint run.npz --length 200 --temperature 0.8 --seed 1 --prime "To be"
"""

from __future__ import annotations

import argparse

from .options import fail, non_negative_int, positive_float, read_checkpoint, restore_or_fail

HELP = "generate text from a trained character model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file written by fastrnn train")
    parser.add_argument("--length", type=non_negative_int, default=200, help="characters to generate (default 200)")
    parser.add_argument("--temperature", type=positive_float, default=1.0,
                        help="softmax temperature > 0 (default 1.0)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--prime", default="", help="text to condition on; printed before the generated text")


def run(args: argparse.Namespace) -> int:
    from .. import nn

    checkpoint = read_checkpoint("sample", args.checkpoint)
    lm = nn.CharLM(checkpoint.vocab, checkpoint.config["hidden"], checkpoint.config["cell"])
    restore_or_fail("sample", checkpoint, lm.layers, path=args.checkpoint)
    unknown = sorted(set(args.prime) - set(lm.vocab))
    if unknown:
        fail("sample", f"--prime has characters {''.join(unknown)!r} that are not in the model's vocabulary")
    text = lm.sample(args.length, temperature=args.temperature, seed=args.seed, prime=args.prime)
    print(args.prime + text)
    return 0


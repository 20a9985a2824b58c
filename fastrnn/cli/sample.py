"""Generate text from a checkpoint written by ``fastrnn train``.

Example:  fastrnn sample --checkpoint run.npz --length 200 --temperature 0.8 --seed 1 --prime "To be"
"""

from __future__ import annotations

import argparse

HELP = "generate text from a trained character model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file written by fastrnn train")
    parser.add_argument("--length", type=int, default=200, help="characters to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature > 0 (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--prime", default="", help="text to condition on; printed before the generated text")


def run(args: argparse.Namespace) -> int:
    from .. import nn

    checkpoint = nn.load_checkpoint(args.checkpoint)
    if checkpoint.vocab is None or "hidden" not in checkpoint.config:
        raise SystemExit(f"fastrnn sample: {args.checkpoint} is not a character-model checkpoint from fastrnn train")
    config = checkpoint.config
    lm = nn.CharLM(checkpoint.vocab, config["hidden"], config["cell"])
    nn.restore(checkpoint, lm.layers)
    try:
        text = lm.sample(args.length, temperature=args.temperature, seed=args.seed, prime=args.prime)
    except ValueError as error:
        raise SystemExit(f"fastrnn sample: {error}") from None
    print(args.prime + text)
    return 0

"""Subcommands of the ``fastrnn`` command.

Each module named here defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``.  Modules must not import heavy optional packages
(torch, jax) at import time: building the parser imports all of them.
"""

COMMANDS = {
    # name: module, one line each (bench, train, sample)
    "bench": "fastrnn.cli.bench",
    "train": "fastrnn.cli.train",
    "sample": "fastrnn.cli.sample",
}

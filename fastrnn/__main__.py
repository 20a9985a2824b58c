"""``fastrnn`` command line: ``fastrnn bench | train | sample`` (also ``python -m fastrnn``)."""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli import COMMANDS


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (subcommand parsers inherit the class)."""

    def error(self, message: str):
        # argparse prints the whole usage first: for ``train`` that is ten lines
        # above the one that says what is wrong.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastrnn", description="Fast LSTM/RNN kernels for the CPU.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = argv is None  # a process of its own, which a command may start afresh
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

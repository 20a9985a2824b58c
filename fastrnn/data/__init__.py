"""Data shipped with fastrnn: the default training text (Hamlet's soliloquy, public domain)."""

from __future__ import annotations

from importlib import resources


def default_text() -> str:
    """The text ``fastrnn train`` learns when no ``--text`` is given (866 characters)."""
    return resources.files(__name__).joinpath("hamlet.txt").read_text(encoding="utf-8")

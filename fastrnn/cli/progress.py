"""A plain-text progress bar on stderr (no dependency): ``[#####.....] 500/1000 loss 1.234 12,345 chars/s``."""

from __future__ import annotations

import sys
import time


class Progress:
    """Redraws one line with ``\\r``, at most every ``interval`` seconds (drawing costs more than a step)."""

    def __init__(self, total: int, *, stream=None, width: int = 30, interval: float = 0.2) -> None:
        self.total, self.width, self.interval = total, width, interval
        self.stream = sys.stderr if stream is None else stream
        self._last_draw = -float("inf")
        self._drawn = False

    def update(self, step: int, loss: float, chars_per_sec: float, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        filled = self.width * step // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {step}/{self.total} loss {loss:.4f} {chars_per_sec:,.0f} chars/s")
        self.stream.flush()
        self._drawn = True

    def message(self, text: str) -> None:
        """Print ``text`` on its own lines, below the bar."""
        self.end()
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False

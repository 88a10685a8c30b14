"""The live progress line: kimg, speed, ETA, losses, ADA p, GPU memory.

On a terminal it rewrites one line in place; in a log file (or under torchrun) it prints a line
per tick, so the history survives.
"""

from __future__ import annotations

import sys
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


class Progress:
    def __init__(self, total_kimg: float, stream: TextIO | None = None, quiet: bool = False):
        self.total_kimg = total_kimg
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open_line = False

    def line(self, kimg: float, sec_per_kimg: float | None, stats: dict[str, float], p: float | None,
             mem_gb: float | None) -> str:
        parts = [f"kimg {kimg:.3f}/{self.total_kimg:g}"]
        if sec_per_kimg:
            parts.append(f"{sec_per_kimg:.2f} s/kimg ({1 / sec_per_kimg:.3f} kimg/s)")
            parts.append(f"ETA {format_duration((self.total_kimg - kimg) * sec_per_kimg)}")
        g = stats.get("Loss/G/main")
        d = None
        if "Loss/D/real" in stats and "Loss/D/fake" in stats:
            d = stats["Loss/D/real"] + stats["Loss/D/fake"]
        if g is not None:
            parts.append(f"G {g:.3f}")
        if d is not None:
            parts.append(f"D {d:.3f}")
        if p is not None:
            parts.append(f"p {p:.3f}")
        if mem_gb is not None:
            parts.append(f"mem {mem_gb:.2f} GB")
        return "  ".join(parts)

    def update(self, *args, **kwargs) -> None:
        if self.quiet:
            return
        text = self.line(*args, **kwargs)
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A message on its own line (ends a live line first)."""
        if self.quiet:
            return
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

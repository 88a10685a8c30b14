"""Small helpers shared by CLI commands: parsing ranges, picking devices."""

from __future__ import annotations

import click

from bender.device import pick_device  # noqa: F401 - re-exported for commands
from bender.errors import BenderError


def parse_int_list(text: str) -> list[int]:
    """Parse '0-7,12,20-22' into [0, 1, ..., 7, 12, 20, 21, 22] (NVIDIA's seed syntax)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise BenderError(f"range '{part}' runs backwards: write it as {b}-{a}")
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise BenderError(f"'{part}' is not a number or a range like 0-7") from None
    if not out:
        raise BenderError("no numbers given: use a list like 0-7,12")
    return out


class IntList(click.ParamType):
    """click type for '0-7,12' style lists."""

    name = "list"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_int_list(value)
        except BenderError as e:
            self.fail(str(e), param, ctx)

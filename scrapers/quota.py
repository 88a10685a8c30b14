"""Reading rate-limit headers, in the three shapes the image APIs use.

- scoped (Openverse): `X-RateLimit-Limit-<scope>: 5/hour` + `X-RateLimit-Available-<scope>: 4`;
- comma pairs (Brave): `X-RateLimit-Remaining: 1, 1000` + `X-RateLimit-Reset: 1, 1419704`, one value
  per window;
- the usual trio: `X-RateLimit-Remaining` + `X-RateLimit-Reset`, where Reset is seconds to wait
  (Pixabay) or a UNIX time (Pexels).

`quota_wait(headers)` says how long to wait before the next request so as not to run into a 429:
0 while quota remains, the time to the reset (or to one token's refill) when it is used up, and
None when the headers say nothing. It knows header shapes, not providers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}


def _numbers(value: str) -> list[float]:
    out = []
    for part in value.split(","):
        part = part.strip().split(";")[0]
        try:
            out.append(float(part))
        except ValueError:
            return []
    return out


def _reset_seconds(value: float, now: float) -> float:
    # Values this large are UNIX times (Pexels); small ones are seconds from now (Pixabay, Brave).
    return max(0.0, value - now) if value > 1e9 else max(0.0, value)


def quota_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait before the next request, or None if the headers carry no quota."""
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}

    scoped = {k[len("x-ratelimit-available-"):]: v for k, v in lower.items()
              if k.startswith("x-ratelimit-available-")}
    if scoped:
        wait = 0.0
        for scope, available in scoped.items():
            try:
                if int(available) > 0:
                    continue
            except ValueError:
                continue
            rate = re.fullmatch(r"\s*(\d+)\s*/\s*([a-z]+)\s*", lower.get(f"x-ratelimit-limit-{scope}", ""))
            if rate and int(rate.group(1)) > 0 and rate.group(2) in _PERIODS:
                wait = max(wait, _PERIODS[rate.group(2)] / int(rate.group(1)))
            else:
                wait = max(wait, 60.0)
        return wait

    if "x-ratelimit-remaining" not in lower:
        return None
    remaining = _numbers(lower["x-ratelimit-remaining"])
    resets = _numbers(lower.get("x-ratelimit-reset", ""))
    if not remaining:
        return None
    wait = 0.0
    for i, left in enumerate(remaining):
        if left <= 0:
            wait = max(wait, _reset_seconds(resets[i], now) if i < len(resets) else 60.0)
    return wait


def reset_at(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """When the window closest to running out resets, as a UNIX time (for 429s that carry none).

    With several windows (Brave's per-second and per-month pairs) the ones with at most one request
    left count; if none is that low, the first (shortest) window does.
    """
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}
    resets = _numbers(lower.get("x-ratelimit-reset", ""))
    remaining = _numbers(lower.get("x-ratelimit-remaining", ""))
    if not resets:
        return None
    low = [r for i, r in enumerate(resets) if i < len(remaining) and remaining[i] <= 1] or resets[:1]
    return now + max(_reset_seconds(r, now) for r in low)

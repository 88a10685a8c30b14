"""Why an input was left out of a dataset.

Every input that does not become a dataset entry gets exactly one of these reasons plus a detail
line, so the pack report can explain each image to the artist and the summary line can count them
by reason. Rejections are data, not failures: a pack never aborts because of one bad file.
"""

from __future__ import annotations

from dataclasses import dataclass

TOO_SMALL = "too small"
NOT_AN_IMAGE = "not an image"
TRUNCATED = "truncated"
BOMB = "decompression bomb"
UNSUPPORTED_MODE = "unsupported mode"
CORRUPT = "corrupt"
UNREADABLE = "unreadable"
MISSING = "missing file"
NO_LABEL = "no label"

REASONS = (TOO_SMALL, NOT_AN_IMAGE, TRUNCATED, BOMB, UNSUPPORTED_MODE, CORRUPT, UNREADABLE, MISSING, NO_LABEL)


class Rejected(Exception):
    """Raised inside the pipeline when one input cannot become a dataset entry."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Reject:
    """One rejected input, as it appears in the report."""

    source: str
    reason: str
    detail: str

    def to_json(self) -> dict:
        return {"source": self.source, "reason": self.reason, "detail": self.detail}

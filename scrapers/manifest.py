"""`manifest.jsonl`: one JSON object per candidate, append-only, safe against kill -9 at any moment.

Format (shared with `bender dataset pack`, which reads it):

- one object per line; a later line with the same `"id"` supersedes an earlier one;
- fields: `id`, `status` (`kept` | `duplicate` | `rejected`), `reason` (null or short text),
  `path` (kept only: `images/<sha256>.<ext>`, relative to the manifest's folder), `query`,
  `provider`, `provider_id`, `image_url`, `final_url`, `landing_url`, `license`, `license_version`,
  `license_url`, `creator`, `creator_url`, `title`, `attribution`, `width`, `height`, `sha256`,
  `phash`, `label`, `fetched_at` (ISO 8601 UTC).

Crash safety: each record is one `os.write` of a complete line on an `O_APPEND` descriptor, so a
killed process leaves whole lines (the kernel keeps what was written even without fsync); `fsync`
after each record (the default, about 0.15 ms here) also covers power loss. The image file is
written atomically *before* its record, so a record never points at a missing file. A torn last
line (power loss mid-write) is ignored on load, and the next append starts on a fresh line.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path

from scrapers.candidate import Candidate

MANIFEST_NAME = "manifest.jsonl"
STATUSES = ("kept", "duplicate", "rejected")

# Rejections worth another try on a rerun: the network or the server was at fault, not the image.
TRANSIENT_REASONS = ("timeout", "connection error", "truncated body", "rate limited", "http 429",
                     "http 5", "dns failure", "write failed")


def is_final(record: dict) -> bool:
    """True if a rerun should skip this candidate (done, or rejected for a lasting reason)."""
    if record.get("status") in ("kept", "duplicate"):
        return True
    reason = record.get("reason") or ""
    return not reason.startswith(TRANSIENT_REASONS)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(c: Candidate, status: str, reason: str | None = None, *, path: str | None = None,
                final_url: str | None = None, width: int | None = None, height: int | None = None,
                sha256: str | None = None, phash: str | None = None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    return {
        "id": c.id, "status": status, "reason": reason, "path": path, "query": c.query,
        "provider": c.provider, "provider_id": c.provider_id, "image_url": c.image_url,
        "final_url": final_url, "landing_url": c.landing_url, "license": c.license,
        "license_version": c.license_version, "license_url": c.license_url, "creator": c.creator,
        "creator_url": c.creator_url, "title": c.title, "attribution": c.attribution,
        "width": width if width is not None else c.width,
        "height": height if height is not None else c.height,
        "sha256": sha256, "phash": phash, "label": c.label, "fetched_at": utc_now(),
    }


def load_manifest(path: str | os.PathLike) -> dict[str, dict]:
    """id → latest record. Missing file → {}. Unparseable lines (a torn tail) are skipped."""
    path = Path(path)
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    bad = 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad += 1
                continue
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                records[rec["id"]] = rec
    if bad:
        warnings.warn(f"{path}: skipped {bad} damaged line(s) (an interrupted write)", stacklevel=2)
    return records


class ManifestWriter:
    """Appends records to `manifest.jsonl`; thread-safe."""

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":  # a torn last line: start ours on a fresh one
                    os.write(self._fd, b"\n")

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            view = memoryview(line)
            while view:  # os.write on a regular file writes everything; the loop is for safety
                n = os.write(self._fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

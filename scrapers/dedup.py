"""Duplicate detection across providers, queries and runs: exact (sha256) and perceptual (pHash).

The same photo often comes back from Openverse and Flickr, or re-encoded at another size. Exact
copies match on the sha256 of the bytes; near-copies on the Hamming distance between 64-bit pHashes
(`max_distance`, default 4 of 64 bits; 0 turns the perceptual check off). The pHashes sit in a
growing NumPy array so one lookup against 10,000 kept images is a single vectorised XOR + popcount.
"""

from __future__ import annotations

import threading

import numpy as np


class DedupIndex:
    """Remembers kept images; `claim` atomically checks a new one and reserves it if unique."""

    def __init__(self, max_distance: int = 4):
        self.max_distance = max_distance
        self._lock = threading.Lock()
        self._sha: dict[str, str] = {}  # sha256 -> sha256 of the kept image (itself)
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._owners: list[str] = []

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, sha256: str, phash: str | None) -> None:
        """Register an image already kept (e.g. loaded from the manifest on resume)."""
        with self._lock:
            self._add(sha256, phash)

    def claim(self, sha256: str, phash: str | None) -> str | None:
        """None if the image is new (and now reserved), else the sha256 of the image it duplicates."""
        with self._lock:
            if sha256 in self._sha:
                return self._sha[sha256]
            if phash and self.max_distance > 0 and self._owners:
                n = len(self._owners)
                dist = _popcount(self._hashes[:n] ^ np.uint64(int(phash, 16)))
                i = int(np.argmin(dist))
                if int(dist[i]) <= self.max_distance:
                    return self._owners[i]
            self._add(sha256, phash)
            return None

    def release(self, sha256: str) -> None:
        """Undo a claim whose file could not be written, so a later copy may be kept."""
        with self._lock:
            if self._sha.pop(sha256, None) is None:
                return
            if sha256 not in self._owners:
                return
            i = self._owners.index(sha256)
            n = len(self._owners)
            self._hashes[i:n - 1] = self._hashes[i + 1:n]
            del self._owners[i]

    def _add(self, sha256: str, phash: str | None) -> None:
        self._sha[sha256] = sha256
        if not phash:
            return
        n = len(self._owners)
        if n == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[n] = np.uint64(int(phash, 16))
        self._owners.append(sha256)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)

"""Duplicate detection: exact (same decoded pixels) and near (perceptual hash within a Hamming radius).

Scrapes are full of the same photo at three sizes, re-encoded, or mirrored. Exact duplicates are
found by hashing decoded pixels (so a PNG and a lossless WebP of one picture match); near duplicates
by `imagehash.phash` (64-bit DCT hash) compared with a Hamming threshold. With `mirror`, the
horizontally flipped picture is also compared, because StyleGAN training with x-flip augmentation
sees a mirrored copy as a duplicate anyway.

Inputs are visited in pack order and the first of each group is kept, so the result does not
depend on how many workers computed the fingerprints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

DEDUP_MODES = ("exact", "near")
DEFAULT_THRESHOLD = 6  # bits of 64; re-encodes and resizes land at 0-4, unrelated photos near 32


@dataclass(frozen=True)
class Fingerprint:
    pixels: str  # sha256 of mode + size + decoded pixel bytes
    phash: int | None = None  # 64-bit perceptual hash (near mode)
    mirror_pixels: str | None = None
    mirror_phash: int | None = None


@dataclass(frozen=True)
class Duplicate:
    """`dropped` repeats `kept` (exactly, or within `distance` bits of perceptual hash)."""

    dropped: str
    kept: str
    kind: str  # "exact" | "near" | "exact-mirror" | "near-mirror"
    distance: int

    def to_json(self) -> dict:
        return {"dropped": self.dropped, "kept": self.kept, "kind": self.kind, "distance": self.distance}


def fingerprint(img: Image.Image, mode: str = "near", mirror: bool = False) -> Fingerprint:
    mirrored = ImageOps.mirror(img) if mirror else None
    return Fingerprint(
        pixels=_pixel_hash(img),
        phash=_phash(img) if mode == "near" else None,
        mirror_pixels=_pixel_hash(mirrored) if mirrored is not None else None,
        mirror_phash=_phash(mirrored) if mirrored is not None and mode == "near" else None,
    )


def _pixel_hash(img: Image.Image) -> str:
    h = hashlib.sha256(f"{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def _phash(img: Image.Image) -> int:
    import imagehash  # imported here: it pulls in scipy, which plain packing does not need

    bits = imagehash.phash(img).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


class DedupIndex:
    """Fingerprints of kept images; `match` finds what a new image duplicates, `add` records it."""

    def __init__(self, mode: str = "near", threshold: int = DEFAULT_THRESHOLD):
        if mode not in DEDUP_MODES:
            raise ValueError(f"dedup mode must be one of {DEDUP_MODES}, got {mode!r}")
        self.mode, self.threshold = mode, threshold
        self._exact: dict[str, str] = {}
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._names: list[str] = []

    def match(self, fp: Fingerprint) -> tuple[str, str, int] | None:
        """(kept source, kind, distance) when `fp` duplicates a kept image, else None."""
        for pixels, kind in ((fp.pixels, "exact"), (fp.mirror_pixels, "exact-mirror")):
            if pixels is not None and pixels in self._exact:
                return self._exact[pixels], kind, 0
        if self.mode != "near" or not self._names:
            return None
        best = None
        for value, kind in ((fp.phash, "near"), (fp.mirror_phash, "near-mirror")):
            if value is None:
                continue
            found = self._nearest(value)
            if found is not None and (best is None or found[1] < best[2]):
                best = (self._names[found[0]], kind, found[1])
        return best

    def add(self, fp: Fingerprint, source: str) -> None:
        self._exact.setdefault(fp.pixels, source)
        if self.mode == "near" and fp.phash is not None:
            n = len(self._names)
            if n == len(self._hashes):
                self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._hashes[n] = np.uint64(fp.phash)
            self._names.append(source)

    def _nearest(self, value: int) -> tuple[int, int] | None:
        hashes = self._hashes[: len(self._names)]
        distances = _popcount(np.bitwise_xor(hashes, np.uint64(value)))
        i = int(np.argmin(distances))  # first minimum: the earliest kept image wins ties
        d = int(distances[i])
        return (i, d) if d <= self.threshold else None


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)

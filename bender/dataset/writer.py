"""NVIDIA's dataset zip layout, written deterministically.

Layout (what StyleGAN2-ADA's `ImageFolderDataset` reads): entries `DDDDD/imgDDDDDDDD.png` numbered
densely from 0 with 1000 per folder, each an uncompressed 8-bit PNG stored without zip compression,
and `dataset.json` as the last member. Extra members (`provenance.jsonl`, `ATTRIBUTION.md`) are
ignored by NVIDIA's loader because their extensions are not image extensions.

Determinism: every member gets the same timestamp, permissions and "made on Unix" marker, so the
same inputs and options give a byte-identical zip on any machine, with any number of workers.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can store; carries no information
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type (grey, truecolour)


def entry_name(index: int) -> str:
    return f"{index // 1000:05d}/img{index:08d}.png"


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode an HxW (grey) or HxWx3 uint8 array as an uncompressed PNG.

    Written by hand because this is the hot loop's last step: filter type 0 on every row plus zlib
    level 0 (stored blocks) is what "uncompressed PNG" means, and skipping Pillow's per-row filter
    search makes encoding about 10x faster. Any PNG decoder reads the result.
    """
    if pixels.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, got {pixels.dtype}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in _PNG_COLOR_TYPE:
        raise ValueError(f"encode_png supports 1 or 3 channels, got {channels}")
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # column 0: filter type 0
    rows[:, 1:] = pixels.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPE[channels], 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)), _chunk(b"IEND", b"")))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


class DatasetZipWriter:
    """Appends images with dense numbering; `finish` writes side files and `dataset.json` last."""

    def __init__(self, file: Path | BinaryIO):
        self._zip = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.count = 0

    def add_image(self, png: bytes) -> str:
        name = entry_name(self.count)
        self._write(name, png)
        self.count += 1
        return name

    def finish(self, labels: list | None, extra_files: dict[str, bytes],
               extra_json: dict | None = None) -> None:
        for name, data in extra_files.items():
            self._write(name, data)
        meta = {"labels": labels}
        meta.update(extra_json or {})
        self._write("dataset.json", json.dumps(meta).encode())
        self._zip.close()

    def close(self) -> None:
        self._zip.close()

    def _write(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_STORED
        info.create_system = 3  # Unix, whatever machine wrote it
        info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
        self._zip.writestr(info, data)

"""The per-image work of a pack, run in worker processes: read -> hash -> decode -> transform -> PNG.

Everything expensive happens here, PNG encoding included, so the parent only appends finished
bytes to the zip. A worker never raises for a bad input: it returns a `Result` carrying either the
encoded outputs or a `Reject`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import sys
import zipfile
from dataclasses import dataclass, field

import numpy as np

from bender.dataset.decode import DecodeOptions, decode_image
from bender.dataset.dedup import Fingerprint, fingerprint
from bender.dataset.rejects import MISSING, UNREADABLE, Reject, Rejected
from bender.dataset.sources import Item
from bender.dataset.transforms import TransformSpec, apply_transform, draft_request
from bender.dataset.writer import encode_png

MAX_FILE_BYTES = 1 << 30  # no real training photo is a gigabyte; refuse before reading it


@dataclass(frozen=True)
class WorkerConfig:
    decode: DecodeOptions
    transform: TransformSpec | None  # None: only fingerprint (the `dedup` command)
    dedup_mode: str | None = None  # None, "exact" or "near"
    mirror: bool = False


@dataclass
class Result:
    item: Item
    sha256: str | None = None  # of the source bytes
    outputs: list[tuple[bytes, dict]] = field(default_factory=list)  # (PNG, transform record)
    fingerprint: Fingerprint | None = None
    source_size: tuple[int, int] | None = None
    source_mode: str | None = None
    reject: Reject | None = None


def process(item: Item, config: WorkerConfig) -> Result:
    result = Result(item=item)
    try:
        data = read_bytes(item)
        result.sha256 = hashlib.sha256(data).hexdigest()
        draft = draft_request(config.transform) if config.transform is not None else None
        decoded = decode_image(data, config.decode, draft)
        del data
        result.source_size, result.source_mode = decoded.size, decoded.source_mode
        if config.dedup_mode is not None:
            result.fingerprint = fingerprint(decoded.image, config.dedup_mode, config.mirror)
        if config.transform is not None:
            for img, record in apply_transform(decoded.image, decoded.size, config.transform, result.sha256):
                result.outputs.append((encode_png(np.asarray(img)), record))
    except Rejected as e:
        result.reject = Reject(item.source, e.reason, e.detail)
        result.outputs = []
    return result


_open_zips: dict[str, zipfile.ZipFile] = {}
_zips_pid = os.getpid()


def read_bytes(item: Item) -> bytes:
    """The item's file bytes; a missing or unreadable file is a rejection, not a crash."""
    try:
        if item.member is None:
            size = os.path.getsize(item.path)
            if size > MAX_FILE_BYTES:
                raise Rejected(UNREADABLE, f"{size / 2**30:.1f} GiB is far larger than any image file")
            with open(item.path, "rb") as f:
                return f.read()
        zf = _zip(item.path)
        info = zf.getinfo(item.member)
        if info.file_size > MAX_FILE_BYTES:
            raise Rejected(UNREADABLE, f"{info.file_size / 2**30:.1f} GiB is far larger than any image file")
        return zf.read(info)
    except FileNotFoundError:
        raise Rejected(MISSING, "the file disappeared while packing") from None
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as e:
        raise Rejected(UNREADABLE, f"{type(e).__name__}: {e}") from None


def _zip(path: str) -> zipfile.ZipFile:
    # One handle per zip per process; a forked child must not share its parent's file offset.
    global _zips_pid
    if _zips_pid != os.getpid():
        _open_zips.clear()
        _zips_pid = os.getpid()
    zf = _open_zips.get(path)
    if zf is None:
        zf = _open_zips[path] = zipfile.ZipFile(path)
    return zf


# --- process-pool plumbing --------------------------------------------------------------------

_config: WorkerConfig | None = None


def init_worker(config: WorkerConfig) -> None:
    """Pool initializer: remember the config, leave Ctrl-C to the parent, die with the parent."""
    global _config
    _config = config
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's SIGTERM handler is not ours to run
    if sys.platform.startswith("linux"):
        try:  # PR_SET_PDEATHSIG: a SIGKILLed parent must not leave workers decoding forever
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def process_in_worker(item: Item) -> Result:
    assert _config is not None, "init_worker was not called"
    return process(item, _config)

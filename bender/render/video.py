"""Frames -> files: mp4 (H.264), webm (VP9), gif, a PNG sequence or a single PNG. Atomic, with metadata.

Formats are picked from the output path (or forced with `codec`):
  .mp4 / .mkv / .mov -> H.264 (libx264, CRF, yuv420p)   .webm -> VP9 (libvpx-vp9, CRF)
  .gif -> GIF (Pillow; frame delays are whole centiseconds, so 24 fps plays at 25; Pillow merges
          identical consecutive frames into one longer frame, the total duration is kept)
  .png -> one still image                               no suffix -> a folder of frame-000000.png ...
Videos are encoded by the ffmpeg binary that imageio-ffmpeg ships, so nothing else is installed.

Each file carries metadata (mp4/webm: container tags, readable with `read_metadata`; gif: the
comment; png: text chunks): at least `bender_script_sha256` and the script itself, so a render can
be traced back and re-rendered even without its sidecar script.
Everything is written under a temporary name and renamed when complete: an interrupted render
never leaves a half-written video under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from bender.errors import BenderError
from bender.fileio import atomic_path

CONTAINERS = {".mp4": "h264", ".mkv": "h264", ".mov": "h264", ".webm": "vp9", ".gif": "gif", ".png": "png"}


@dataclass
class VideoInfo:
    path: Path
    format: str  # h264 | vp9 | gif | png | png-seq
    frames: int
    width: int
    height: int
    fps: float
    frames_sha256: str  # sha256 over every frame's shape and raw bytes, in order


def output_format(path: str | Path, codec: str = "auto") -> str:
    """The format a path (and optional codec) asks for; BenderError for combinations that cannot work."""
    suffix = Path(path).suffix.lower()
    if codec in (None, "auto"):
        if suffix == "":
            return "png-seq"
        if suffix not in CONTAINERS:
            raise BenderError(f"{Path(path).name}: unknown output type '{suffix}'; use .mp4, .webm, .gif, .png "
                              "or a folder name for a PNG sequence")
        return CONTAINERS[suffix]
    allowed = {"h264": (".mp4", ".mkv", ".mov"), "vp9": (".webm", ".mkv"), "gif": (".gif",), "png": (".png", "")}
    if codec not in allowed:
        raise BenderError(f"codec must be auto, h264, vp9, gif or png, got {codec!r}")
    if suffix not in allowed[codec]:
        raise BenderError(f"codec {codec} cannot be written to '{suffix or 'a folder'}': use "
                          f"{' or '.join(s or 'a folder' for s in allowed[codec])}")
    return "png-seq" if codec == "png" and suffix == "" else codec


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    return frame


class _Hasher:
    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        self.h.update(repr(tuple(frame.shape)).encode())
        self.h.update(np.ascontiguousarray(frame).tobytes())
        self.count += 1


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 24.0, codec: str = "auto",
                crf: int = 18, metadata: dict[str, str] | None = None) -> VideoInfo:
    """Consume `frames` ([H, W, C] uint8, all the same size) and write them to `path` atomically."""
    path = Path(path)
    fmt = output_format(path, codec)
    metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
    if not (0 < float(fps) <= 240):
        raise BenderError(f"fps must be in (0, 240], got {fps}")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise BenderError("nothing to write: the render produced no frames")
    hasher = _Hasher()
    h, w = first.shape[:2]

    def checked():
        yield first
        for frame in it:
            if frame.shape != first.shape:
                raise ValueError(f"frame size changed from {first.shape} to {frame.shape}")
            yield frame

    if fmt == "png":
        frame_list = [first]
        extra = next(it, None)
        if extra is not None:
            raise BenderError(f"{path.name}: a .png holds one image but the render has more frames; give a folder "
                              "name for a PNG sequence, or .mp4 / .webm / .gif")
        hasher.add(first)
        with atomic_path(path) as tmp:
            _save_png(frame_list[0], tmp, metadata)
    elif fmt == "png-seq":
        _write_png_sequence(checked(), path, metadata, hasher)
    elif fmt == "gif":
        _write_gif(checked(), path, fps, metadata, hasher)
    else:
        _write_ffmpeg(checked(), path, fmt, fps, crf, metadata, hasher, (w, h))
    return VideoInfo(path, fmt, hasher.count, w, h, float(fps), hasher.h.hexdigest())


def _save_png(frame: np.ndarray, path: Path, metadata: dict[str, str]) -> None:
    info = PngImagePlugin.PngInfo()
    for k, v in metadata.items():
        info.add_itxt(k, v)  # iTXt: UTF-8, no length limit
    im = Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)
    im.save(path, format="PNG", pnginfo=info)


def _write_png_sequence(frames, path: Path, metadata: dict[str, str], hasher: _Hasher) -> None:
    """frame-000000.png ... in a folder that appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise BenderError(f"{path}: exists and is a file; a PNG sequence needs a folder name")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        for i, frame in enumerate(frames):
            meta = dict(metadata, bender_frame=str(i)) if i == 0 else {"bender_frame": str(i),
                                                                        "bender_script_sha256":
                                                                        metadata.get("bender_script_sha256", "")}
            _save_png(frame, tmp / f"frame-{i:06d}.png", meta)
            hasher.add(frame)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_gif(frames, path: Path, fps: float, metadata: dict[str, str], hasher: _Hasher) -> None:
    images = []
    for frame in frames:
        hasher.add(frame)
        images.append(Image.fromarray(_rgb(frame)))
    comment = "\n".join(f"{k}={v}" for k, v in metadata.items()).encode("utf-8")
    duration = max(10, round(100 / float(fps)) * 10)  # GIF delays are centiseconds
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                       comment=comment, optimize=False)


def _ffmpeg_tag(value: str) -> str:
    return value.replace("\r", "")


def _write_ffmpeg(frames, path: Path, fmt: str, fps: float, crf: int, metadata: dict[str, str],
                  hasher: _Hasher, size: tuple[int, int]) -> None:
    import imageio_ffmpeg

    if fmt == "h264":
        if crf > 51:
            raise BenderError(f"H.264 takes crf 0-51 (lower = better), got {crf}")
        params = ["-c:v", "libx264", "-crf", str(int(crf)), "-preset", "medium", "-pix_fmt", "yuv420p",
                  "-movflags", "+use_metadata_tags+faststart"]
    else:
        params = ["-c:v", "libvpx-vp9", "-crf", str(int(crf)), "-b:v", "0", "-pix_fmt", "yuv420p", "-row-mt", "1"]
    w, h = size
    if w % 2 or h % 2:  # yuv420p needs even sizes: pad one black row/column instead of resampling
        params += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    for k, v in metadata.items():
        params += ["-metadata", f"{k}={_ffmpeg_tag(v)}"]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), pix_fmt_in="rgb24", fps=Fraction(fps).limit_denominator(
            100000), quality=None, codec=None, macro_block_size=1, output_params=params, ffmpeg_log_level="error")
        writer.send(None)
        try:
            for frame in frames:
                hasher.add(frame)
                writer.send(np.ascontiguousarray(_rgb(frame)))
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            raise
        writer.close()


# ------------------------------------------------------------------------------------------------
# Reading back (tests, `bender render script VIDEO`)


def probe(path: str | Path) -> dict:
    """{'frames': n, 'fps': float, 'size': (w, h)} of a video, by decoding it with ffmpeg."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    n = sum(1 for _ in gen)
    return {"frames": n, "fps": float(meta.get("fps", 0)), "size": tuple(meta["size"])}


def decode_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video / gif / PNG folder as [H, W, 3] uint8 arrays."""
    path = Path(path)
    if path.is_dir():
        return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(path.glob("frame-*.png"))]
    if path.suffix.lower() in (".gif", ".png"):
        out = []
        with Image.open(path) as im:
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                out.append(np.asarray(im.convert("RGB")))
        return out
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(b, dtype=np.uint8).reshape(h, w, 3) for b in gen]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata bender wrote into a render (any of the formats above)."""
    path = Path(path)
    if path.is_dir():
        first = sorted(path.glob("frame-*.png"))
        if not first:
            raise BenderError(f"{path}: no frame-*.png files")
        path = first[0]
    suffix = path.suffix.lower()
    if suffix in (".png", ".gif"):
        with Image.open(path) as im:
            if suffix == ".png":
                return dict(getattr(im, "text", {}) or {})
            comment = im.info.get("comment", b"")
        text = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
        out, key = {}, None
        for line in text.split("\n"):
            k, sep, v = line.partition("=")
            if sep and re.fullmatch(r"[a-z0-9_]+", k):
                out[k], key = v, k
            elif key is not None:
                out[key] += "\n" + line
        return out
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise BenderError(f"{path.name}: ffmpeg cannot read it ({proc.stderr.decode(errors='replace').strip()[:200]})")
    return _parse_ffmetadata(proc.stdout.decode("utf-8", "replace"))


def _parse_ffmetadata(text: str) -> dict[str, str]:
    """Parse ffmpeg's ffmetadata format (global section only; '\\' escapes '=', ';', '#', newline)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(";") or line.startswith("#") or not line:
            continue
        if line.startswith("["):
            break
        while line.endswith("\\") and not line.endswith("\\\\") and i < len(lines):
            line = line[:-1] + "\n" + lines[i]
            i += 1
        key, value, escaped, seen_eq = [], [], False, False
        for ch in line:
            if escaped:
                (value if seen_eq else key).append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and not seen_eq:
                seen_eq = True
            else:
                (value if seen_eq else key).append(ch)
        out["".join(key).lower()] = "".join(value)
    return out

"""Render a walk script to a file: frames -> video, plus the sidecar script and the metadata.

`render_script(script, out)` is what `bender render ...` and the UI call. Beside the output it
writes `<out>.yaml`, the resolved script (defaults filled in, paths absolute) whose sha256 is
embedded in the output's metadata, so `bender render script <out>.yaml` reproduces the same frames
bit for bit on the same device.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import bender
from bender.errors import BenderError
from bender.fileio import atomic_write_text
from bender.latent.script import WalkScript
from bender.latent.walk import Walk
from bender.render.frames import render_frames
from bender.render.video import VideoInfo, output_format, write_video


@dataclass
class RenderResult:
    video: VideoInfo
    script_path: Path
    script_sha256: str
    seconds: float


def sidecar_path(out: str | Path) -> Path:
    """Where the script of a render is written: `walk.mp4` -> `walk.mp4.yaml`, `frames/` -> `frames.yaml`."""
    out = Path(out)
    return out.with_name(out.name + ".yaml")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("bender")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return getattr(bender, "__version__", "dev")


def render_script(script: WalkScript, out: str | Path, device: torch.device | str = "cpu", preview: bool = False,
                  progress: Callable[[int], None] | None = None, walk: Walk | None = None,
                  on_start: Callable[[Walk], None] | None = None) -> RenderResult:
    """Render `script` to `out` (format from the suffix or `script.codec`) and write `<out>.yaml`.

    `progress(n)` is called as frames finish; `on_start(walk)` once the models are loaded (the CLI
    uses it to size its progress bar). Pass an already-built `walk` to reuse loaded models.
    """
    import time

    out = Path(out)
    fmt = output_format(out, script.codec)
    walk = walk or Walk(script, device)
    script = walk.script
    if fmt == "png" and walk.num_frames > 1:
        raise BenderError(f"{out.name}: a .png holds one image but this render has {walk.num_frames} frames; "
                          "use .mp4, .webm, .gif or a folder name for a PNG sequence")
    if on_start is not None:
        on_start(walk)
    sha = script.sha256()
    model = walk.model.lineage
    script_text = script.to_yaml()
    metadata = {
        "bender_script_sha256": sha,
        "bender_version": _version(),
        "bender_device": str(walk.device),
        "bender_preview": str(bool(preview)).lower(),
        "bender_model_sha256": model.source_sha256,
        "comment": f"bender render; script sha256 {sha}" + (" (preview)" if preview else ""),
        "bender_script": script_text,
    }
    start = time.perf_counter()
    frames = render_frames(walk, preview=preview, progress=progress)
    info = write_video(frames, out, fps=script.fps, codec=script.codec, crf=script.crf, metadata=metadata)
    seconds = time.perf_counter() - start
    header = "\n".join([
        f"Walk script of {out.name}, rendered by bender {_version()} on "
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"script sha256: {sha} (embedded in the output's metadata)",
        f"{info.frames} frames {info.width}x{info.height} at {script.fps:g} fps; frames sha256 {info.frames_sha256}",
        f"device {walk.device}, torch {torch.__version__}, {platform.machine()}"
        + ("; PREVIEW (low resolution)" if preview else ""),
        f"re-render: bender render script {sidecar_path(out).name} --out {out.name}",
    ])
    side = sidecar_path(out)
    atomic_write_text(side, script.to_yaml(header=header))
    return RenderResult(info, side, sha, seconds)

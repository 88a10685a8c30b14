"""Batched generation: a `Walk` -> an iterator of uint8 frames. The one path the CLI, UI and
notebooks all render through.

Determinism. The same script on the same device (same torch build and thread count) gives
bit-identical frames because nothing depends on timing or on how the caller consumes frames:
- batches have a fixed composition decided by the script alone: consecutive frames, `batch` images
  at most, split wherever the model weights change (animated α / t need one blend per frame).
  Batch composition matters: convolution algorithms differ by batch size, which shows up at the
  1e-5 level, enough to flip a pixel's last bit. Starting a render part-way (`start`) therefore
  rounds down to a batch boundary and discards the frames before `start`.
- noise is drawn per image from (script seed, image index) on the CPU (`bender.latent.noise`);
- seeds -> z in float64 numpy (NVIDIA-compatible), ψ and mixing are explicit tensor ops.
cuDNN autotuning (`torch.backends.cudnn.benchmark`) is switched off while rendering, because it
picks algorithms by timing.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from bender.device import to_device
from bender.latent import noise as noise_mod
from bender.latent import spaces
from bender.latent.walk import FrameState, Walk
from bender.render.images import make_grid, uint8_nhwc


@dataclass
class Batch:
    frames: list[int]
    weights: float | None


def plan_batches(walk: Walk, start: int = 0, stop: int | None = None) -> list[Batch]:
    """The fixed batch composition of a walk (see module docs), restricted to batches touching [start, stop)."""
    stop = walk.num_frames if stop is None else min(stop, walk.num_frames)
    per_batch = max(1, walk.script.batch // walk.tiles)
    out: list[Batch] = []
    cur: Batch | None = None
    for i in range(walk.num_frames):
        w = _weights_of(walk, i)
        if cur is None or len(cur.frames) >= per_batch or cur.weights != w:
            cur = Batch([], w)
            out.append(cur)
        cur.frames.append(i)
    return [b for b in out if b.frames[-1] >= start and b.frames[0] < stop]


def _weights_of(walk: Walk, i: int) -> float | None:
    if walk.weights_default is None:
        return None
    if walk.script.path.kind != "keyframes":
        return walk.weights_default
    return walk.frame(i).weights


def preview_resolution(resolution: int) -> int:
    """Image size of `--preview` renders: a quarter of the model's, at least 64 (never above it)."""
    return min(resolution, max(64, resolution // 4))


def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str, max_resolution: int | None = None
               ) -> torch.Tensor:
    """G.synthesis, optionally stopping after the block at `max_resolution`.

    Stopping early is how previews are fast: in the 'skip' architecture every block adds its own
    RGB contribution, so the image after block r is a real r x r rendering of the coarse styles.
    Other architectures only have an image at the end; they render fully and are downscaled.
    """
    syn = G.synthesis
    if max_resolution is None or max_resolution >= syn.img_resolution or syn.blocks()[0].architecture != "skip":
        return syn(ws, noise_mode=noise_mode)
    ws = ws.to(torch.float32)
    x = img = None
    for block, (start, count) in zip(syn.blocks(), syn.ws_ranges()):
        if block.resolution > max_resolution:
            break
        x, img = block(x, img, ws.narrow(1, start, count), noise_mode=noise_mode)
    return img


@contextlib.contextmanager
def _deterministic_cudnn() -> Iterator[None]:
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


@dataclass
class InFlight:
    """A batch whose pixels may still be on their way from the device (see `launch_batch`)."""

    batch: Batch
    pixels: torch.Tensor  # [frames * tiles, H, W, C] uint8 on the host (pinned when from a GPU)
    done: torch.cuda.Event | None
    tiles: int

    def wait(self) -> np.ndarray:
        """[frames, tiles, H, W, C] uint8, once the copy has landed."""
        if self.done is not None:
            self.done.synchronize()
        pixels = self.pixels.numpy()
        return pixels.reshape(len(self.batch.frames), self.tiles, *pixels.shape[1:])


@torch.no_grad()
def launch_batch(walk: Walk, batch: Batch, preview: bool = False) -> InFlight:
    """Queue one batch's generation and its copy to the host, without waiting for either.

    On a GPU the copy goes into pinned memory behind an event, so the caller can prepare and queue
    the next batch while this one computes; waiting (`InFlight.wait`) is the only sync. Everything
    is queued on one stream in order, so later changes (blended weights, bends, noise buffers) never
    reach a batch already queued. On the CPU the work is simply done here.
    """
    s = walk.script
    G = walk.set_weights(batch.weights)
    states: list[FrameState] = [walk.frame(i) for i in batch.frames]
    tiles = walk.tiles
    latent = to_device(torch.cat([st.latent for st in states]), walk.device)
    if s.space == "z":
        ws = spaces.map_z(G, latent, s.class_idx)
    else:
        ws = latent
    psi = torch.tensor([st.psi for st in states for _ in range(tiles)], dtype=torch.float32)
    ws = spaces.truncate(ws, G.mapping.w_avg, psi, s.truncation_cutoff)
    res = G.img_resolution
    max_res = preview_resolution(res) if preview else None
    image_ids = [f * tiles + k for f in batch.frames for k in range(tiles)]
    strength = [st.noise_strength for st in states for _ in range(tiles)]
    if len(walk.bends):
        walk.bends.amounts = torch.tensor([[st.bends[b] for st in states for _ in range(tiles)]
                                           for b in range(len(walk.bends))], dtype=torch.float32)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_deterministic_cudnn())
        if len(walk.bends):
            stack.enter_context(walk.bends.attach(G))
        if s.noise == "none" or all(x == 0 for x in strength):
            img = synthesize(G, ws, "none", max_res)
        elif s.noise == "const" and all(x == 1 for x in strength):
            # The network's own noise at its own strength (the default): per-image buffers of it
            # would hold the same numbers, at a dozen extra launches per batch.
            img = synthesize(G, ws, "const", max_res)
        else:
            noise = noise_mod.make_noise(G, image_ids, s.noise, strength, s.seed, walk.device, max_res)
            stack.enter_context(noise_mod.noise_inputs(G, noise))
            img = synthesize(G, ws, "const", max_res)
    walk.bends.amounts = None
    pixels = uint8_nhwc(img)
    if pixels.device.type != "cuda":
        return InFlight(batch, pixels.cpu(), None, tiles)
    host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
    host.copy_(pixels, non_blocking=True)  # queued on the current stream of pixels' device
    done = torch.cuda.Event()
    done.record(torch.cuda.current_stream(pixels.device))  # that stream, whatever the current device
    return InFlight(batch, host, done, tiles)


def render_batch(walk: Walk, batch: Batch, preview: bool = False) -> np.ndarray:
    """Generate one batch: [frames, tiles, H, W, C] uint8 at the model's (or preview) resolution."""
    return launch_batch(walk, batch, preview).wait()


def generate_batches(walk: Walk, batches: list[Batch], preview: bool = False
                     ) -> Iterator[tuple[Batch, np.ndarray]]:
    """(batch, pixels) in order, with the next batch queued before waiting for the current one.

    At video batch sizes on a GPU a batch computes in milliseconds, about as long as the host takes
    to prepare the next (keyframe interpolation, noise, truncation) — done one after the other, the
    device would idle for half of the time. A failure while queuing batch k+1 still delivers
    batch k first.
    """
    pending: InFlight | None = None
    for batch in batches:
        try:
            queued = launch_batch(walk, batch, preview)
        except BaseException:
            if pending is not None:
                yield pending.batch, pending.wait()
            raise
        if pending is not None:
            yield pending.batch, pending.wait()
        pending = queued
    if pending is not None:
        yield pending.batch, pending.wait()


def tile_size(walk: Walk, preview: bool = False) -> int:
    """Pixels per image in the output frames."""
    res = walk.G.img_resolution
    size = walk.script.size or res
    if preview:
        size = max(8, size * preview_resolution(res) // res)
    return size


def compose(images: np.ndarray, cols: int | None, size: int) -> np.ndarray:
    """[tiles, h, w, C] -> one frame: each image resized to size x size (Lanczos), tiled row-major."""
    if images.shape[1] != size or images.shape[2] != size:
        resized = []
        for im in images:
            pil = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
            arr = np.asarray(pil.resize((size, size), Image.LANCZOS))
            resized.append(arr[..., None] if arr.ndim == 2 else arr)
        images = np.stack(resized)
    if images.shape[0] == 1:
        return images[0]
    cols = cols or max(1, math.ceil(math.sqrt(images.shape[0])))
    return make_grid(images, cols=min(cols, images.shape[0]))


def render_frames(walk: Walk, preview: bool = False, start: int = 0, stop: int | None = None,
                  progress=None, prefetch: int = 2) -> Iterator[np.ndarray]:
    """Yield frames [H, W, C] uint8 (C = 1 or 3) for frames start..stop-1 of the walk.

    Batches are generated by one background thread up to `prefetch` batches ahead, so the device
    keeps working while the caller encodes or writes frames (torch releases the GIL while it
    computes). Order and content are the same as generating inline (`prefetch=0`): one thread makes
    every batch, in order. `progress` is called with the number of frames just finished.
    """
    stop = walk.num_frames if stop is None else min(stop, walk.num_frames)
    size = tile_size(walk, preview)
    batches = plan_batches(walk, start, stop)

    def frames_of(batch: Batch, pixels: np.ndarray) -> list[np.ndarray]:
        return [compose(images, walk.script.cols, size) for frame, images in zip(batch.frames, pixels)
                if start <= frame < stop]

    if prefetch <= 0:
        for batch, pixels in generate_batches(walk, batches, preview):
            done = frames_of(batch, pixels)
            yield from done
            if progress is not None and done:
                progress(len(done))
        return

    results: queue.Queue = queue.Queue(maxsize=prefetch)
    cancel = threading.Event()

    def put(item) -> None:
        while not cancel.is_set():  # never block forever: the consumer may have gone away
            try:
                results.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for batch, pixels in generate_batches(walk, batches, preview):
                if cancel.is_set():
                    return
                put(frames_of(batch, pixels))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put(e)
            return
        put(None)

    worker = threading.Thread(target=produce, name="bender-render", daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield from item
            if progress is not None and item:
                progress(len(item))
    finally:
        cancel.set()
        worker.join()

"""Training data: a StyleGAN2-ADA dataset zip -> minibatches on the training device.

Bending datasets are small (50-500 images), so by default every image is decoded once and kept as
one uint8 tensor on the training device: a minibatch is an index_select, and the GPU never waits
for a loader. Datasets too big for that (`--data-cache stream`, or automatically above
`MEMORY_LIMIT`) are streamed by a DataLoader with worker processes and pinned memory, prefetching
ahead of the step that needs them.

The order of images is a pure function of (seed, sample number): sample k of the run is item
perm_e[k mod N] of epoch e = k div N, with perm_e a seeded permutation. So a continued run sees
exactly the images it would have seen without stopping, and every process of a multi-GPU run can
compute its own share of the global batch without talking to the others.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bender.dataset import ZipDataset, read_dataset
from bender.errors import BenderError

MEMORY_LIMIT = 4 << 30  # decoded bytes kept resident when --data-cache auto


def read_images(path: str | Path) -> ZipDataset:
    """The dataset zip through bender.dataset's reader (NVIDIA's rules for members and labels)."""
    path = Path(path)
    if not path.is_file():
        raise BenderError(f"{path}: no such dataset; make one with `bender dataset pack IMAGES --out {path.name}`")
    images = read_dataset(path)
    if len(images) == 0:
        raise BenderError(f"{path}: the zip holds no images; pack one with `bender dataset pack`")
    return images


def decode(images: ZipDataset, index: int) -> np.ndarray:
    """Image `index` as C x H x W uint8; a broken member is a one-line error naming it."""
    try:
        return np.ascontiguousarray(images.image(index, chw=True))
    except BenderError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow/zipfile raise many types for broken members
        raise BenderError(f"{images.path}: cannot decode {images.names[index]} ({e}); "
                          "run `bender dataset check`") from None


@dataclass
class DatasetInfo:
    path: Path
    name: str
    size: int  # images (before mirroring)
    resolution: int
    channels: int
    c_dim: int  # 0 = unlabelled
    fingerprint: str  # sha256 of the zip


def fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def label_matrix(images: ZipDataset) -> np.ndarray:
    """[N, c_dim] float32 conditioning vectors (one-hot class indices); [N, 0] without labels."""
    if images.labels is None:
        return np.zeros([len(images), 0], dtype=np.float32)
    labels = images.labels
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu" or labels.min() < 0:
            raise BenderError(f"{images.path}: labels must be class indices 0, 1, 2, ...")
        onehot = np.zeros([len(labels), int(labels.max()) + 1], dtype=np.float32)
        onehot[np.arange(len(labels)), labels] = 1
        return onehot
    return labels.astype(np.float32).reshape(len(labels), -1)


def sample_indices(first: int, count: int, size: int, seed: int) -> np.ndarray:
    """Indices (into a dataset of `size` items) of run samples first .. first + count - 1."""
    out = np.empty(count, dtype=np.int64)
    k = first
    filled = 0
    while filled < count:
        epoch, pos = divmod(k, size)
        perm = np.random.RandomState(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]).permutation(size)
        take = min(size - pos, count - filled)
        out[filled:filled + take] = perm[pos:pos + take]
        filled += take
        k += take
    return out


class TrainingData:
    """Minibatches of (images in [-1, 1] float32 [n, C, H, W], labels [n, c_dim]) on `device`."""

    def __init__(self, path: str | Path, device: torch.device, seed: int = 0, mirror: bool = False,
                 cache: str = "auto", workers: int = 2):
        self.images = read_images(path)
        self.device = device
        self.seed = seed
        self.mirror = mirror
        first = decode(self.images, 0)
        c, h, w = first.shape
        if h != w or h & (h - 1) or h < 4:
            raise BenderError(f"{self.images.path}: images are {w}x{h}; training needs square power-of-two images "
                              f"(repack with `bender dataset pack ... --resolution {1 << max(h, w).bit_length() - 1}`)")
        if c not in (1, 3):
            raise BenderError(f"{self.images.path}: images have {c} channels; repack with --channels 3")
        self.labels = torch.from_numpy(label_matrix(self.images)).to(device)
        self.info = DatasetInfo(path=self.images.path, name=self.images.path.stem, size=len(self.images),
                                resolution=h, channels=c, c_dim=self.labels.shape[1],
                                fingerprint=fingerprint(self.images.path))
        self.length = len(self.images) * (2 if mirror else 1)
        nbytes = len(self.images) * c * h * w
        self.in_memory = cache == "memory" or (cache == "auto" and nbytes <= MEMORY_LIMIT)
        self.pixels: torch.Tensor | None = None
        if self.in_memory:
            self.pixels = self._decode_all().to(device)
        self.workers = workers
        self._stream = None
        self.set_share(1, 0, 1)

    def _decode_all(self) -> torch.Tensor:
        shape = (self.info.channels, self.info.resolution, self.info.resolution)

        def one(i: int) -> np.ndarray:
            return _checked(decode(self.images, i), shape, self.images, i)

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            arrays = list(pool.map(one, range(len(self.images))))
        return torch.from_numpy(np.stack(arrays))

    def widen_labels(self, c_dim: int) -> None:
        """Pad label vectors with zeros, for a model with more classes than the dataset uses."""
        if c_dim > self.info.c_dim:
            pad = torch.zeros([self.labels.shape[0], c_dim - self.info.c_dim], device=self.device)
            self.labels = torch.cat([self.labels, pad], dim=1)
            self.info.c_dim = c_dim

    def set_share(self, batch: int, start: int, count: int) -> None:
        """This process takes samples [start, start + count) of every global batch of `batch`."""
        self.global_batch, self.share_start, self.share_count = batch, start, count
        self._stream = None

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of training step `step`: images in [-1, 1] and labels."""
        first = step * self.global_batch + self.share_start
        idx = sample_indices(first, self.share_count, self.length, self.seed)
        n = len(self.images)
        flip = idx >= n
        # One small host->device copy for the step, from pinned memory without blocking (a plain
        # copy from pageable memory would wait for all queued GPU work).
        host = torch.from_numpy(np.stack([idx % n, flip.astype(np.int64)]))
        if self.device.type == "cuda":
            host = host.pin_memory()
        on_device = host.to(self.device, non_blocking=True)
        base = on_device[0]
        if self.in_memory:
            img = self.pixels.index_select(0, base)
            if self.mirror and flip.any():
                img = torch.where(on_device[1].bool()[:, None, None, None], img.flip(3), img)
        else:
            img = self._streamed(step).to(self.device, non_blocking=True)
        labels = self.labels.index_select(0, base)
        return img.to(torch.float32) / 127.5 - 1, labels

    def random_labels(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        """Labels of random dataset images, for conditioning fakes like the reals."""
        if self.info.c_dim == 0:
            return torch.zeros([n, 0], device=self.device)
        idx = torch.randint(len(self.images), [n], device=self.device, generator=gen)
        return self.labels.index_select(0, idx)

    # -- streaming --------------------------------------------------------------------------------

    def _streamed(self, step: int) -> torch.Tensor:
        """Steps are requested in order; a DataLoader prefetches the following ones."""
        if self._stream is None or self._stream[0] != step:
            self._stream = [step, iter(self._loader(step))]
        self._stream[0] += 1
        return next(self._stream[1])

    def _loader(self, step: int) -> torch.utils.data.DataLoader:
        shape = (self.info.channels, self.info.resolution, self.info.resolution)
        dataset = _StreamDataset(self.images, self.length, self.seed, shape, self.global_batch,
                                 self.share_start, self.share_count)
        return torch.utils.data.DataLoader(
            dataset, sampler=_Steps(step), batch_size=None, num_workers=self.workers,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if self.workers > 0 else None)


def _checked(pixels: np.ndarray, shape: tuple[int, int, int], images: ZipDataset, i: int) -> np.ndarray:
    if pixels.shape != shape:
        raise BenderError(f"{images.path}: {images.names[i]} is {pixels.shape[2]}x{pixels.shape[1]}x{pixels.shape[0]}"
                          f" but the first image is {shape[2]}x{shape[1]}x{shape[0]}; run `bender dataset check`")
    return pixels


class _Steps(torch.utils.data.Sampler):
    """Endless: step, step + 1, ..."""

    def __init__(self, first: int):
        self.first = first

    def __iter__(self):
        step = self.first
        while True:
            yield step
            step += 1


class _StreamDataset(torch.utils.data.Dataset):
    """Item `step` is one process's share of that training step, as a uint8 [n, C, H, W] tensor."""

    def __init__(self, images: ZipDataset, length: int, seed: int, shape: tuple[int, int, int], batch: int,
                 start: int, count: int):
        self.images, self.length, self.seed, self.shape = images, length, seed, shape
        self.batch, self.start, self.count = batch, start, count

    def __getitem__(self, step: int) -> torch.Tensor:
        idx = sample_indices(step * self.batch + self.start, self.count, self.length, self.seed)
        n = len(self.images)
        out = np.stack([_checked(decode(self.images, int(i % n)), self.shape, self.images, int(i % n)) for i in idx])
        flip = idx >= n
        out[flip] = out[flip, :, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(out))

    def __len__(self) -> int:  # endless; the sampler decides
        return self.length

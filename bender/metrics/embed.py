"""Turning images into feature vectors: from image sets (decoded in threads) and from generators.

Generated samples are rounded to 8-bit pixels exactly as a saved PNG would be before they are
embedded, so generated and real images reach the extractor through the same pixel path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bender.curate.sources import ImageItem, ImageSet, UnreadableImage
from bender.latent.seeds import zs_from_seeds
from bender.nets.cnn import FeatureExtractor


def uint8_to_tensor(batch: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """[N, H, W, C] uint8 -> [N, C, H, W] float32 in [-1, 1] (NVIDIA's pixel convention, inverted)."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return x.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1


def quantise(img: torch.Tensor) -> torch.Tensor:
    """Generator output -> the [-1, 1] image its 8-bit PNG would hold (x*127.5+128, clamp, truncate)."""
    return (img * 127.5 + 128).clamp(0, 255).floor() / 127.5 - 1


@torch.no_grad()
def embed_arrays(extractor: FeatureExtractor, batches: Iterable[np.ndarray], device: torch.device | str,
                 on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Embed batches of [N, H, W, C] uint8 images -> [total, dim] float32."""
    out = []
    for batch in batches:
        out.append(extractor(uint8_to_tensor(batch, device)).float().cpu().numpy())
        if on_batch:
            on_batch(len(batch))
    return np.concatenate(out) if out else np.zeros([0, extractor.dim], np.float32)


def decode_batches(image_set: ImageSet, items: Sequence[ImageItem], size: int | None, batch_size: int,
                   errors: dict[str, str], workers: int | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield (indices into `items`, [n, size, size, 3] uint8) batches, decoded ahead in a thread pool.

    `size=None` keeps the stored size (dataset zips, whose images all share one size), so the
    extractor resizes real and generated images with the same code.

    Pillow releases the GIL while decoding and resizing, so threads use every core. Unreadable
    images are skipped and their reason recorded in `errors[item.key]`.
    """
    workers = workers or max(1, min(8, os.cpu_count() or 1))

    def read(i: int):
        try:
            return i, image_set.read(items[i], size)
        except UnreadableImage as e:
            return i, str(e)

    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(items), batch_size):
            results = list(pool.map(read, range(start, min(start + batch_size, len(items)))))
            good = [(i, a) for i, a in results if isinstance(a, np.ndarray)]
            for i, a in results:
                if not isinstance(a, np.ndarray):
                    errors[items[i].key] = a
            if good:
                yield [i for i, _ in good], np.stack([a for _, a in good])


def embed_image_set(extractor: FeatureExtractor, image_set: ImageSet, items: Sequence[ImageItem],
                    device: torch.device | str, batch_size: int = 32, progress: bool = False,
                    size: int | None = -1) -> tuple[np.ndarray, list[int], dict[str, str]]:
    """Embed `items` -> (features [n_ok, dim], indices of the embedded items, {key: error} for the rest).

    Images are decoded at the extractor's input size (`size=-1`, fast for big photos), or at `size`.
    """
    errors: dict[str, str] = {}
    indices: list[int] = []
    feats: list[np.ndarray] = []
    bar = _progress(len(items), "embedding", progress)
    with torch.no_grad():
        size = extractor.input_size if size == -1 else size
        for idx, batch in decode_batches(image_set, items, size, batch_size, errors):
            feats.append(extractor(uint8_to_tensor(batch, device)).float().cpu().numpy())
            indices += idx
            bar.update(len(idx))
    bar.close()
    out = np.concatenate(feats) if feats else np.zeros([0, extractor.dim], np.float32)
    return out, indices, errors


@torch.no_grad()
def generate_uint8(G: torch.nn.Module, seeds: Sequence[int], device: torch.device | str, batch_size: int = 16,
                   truncation_psi: float = 1.0, noise_mode: str = "const") -> Iterator[torch.Tensor]:
    """Yield batches of generated images [n, C, R, R] in [-1, 1], already rounded to 8-bit levels.

    Conditional models get class `seed % c_dim`, so a fixed seed list is a fixed class mix.
    """
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        z = zs_from_seeds(chunk, G.z_dim, device)
        c = torch.zeros([len(chunk), G.c_dim], device=device)
        if G.c_dim:
            c[torch.arange(len(chunk)), torch.tensor([s % G.c_dim for s in chunk])] = 1
        img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, force_fp32=True)
        yield quantise(img.float())


@torch.no_grad()
def embed_generator(extractor: FeatureExtractor, G: torch.nn.Module, seeds: Sequence[int],
                    device: torch.device | str, batch_size: int = 16, truncation_psi: float = 1.0,
                    progress: bool = False) -> np.ndarray:
    """Features of G's samples for `seeds` [len(seeds), dim] float32 (deterministic: const noise)."""
    out = []
    bar = _progress(len(seeds), "sampling", progress)
    for img in generate_uint8(G, seeds, device, batch_size, truncation_psi):
        out.append(extractor(img).float().cpu().numpy())
        bar.update(len(img))
    bar.close()
    return np.concatenate(out)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False)

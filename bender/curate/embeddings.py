"""Embeddings of an image set, cached next to the report so a second curation run is instant.

The cache (`embeddings-<extractor key>.npz`) stores each image's key and stamp (file size + mtime);
only new or changed images are embedded again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bender.curate.sources import ImageItem, ImageSet
from bender.fileio import atomic_path
from bender.nets.cnn import FeatureExtractor


def embed_set(image_set: ImageSet, items: list[ImageItem], extractor: FeatureExtractor, cache_dir: Path | None,
              device: torch.device | str, batch_size: int = 32, progress: bool = False,
              ) -> tuple[np.ndarray, dict[str, str]]:
    """Features [len(items), dim] (NaN rows for unreadable images) and {key: reason} for those."""
    from bender.metrics.embed import embed_image_set

    cache = cache_dir / f"embeddings-{extractor.key or extractor.name}.npz" if cache_dir else None
    known: dict[tuple[str, str], np.ndarray] = {}
    if cache is not None and cache.is_file():
        try:
            with np.load(cache) as z:
                known = {(str(k), str(s)): f for k, s, f in zip(z["keys"], z["stamps"], z["features"])}
        except (OSError, ValueError, KeyError):
            known = {}
    stamps = [image_set.stamp(i) for i in items]
    out = np.full([len(items), extractor.dim], np.nan, dtype=np.float32)
    todo = []
    for n, (item, stamp) in enumerate(zip(items, stamps)):
        hit = known.get((item.key, stamp))
        if hit is not None:
            out[n] = hit
        else:
            todo.append(n)
    errors: dict[str, str] = {}
    if todo:
        feats, done, errors = embed_image_set(extractor, image_set, [items[n] for n in todo], device, batch_size,
                                              progress=progress)
        for row, j in enumerate(done):
            out[todo[j]] = feats[row]
        if cache is not None:
            ok = ~np.isnan(out).any(axis=1)
            with atomic_path(cache) as tmp:
                np.savez(tmp, keys=np.array([i.key for i in items])[ok], stamps=np.array(stamps)[ok],
                         features=out[ok])
    return out, errors

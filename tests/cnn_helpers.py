"""Builders shared by the CNN/metrics/curation tests: generated image sets, dataset zips, fake runs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def scene(rng: np.random.RandomState, size: int = 320) -> Image.Image:
    """A random abstract picture: a two-colour gradient with 3-6 coloured ellipses and rectangles."""
    c0, c1 = rng.randint(0, 256, 3), rng.randint(0, 256, 3)
    a = rng.uniform(0, np.pi)
    ramp = np.linspace(0, 1, size)
    g = np.cos(a) * ramp[None, :, None] + np.sin(a) * ramp[:, None, None]
    g = (g - g.min()) / (g.max() - g.min())
    im = Image.fromarray((c0 * (1 - g) + c1 * g).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randint(0, size, 2)
        w, h = rng.randint(size // 12, size // 2, 2)
        color = tuple(int(v) for v in rng.randint(0, 256, 3))
        (draw.ellipse if rng.randint(2) else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=color)
    return im


def stripes(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: horizontal (0) vs vertical (1) sine stripes; random frequency, phase, colours, noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for i in range(n):
        c = i % 2
        wave = np.sin((yy if c == 0 else xx) * rng.uniform(2, 5) * 2 * np.pi / size + rng.uniform(0, 2 * np.pi))
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        img = c0 + (wave[..., None] + 1) / 2 * (c1 - c0) + rng.normal(0, 20, (size, size, 3))
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        labels.append(c)
    return np.stack(images), np.array(labels)


def texture_crops(name: str, n: int, size: int, seed: int) -> list[Image.Image]:
    """Random tinted crops of one of scikit-image's bundled CC0 textures ('gravel', 'grass', 'brick')."""
    import skimage.data

    tex = getattr(skimage.data, name)()
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        s = rng.randint(160, 400)
        y, x = rng.randint(0, tex.shape[0] - s), rng.randint(0, tex.shape[1] - s)
        crop = tex[y:y + s, x:x + s].astype(np.float32)
        crop = crop[..., None] if crop.ndim == 2 else crop
        rgb = np.clip(crop * rng.uniform(0.5, 1.0, 3), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(rgb).resize((size, size)))
    return out


def write_nvidia_zip(path: Path, images: list[np.ndarray], labels: list[int] | None = None,
                     class_names: list[str] | None = None) -> Path:
    """A dataset zip in StyleGAN2-ADA's layout: 00000/img00000000.png ..., dataset.json last."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        names = []
        for i, arr in enumerate(images):
            name = f"{i // 1000:05d}/img{i:08d}.png"
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
            names.append(name)
        meta: dict = {"labels": None if labels is None else [[n, int(c)] for n, c in zip(names, labels)]}
        if class_names:
            meta["class_names"] = class_names
        zf.writestr("dataset.json", json.dumps(meta))
    return path


def clone(model):
    """Model.clone without the NVIDIA pickle skeleton (which does not deep-copy; not needed here)."""
    return dataclasses.replace(model, nvidia=None).clone()


def tamed(model):
    """The fixture model with its toRGB layers scaled by 0.1: images in about [-1, 1] instead of +-15.

    The fixture's weights are random and its raw images mostly clip to black/white; tamed, a colour
    shift (below) changes pixels instead of vanishing in the clipping.
    """
    out = clone(model)
    with torch.no_grad():
        for block in out.G_ema.synthesis.blocks():
            block.torgb.weight.mul_(0.1)
            block.torgb.bias.mul_(0.1)
    return out


COLOUR_SHIFT = (0.45, -0.3, 0.25)


def shifted(model, t: float):
    """`model` whose images carry t x a fixed colour cast: the last toRGB bias is added to every pixel."""
    out = clone(model)
    with torch.no_grad():
        out.G_ema.synthesis.blocks()[-1].torgb.bias.add_(torch.tensor(COLOUR_SHIFT) * t)
    return out


def generated_uint8(model, seeds: list[int]) -> list[np.ndarray]:
    from bender.latent.seeds import zs_from_seeds
    from bender.render.images import to_uint8

    with torch.no_grad():
        z = zs_from_seeds(seeds, model.G_ema.z_dim)
        img = model.G_ema(z, None, noise_mode="const", force_fp32=True)
    return list(to_uint8(img))


def fake_run(root: Path, original, ts: list[float], kimgs: list[float], n_real: int = 48,
             config_key: str = "data") -> tuple[Path, Path]:
    """A run whose snapshots move from `original` (t=0) to the model that made the dataset (t=1).

    The move is a controlled colour cast (see `shifted`), so distance to the target must fall and
    distance from the original must grow with t. The dataset uses other seeds than the samples.
    """
    from bender.io import save_model

    reals = generated_uint8(shifted(original, 1.0), list(range(5000, 5000 + n_real)))
    data = write_nvidia_zip(root / "target.zip", reals)
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({config_key: str(data)}))
    for t, kimg in zip(ts, kimgs):
        snap = shifted(original, t)
        snap.lineage.kimg = kimg
        save_model(snap, run / "checkpoints" / f"snapshot-{kimg:010.3f}.safetensors")
    return run, data


@contextlib.contextmanager
def torch_threads(n: int):
    """Run tiny networks on one thread: for 16-64 px images, thread start-up costs more than it saves
    (and on a loaded 2-core machine it is several times slower). Restores the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def has_mobilenet() -> bool:
    from bender.metrics.features import mobilenet_available

    return mobilenet_available()

"""Training faces for the embedded default model, sampled from a small MIT-licensed DCGAN.

NVIDIA's pretrained face networks cannot ship inside bender, and nothing may be downloaded, so the
default model is trained on faces drawn from the 64x64 DCGAN generator that the PyPI package
`gan-face-generate` (MIT licence; trained on the synthetic DigiFace-1M faces) carries with its
weights. Install it with `pip install --no-deps gan-face-generate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from bender.errors import BenderError

DCGAN_PACKAGE = "gan-face-generate"
DCGAN_LICENCE = "MIT (Copyright (c) 2023 Chien Liu); weights trained on DigiFace-1M synthetic faces"
Z_DIM = 100


def load_dcgan() -> torch.nn.Module:
    """The package's DCGAN generator with its shipped weights (read with weights_only=True)."""
    try:
        import gan_face_generate
        from gan_face_generate.models import Generator
    except ImportError:
        raise BenderError(f"the face DCGAN is not installed: pip install --no-deps {DCGAN_PACKAGE}") from None
    weights = Path(gan_face_generate.__file__).parent / "weights.tar"
    state = torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"]
    net = Generator(0, 3, Z_DIM, 64)
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


@torch.inference_mode()
def sample_faces(count: int, seed: int = 0, batch: int = 256) -> Iterator[np.ndarray]:
    """Yield `count` 64x64x3 uint8 faces; the same seed gives the same faces."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = load_dcgan().to(device)
    gen = torch.Generator().manual_seed(seed)  # latents drawn on the CPU: same faces on any device
    done = 0
    while done < count:
        n = min(batch, count - done)
        z = torch.randn(n, Z_DIM, 1, 1, generator=gen).to(device)
        img = net(z).cpu()  # tanh output in [-1, 1]
        pixels = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        yield from pixels
        done += n


def write_faces(folder: Path, count: int, seed: int = 0) -> Path:
    """Write faces as PNG files (face-000000.png ...) for `bender dataset pack`."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, face in enumerate(sample_faces(count, seed)):
        Image.fromarray(face).save(folder / f"face-{i:06d}.png", compress_level=1)
    return folder


def main(argv: list[str] | None = None) -> None:
    """`python -m bender.demo.faces --out DIR --count N [--seed S]`: write the training faces."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    write_faces(args.out, args.count, args.seed)
    print(f"wrote {args.count} faces to {args.out}")


if __name__ == "__main__":
    main()

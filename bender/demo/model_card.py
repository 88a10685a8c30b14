"""The embedded default model's card: what it is, how it was made, and numbers anyone can recompute.

`python -m bender.demo.model_card SNAPSHOT --out bender/assets` turns a training snapshot into the
shipped model (`default-64.safetensors`), a sample grid and the card (`default-64.md` for people,
`default-64.json` for tests). The card's bend distance is recomputed by the test suite from the
shipped file, so the published number cannot drift from the model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MODEL_NAME = "default-64"
SAMPLE_SEEDS = list(range(16))  # the grid in the card
EVAL_SAMPLES = 512  # generated images and DCGAN faces compared for the bend distance
EVAL_FACES_SEED = 12345  # faces the model never saw (training used seed 0)
FEATURES = "mobilenet_v2"


@dataclass
class Measurement:
    distance: float  # Fréchet distance, default model samples vs fresh DCGAN faces
    features: str  # extractor key (name + weights hash)
    samples: int


def bend_distance_to_faces(model_path: str | Path, samples: int = EVAL_SAMPLES, device: str = "cpu") -> Measurement:
    """Fréchet distance in ImageNet-MobileNetV2 features between the model's samples (seeds 0..N-1,
    const noise, psi 1) and N DCGAN faces it was not trained on: how close it is to its training
    distribution. The same number `bender metrics` reports as distance-to-target."""
    from bender.demo.faces import sample_faces
    from bender.io import load
    from bender.metrics.embed import embed_arrays, embed_generator
    from bender.metrics.features import load_feature_extractor
    from bender.metrics.frechet import frechet_distance

    torch.manual_seed(0)
    G = load(model_path, device=device).G_ema
    extractor = load_feature_extractor(FEATURES, device)
    fake = embed_generator(extractor, G, list(range(samples)), device)
    faces = np.stack(list(sample_faces(samples, seed=EVAL_FACES_SEED)))
    real = embed_arrays(extractor, (faces[i:i + 32] for i in range(0, samples, 32)), device)
    return Measurement(distance=float(frechet_distance(fake, real)), features=extractor.key, samples=samples)


def write_card(snapshot: Path, out_dir: Path, training: dict) -> dict:
    """Ship `snapshot` as the default model in `out_dir`, with its sample grid and card."""
    from bender.io import load, save_model
    from bender.latent.generate import images_for_seeds
    from bender.render.images import make_grid, save_png

    model = load(snapshot)
    model.lineage.notes = {"trained_by": "bender train (from scratch)", "data": "DCGAN faces (gan-face-generate)"}
    model.training_set_kwargs = None
    model_path = save_model(model, out_dir / f"{MODEL_NAME}.safetensors")
    grid = make_grid(images_for_seeds(model.G_ema, SAMPLE_SEEDS, noise_mode="const"), cols=8)
    save_png(grid, out_dir / f"{MODEL_NAME}-samples.png", {"seeds": "0-15", "truncation_psi": 1.0,
                                                          "model": f"{MODEL_NAME}.safetensors"})
    m = bend_distance_to_faces(model_path)
    g = model.g_config
    card = {
        "model": f"{MODEL_NAME}.safetensors",
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "bytes": model_path.stat().st_size,
        "architecture": {"resolution": g.img_resolution, "z_dim": g.z_dim, "w_dim": g.w_dim,
                         "mapping_layers": g.mapping.num_layers, "channel_base": g.synthesis.channel_base,
                         "channel_max": g.synthesis.channel_max, "G_parameters": sum(
                             p.numel() for p in model.G_ema.parameters()),
                         "networks": sorted(model.networks())},
        "kimg": model.lineage.kimg,
        "training": training,
        "data": {"source": "64x64 faces sampled from the DCGAN generator in the PyPI package gan-face-generate 1.1.1",
                 "licence": "MIT (Copyright (c) 2023 Chien Liu); the DCGAN was trained on DigiFace-1M synthetic faces",
                 "count": training.get("faces", 20000), "seed": 0},
        "bend_distance_to_dcgan_faces": {"value": round(m.distance, 4), "features": m.features,
                                         "samples": m.samples, "generated_seeds": f"0-{m.samples - 1}",
                                         "faces_seed": EVAL_FACES_SEED, "noise_mode": "const", "psi": 1.0},
        "samples_png": f"{MODEL_NAME}-samples.png",
    }
    (out_dir / f"{MODEL_NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / f"{MODEL_NAME}.md").write_text(render_markdown(card))
    return card


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def render_markdown(card: dict) -> str:
    a, t, d, b = card["architecture"], card["training"], card["data"], card["bend_distance_to_dcgan_faces"]
    return f"""# Model card: bender's embedded default model (`{card['model']}`)

![samples](default-64-samples.png)

*Seeds 0-15, ψ 1, const noise.*

**What it is.** A small StyleGAN2 generator of 64×64 faces ({a['G_parameters']:,} generator parameters;
z = w = {a['z_dim']}, {a['mapping_layers']} mapping layers, channel_base {a['channel_base']}, channel_max
{a['channel_max']}), shipped inside bender so that `bender demo`, the notebooks and the UI work
offline. The file holds {', '.join(a['networks'])}, so it can be fine-tuned (bent) directly:
`bender train --data rocks.zip --resume default`. {card['bytes'] / 1e6:.1f} MB, sha256 `{card['sha256'][:16]}…`.

**Data.** {d['count']:,} {d['source']} (seed {d['seed']}). Licence: {d['licence']}. No
photograph of a real person was used.

**Training.** From scratch with bender's own trainer, {card['kimg']:g} kimg: `{t['command']}`.
Hardware: {t['hardware']}. Wall time: {_duration(t['hours'])}. Reproduce with `examples/train_default_model.sh`.
{t.get('note', '')}

**Bend distance to its training faces.** Fréchet distance in ImageNet-MobileNetV2 features between
{b['samples']} samples (seeds {b['generated_seeds']}, ψ {b['psi']}, {b['noise_mode']} noise) and {b['samples']}
fresh DCGAN faces (seed {b['faces_seed']}): **{b['value']}** (features `{b['features']}`). Lower is closer;
`tests/test_default_model.py` recomputes it from the shipped file.

**Limits.** Low resolution and few parameters: faces are soft and samples repeat features of the
DCGAN's style. It is a demonstration model for bending, not a portrait generator.
"""


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Ship a training snapshot as bender's default model, with its card.")
    ap.add_argument("snapshot", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets")
    ap.add_argument("--command", required=True, help="the training command, for the card")
    ap.add_argument("--hardware", required=True)
    ap.add_argument("--hours", type=float, required=True)
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    card = write_card(args.snapshot, args.out, {"command": args.command, "hardware": args.hardware,
                                                 "hours": args.hours, "faces": args.faces, "note": args.note})
    print(json.dumps(card["bend_distance_to_dcgan_faces"]))


if __name__ == "__main__":
    main()

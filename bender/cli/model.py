"""`bender info`, `bender convert`, `bender generate`: looking at, converting and sampling models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bender.cli.common import IntList


@click.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(model: str, as_json: bool) -> None:
    """Describe MODEL (an NVIDIA .pkl, a bender .safetensors, a run folder, or 'default')."""
    from bender.io import load

    m = load(model)
    desc = m.describe()
    if as_json:
        click.echo(json.dumps(desc, indent=2, default=str))
        return
    lin = desc.pop("lineage")
    kind = f"conditional ({desc['c_dim']} classes)" if desc["c_dim"] else "unconditional"
    click.echo(f"{Path(model).name}: StyleGAN2 generator {desc['resolution']}x{desc['resolution']}, "
               f"{desc['img_channels']} channels, {kind}")
    for key, value in desc.items():
        click.echo(f"  {key:28s} {value}")
    click.echo("  lineage:")
    for key, value in lin.items():
        if value not in ("", None, {}, 0.0):
            click.echo(f"    {key:26s} {value}")


@click.command()
@click.argument("src")
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--ema-only", is_flag=True, help="Keep only G_ema (smaller file for rendering; cannot resume training).")
def convert(src: str, dst: str, ema_only: bool) -> None:
    """Convert SRC to DST: .safetensors (bender's format) or .pkl (NVIDIA's, for models that came from one)."""
    from bender.errors import BenderError
    from bender.io import export_nvidia, load, save_model

    m = load(src)
    suffix = Path(dst).suffix.lower()
    if suffix == ".safetensors":
        if ema_only:
            m.G, m.D, m.nvidia = None, None, None
        save_model(m, dst)
    elif suffix == ".pkl":
        if ema_only:
            raise BenderError("--ema-only applies to .safetensors output; NVIDIA pickles keep G, D and G_ema")
        export_nvidia(m, dst)
    else:
        raise BenderError(f"{dst}: choose the output format by extension: .safetensors or .pkl")
    click.echo(f"wrote {dst}")


@click.command()
@click.argument("model")
@click.option("--seeds", type=IntList(), default="0-7", show_default=True, help="Seeds, e.g. 0-7,12.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", type=int, default=None, help="Truncate only the first K ws (coarse layers).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--class", "class_idx", type=int, default=None, help="Class index for conditional models.")
@click.option("--outdir", type=click.Path(file_okay=False), required=True)
@click.option("--grid", is_flag=True, help="Also write all images as one grid.png.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--bf16", is_flag=True, help="Run the model's reduced-precision blocks in bfloat16 (faster on "
              "CPUs with AVX512-BF16/AMX and on GPUs; ~1%% of the range in error). Default: float32 on CPU, "
              "float16 on CUDA.")
def generate(model, seeds, psi, trunc_cutoff, noise_mode, class_idx, outdir, grid, batch, device, bf16) -> None:
    """Generate one PNG per seed (seed0042.png), the same pictures NVIDIA's generate.py makes."""
    import torch

    import bender
    from bender.device import pick_device
    from bender.errors import BenderError
    from bender.io import load
    from bender.latent.generate import images_for_seeds
    from bender.render.images import make_grid, save_png

    dev = pick_device(device)
    m = load(model, device=dev)
    G = m.G_ema
    try:
        images = images_for_seeds(G, seeds, psi, trunc_cutoff, noise_mode, class_idx, batch_size=batch, device=dev,
                                  half_dtype=torch.bfloat16 if bf16 else torch.float16)
    except ValueError as e:
        raise BenderError(str(e)) from None
    outdir = Path(outdir)
    meta_common = {"model": Path(model).name if model != "default" else "default",
                   "model_sha256": m.lineage.source_sha256, "truncation_psi": psi, "truncation_cutoff": trunc_cutoff,
                   "noise_mode": noise_mode, "class": class_idx, "precision": "bf16" if bf16 else "default",
                   "software": f"bender {bender.__version__}"}
    for seed, image in zip(seeds, images):
        save_png(image, outdir / f"seed{seed:04d}.png", {"seed": seed, **meta_common})
    if grid:
        save_png(make_grid(images), outdir / "grid.png", {"seeds": ",".join(map(str, seeds)), **meta_common})
    click.echo(f"wrote {len(seeds)} image(s) to {outdir}")

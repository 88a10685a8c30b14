"""`bender train`: fine-tune (or train from scratch) on a dataset zip; `--continue RUN` resumes a run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bender.cli.common import IntList
from bender.errors import BenderError

_ARCH = {"resolution", "z_dim", "w_dim", "channel_base", "channel_max", "map_layers", "num_fp16_res", "conv_clamp",
         "g_arch", "d_arch", "mbstd_group", "cond"}


def _flag(name: str, help: str):
    return click.option(f"--{name}/--no-{name}", default=None, help=help)


@click.command(context_settings={"show_default": True})
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), help="Dataset zip (NVIDIA layout).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              help="Folder for runs; each run gets its own numbered subfolder.")
@click.option("--resume", "resume", default=None,
              help="Model to fine-tune: NVIDIA .pkl, bender .safetensors, a run folder, or 'default'.")
@click.option("--continue", "continue_run", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Continue this run folder from its latest snapshot (same settings).")
@click.option("--preset", type=click.Choice(["bend", "gentle", "scratch"]), default=None,
              help="bend: tens of kimg, ADA, for 50-500 images; gentle: lighter touch; scratch: random init. "
                   "[default: bend, or scratch without --resume]")
@click.option("--kimg", type=float, default=None, help="Train this many thousand images (fractions allowed).")
@click.option("--snap", type=float, default=None, help="Snapshot every this many kimg (fractions allowed).")
@click.option("--batch", type=int, default=None, help="Global minibatch size. [default: 16]")
@click.option("--batch-gpu", type=int, default=None, help="Images per process per round (gradient accumulation).")
@click.option("--seed", type=int, default=None, help="Random seed. [default: 0]")
@click.option("--preview-seeds", type=IntList(), default=None, help="Fixed preview latents. [default: 0-15]")
@click.option("--lr", type=float, default=None, help="Adam learning rate. [default: 0.0025; 0.002 at 1024²]")
@click.option("--lr-scale", type=float, default=None, help="Multiply the learning rate.")
@click.option("--gamma", type=float, default=None, help="R1 weight. [default: 0.0002·res²/batch]")
@click.option("--r1-interval", type=int, default=None, help="Lazy R1 every N steps. [default: 16]")
@click.option("--pl-weight", type=float, default=None, help="Path-length weight (0 = off). [default: 2]")
@click.option("--pl-interval", type=int, default=None, help="Path length every N steps. [default: 4]")
@click.option("--style-mixing", type=float, default=None, help="Share of style-mixed fakes. [default: 0.9]")
@click.option("--ema-kimg", type=float, default=None, help="G_ema half-life in kimg. [default: batch·10/32]")
@click.option("--ema-rampup", type=float, default=None, help="EMA ramp-up (0 = none). [preset]")
@click.option("--aug", type=click.Choice(["ada", "fixed", "none"]), default=None, help="Augmentation mode. [ada]")
@click.option("--aug-spec", default=None, help="Augmentations: b(lit) g(eometric) c(olour) f(ilter). [bgc]")
@click.option("--aug-p", type=float, default=None, help="Start (ada) or constant (fixed) p. [model's p, or 0 / 0.2]")
@click.option("--ada-target", type=float, default=None, help="ADA target for E[sign D(real)]. [0.6]")
@click.option("--ada-interval", type=int, default=None, help="Adjust p every N steps. [4]")
@click.option("--ada-kimg", type=float, default=None, help="kimg for p to be able to go 0 -> 1. [preset]")
@_flag("mirror", "Add x-flipped copies of the dataset. [preset]")
@click.option("--freeze-d", type=int, default=None, help="Freeze-D: keep the first N D layers fixed. [preset]")
@_flag("freeze-mapping", "Keep G's mapping network fixed. [preset]")
@click.option("--freeze-g-below", type=int, default=None, help="Keep G's blocks below this resolution fixed.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N. [auto]")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), default=None,
              help="Dtype of the networks' half-precision blocks on GPU. [auto: bf16]")
@_flag("channels-last", "channels_last memory format. [on for CUDA]")
@_flag("compile", "torch.compile the passes without double backward. [off]")
@click.option("--compile-mode", type=click.Choice(["auto", "default", "reduce-overhead", "max-autotune",
                                                   "max-autotune-no-cudagraphs"]), default=None,
              help="torch.compile mode. [auto: reduce-overhead (CUDA graphs) on CUDA, default on CPU]")
@_flag("cuda-graphs", "Record each training phase as a CUDA graph and replay it (CUDA; not with --compile). [off]")
@_flag("tf32", "TF32 matmuls/convolutions on Ampere+ GPUs. [on]")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes when streaming. [2]")
@click.option("--data-cache", type=click.Choice(["auto", "memory", "stream"]), default=None,
              help="Keep decoded images on the device, or stream them. [auto]")
@click.option("--tick", type=float, default=None, help="Seconds between progress lines. [2]")
@_flag("export-pkl", "Also write each snapshot as an NVIDIA pickle (models that came from one). [off]")
@_flag("timeline", "Render RUN/timeline.mp4 at the end. [on]")
@click.option("--stop-when", default=None, help="Stop when the bend metric says so (see `bender metrics`).")
@click.option("--resolution", type=int, default=None, help="(scratch) Resolution. [dataset's]")
@click.option("--z-dim", type=int, default=None, help="(scratch) Latent z size. [512]")
@click.option("--w-dim", type=int, default=None, help="(scratch) Latent w size. [512]")
@click.option("--channel-base", type=int, default=None, help="(scratch) Channel base. [16384; 32768 from 512²]")
@click.option("--channel-max", type=int, default=None, help="(scratch) Channel max. [512]")
@click.option("--map-layers", type=int, default=None, help="(scratch) Mapping layers. [2]")
@click.option("--num-fp16-res", type=int, default=None, help="(scratch) Half-precision top resolutions. [4]")
@click.option("--conv-clamp", type=float, default=None, help="(scratch) Clamp conv outputs (0 = off). [256]")
@click.option("--g-arch", type=click.Choice(["orig", "skip", "resnet"]), default=None, help="(scratch) [skip]")
@click.option("--d-arch", type=click.Choice(["orig", "skip", "resnet"]), default=None, help="(scratch) [resnet]")
@click.option("--mbstd-group", type=int, default=None, help="(scratch) Minibatch-stddev group size. [4]")
@_flag("cond", "(scratch) Condition on the dataset's labels when it has some. [on]")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def train(data, out, resume, continue_run, preset, quiet, **options):
    """Fine-tune a pretrained StyleGAN2 (--resume) or train from scratch on a dataset zip.

    \b
    Examples:
      bender train --data rocks.zip --resume ffhq-256.pkl --kimg 40 --snap 4
      bender train --data faces64.zip --preset scratch --resolution 64 --channel-base 4096 --channel-max 128
      bender train --continue runs/00003-rocks-bend --kimg 80
      torchrun --nproc_per_node 4 -m bender train --data rocks.zip --resume ffhq.pkl --batch 32
    """
    from bender.train.config import continue_config, make_config
    from bender.train.loop import train as run_training

    given = {k: v for k, v in options.items() if v is not None}
    if continue_run is not None:
        if resume or preset:
            raise BenderError("--continue takes its model and preset from the run; drop --resume/--preset")
        record = _read_run_config(continue_run)
        if data is not None and Path(record["train"]["data"]).resolve() != data.resolve():
            raise BenderError(f"--continue: this run trains on {record['train']['data']}; drop --data")
        arch = {k: given.pop(k) for k in list(given) if k in _ARCH}
        if arch:
            raise BenderError(f"--continue keeps the run's architecture; drop {', '.join('--' + k for k in arch)}")
        cfg = continue_config(record, given)
    else:
        if data is None:
            raise BenderError("--data DATASET.zip is required (or --continue RUN)")
        preset = preset or ("bend" if resume else "scratch")
        if resume is None and preset != "scratch":
            raise BenderError(f"--preset {preset} fine-tunes a model: add --resume MODEL (e.g. --resume default), "
                              "or use --preset scratch")
        if resume is not None and any(k in _ARCH for k in given):
            raise BenderError("architecture options (--resolution, --channel-base, ...) are for training from "
                              "scratch; a resumed model keeps its own architecture")
        if resume is not None and Path(resume).exists():
            resume = str(Path(resume).resolve())  # config.json must work from any folder
        cfg = make_config(preset, data=str(data.resolve()), out=str(out), resume=resume, **given)
    conditions = []
    if cfg.stop_when:
        conditions.append(_stop_condition(cfg.stop_when, Path(cfg.data)))
    result = run_training(cfg, continue_run=continue_run, stop_conditions=conditions, quiet=quiet)
    click.echo(json.dumps({"run": str(result.run_dir), "kimg": result.kimg, "snapshot": str(result.snapshot),
                           "reason": result.reason}))


def _read_run_config(run: Path) -> dict:
    path = run / "config.json"
    if not path.is_file():
        raise BenderError(f"{run}: not a training run (no config.json); pass a folder `bender train` created")
    try:
        record = json.loads(path.read_text())
    except ValueError:
        raise BenderError(f"{path}: damaged config.json") from None
    if "train" not in record:
        raise BenderError(f"{path}: not written by `bender train`")
    return record


def _stop_condition(spec: str, dataset: Path):
    try:
        from bender.metrics.stop import parse_stop_when
    except ImportError:
        raise BenderError("--stop-when needs the bend metrics (bender.metrics.stop), which this install lacks; "
                          "drop --stop-when and stop the run by hand (Ctrl-C, or create RUN/STOP)") from None
    return parse_stop_when(spec, dataset)

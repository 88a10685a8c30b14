"""Training configuration: one dataclass, three presets, and the rules that fill in 'auto' values.

A run's `config.json` is exactly `TrainConfig` as JSON, so `bender train --continue RUN` rebuilds
the same run; the few settings that may change on a continue (length, snapshot interval, device,
speed switches) are listed in `CONTINUE_OVERRIDABLE`, and changing anything else is refused with
a message instead of silently training something different (stylegan2-ada-pytorch#279).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from bender.errors import BenderError

_NONE = object()  # an explicit "none" among options where None means "not given"

PRESETS: dict[str, dict[str, Any]] = {
    # Fine-tune a pretrained model on 50-500 images for tens of kimg, watching it bend.
    "bend": dict(kimg=40.0, snap=4.0, aug="ada", ada_kimg=100.0, mirror=True, ema_rampup=None),
    # A lighter touch: lower learning rate, Freeze-D and a frozen mapping keep more of the original.
    "gentle": dict(kimg=20.0, snap=2.0, aug="ada", ada_kimg=100.0, mirror=True, ema_rampup=None,
                   lr_scale=0.5, freeze_d=4, freeze_mapping=True),
    # Train from random weights (e.g. the embedded default model).
    "scratch": dict(kimg=5000.0, snap=50.0, aug="ada", ada_kimg=500.0, mirror=False, ema_rampup=0.05),
}

# Settings `--continue` may change; everything else must match the run's config.json.
# (lr_scale and gamma: the way past a NaN is to continue from the last snapshot with gentler values.)
CONTINUE_OVERRIDABLE = ("kimg", "snap", "device", "precision", "channels_last", "compile", "compile_mode",
                        "cuda_graphs", "tf32",
                        "workers", "data_cache", "export_pkl", "timeline", "stop_when", "batch_gpu", "tick", "lr_scale",
                        "gamma")

COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class ArchConfig:
    """Architecture for training from scratch (ignored when resuming a model: it has its own)."""

    resolution: int | None = None  # default: the dataset's
    z_dim: int = 512
    w_dim: int = 512
    channel_base: int | None = None  # default: 16384 below 512 px, 32768 from 512 px (NVIDIA's 'auto')
    channel_max: int = 512
    map_layers: int = 2
    num_fp16_res: int = 4
    conv_clamp: float | None = 256.0
    g_arch: str = "skip"
    d_arch: str = "resnet"
    mbstd_group: int = 4
    cond: bool = True  # conditional when the dataset has labels


@dataclass
class TrainConfig:
    data: str = ""
    out: str = "runs"
    resume: str | None = None  # model file (.pkl / .safetensors / run folder / 'default'); None = scratch
    preset: str = "bend"
    kimg: float = 40.0  # total length, thousands of real images shown to D
    snap: float = 4.0  # kimg between snapshots
    batch: int = 16  # global minibatch
    batch_gpu: int | None = None  # per process and round; fewer means gradient accumulation
    seed: int = 0
    preview_seeds: list[int] = field(default_factory=lambda: list(range(16)))

    # objective (Karras et al. 2020, StyleGAN2)
    lr: float | None = None  # None: 0.0025, or 0.002 from 1024 px
    lr_scale: float = 1.0
    gamma: float | None = None  # R1 weight; None: 0.0002 * res^2 / batch (ADA paper's heuristic)
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float | None = None  # None: batch * 10 / 32
    ema_rampup: float | None = 0.05

    # ADA (Karras et al. 2020, limited data)
    aug: str = "ada"  # 'ada' | 'fixed' | 'none'
    aug_spec: str = "bgc"
    aug_p: float | None = None  # start (ada) or constant (fixed) p; None: the model's own p, else 0 (ada) / 0.2 (fixed)
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0  # images for p to be able to go 0 -> 1
    mirror: bool = False  # add x-flipped copies of the dataset

    # transfer controls
    freeze_d: int = 0  # Freeze-D (Mo et al. 2020): the first N D layers from the image side
    freeze_mapping: bool = False
    freeze_g_below: int = 0  # freeze G's synthesis blocks below this resolution

    # machinery
    device: str = "auto"
    precision: str = "auto"  # 'auto' | 'bf16' | 'fp16' | 'fp32' for the networks' half-precision blocks
    channels_last: bool | None = None  # None: on for CUDA
    compile: bool = False  # torch.compile the non-regularisation passes
    # 'auto' (CUDA: 'reduce-overhead', i.e. CUDA graphs; CPU: 'default') or any torch.compile mode
    compile_mode: str = "auto"
    cuda_graphs: bool = False  # record each phase as a CUDA graph and replay it (bender/train/graphs.py)
    tf32: bool = True
    workers: int = 2
    data_cache: str = "auto"  # 'auto' | 'memory' | 'stream'
    tick: float = 2.0  # seconds between progress lines (and NaN checks)
    export_pkl: bool = False
    timeline: bool = True
    stop_when: str | None = None

    arch: ArchConfig = field(default_factory=ArchConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise BenderError(f"config.json has unknown settings {', '.join(unknown)}: written by a newer bender?")
        data = dict(data)
        data["arch"] = ArchConfig(**data.get("arch", {}))
        return cls(**data)


def make_config(preset: str = "bend", **options: Any) -> TrainConfig:
    """Defaults, then the preset, then the caller's options (None means 'not given').

    `conv_clamp=0` and `ema_rampup=0` mean "none" (None is already taken by "not given").
    """
    for key in ("conv_clamp", "ema_rampup"):
        if options.get(key) is not None and options[key] <= 0:
            options[key] = _NONE
    if preset not in PRESETS:
        raise BenderError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    arch_names = {f.name for f in dataclasses.fields(ArchConfig)}
    arch = {k: options.pop(k) for k in list(options) if k in arch_names}
    cfg = TrainConfig(preset=preset)
    for key, value in {**PRESETS[preset], **{k: v for k, v in options.items() if v is not None}}.items():
        if not hasattr(cfg, key):
            raise TypeError(f"unknown training option {key!r}")
        setattr(cfg, key, None if value is _NONE else value)
    for key, value in arch.items():
        if value is not None:
            setattr(cfg.arch, key, None if value is _NONE else value)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Catch impossible settings before any work starts."""
    if cfg.kimg <= 0 or cfg.snap <= 0:
        raise BenderError(f"--kimg and --snap must be positive (got {cfg.kimg} and {cfg.snap})")
    if cfg.batch < 1:
        raise BenderError(f"--batch must be at least 1, got {cfg.batch}")
    if cfg.batch_gpu is not None and (cfg.batch_gpu < 1 or cfg.batch % cfg.batch_gpu):
        raise BenderError(f"--batch-gpu {cfg.batch_gpu} must divide --batch {cfg.batch}")
    if cfg.aug not in ("ada", "fixed", "none"):
        raise BenderError(f"--aug {cfg.aug}: choose ada, fixed or none")
    if cfg.aug_p is not None and not 0 <= cfg.aug_p <= 1:
        raise BenderError(f"--aug-p must be in [0, 1], got {cfg.aug_p}")
    if cfg.precision not in ("auto", "bf16", "fp16", "fp32"):
        raise BenderError(f"--precision {cfg.precision}: choose auto, bf16, fp16 or fp32")
    if cfg.compile_mode not in COMPILE_MODES:
        raise BenderError(f"--compile-mode {cfg.compile_mode}: choose {', '.join(COMPILE_MODES)}")
    if cfg.data_cache not in ("auto", "memory", "stream"):
        raise BenderError(f"--data-cache {cfg.data_cache}: choose auto, memory or stream")
    if cfg.preset == "scratch" and cfg.resume:
        raise BenderError("--preset scratch trains from random weights; drop --resume (or use --preset bend)")
    if cfg.freeze_d < 0 or cfg.freeze_g_below < 0:
        raise BenderError("--freeze-d and --freeze-g-below cannot be negative")
    for name in ("r1_interval", "pl_interval", "ada_interval", "pl_batch_shrink"):
        if getattr(cfg, name) < 1:
            raise BenderError(f"{name.replace('_', '-')} must be at least 1")
    res = cfg.arch.resolution
    if res is not None and (res < 4 or res & (res - 1)):
        raise BenderError(f"--resolution {res}: must be a power of two (e.g. 64, 256, 1024)")
    if cfg.arch.g_arch not in ("orig", "skip", "resnet") or cfg.arch.d_arch not in ("orig", "skip", "resnet"):
        raise BenderError("--g-arch / --d-arch: choose orig, skip or resnet")


def auto_lr(cfg: TrainConfig, resolution: int) -> float:
    base = cfg.lr if cfg.lr is not None else (0.002 if resolution >= 1024 else 0.0025)
    return base * cfg.lr_scale


def auto_gamma(cfg: TrainConfig, resolution: int) -> float:
    return cfg.gamma if cfg.gamma is not None else 0.0002 * resolution**2 / cfg.batch


def auto_ema_kimg(cfg: TrainConfig) -> float:
    return cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32


def auto_channel_base(cfg: TrainConfig, resolution: int) -> int:
    if cfg.arch.channel_base is not None:
        return cfg.arch.channel_base
    return 32768 if resolution >= 512 else 16384


def lazy_reg_ratio(interval: int, enabled: bool = True) -> float:
    """Adam adjustment for lazy regularisation (StyleGAN2, appendix B): c = k / (k + 1).

    The regulariser runs as its own optimiser step every k minibatches, so k minibatches take k + 1
    steps; scaling the learning rate by c and the betas to the power c keeps Adam's dynamics per image.
    """
    return interval / (interval + 1) if enabled else 1.0


def kimg_label(kimg: float) -> str:
    """'000004.000': the kimg part of snapshot, state and preview file names."""
    if not math.isfinite(kimg) or kimg < 0:
        raise ValueError(f"bad kimg {kimg}")
    return f"{kimg:010.3f}"


def continue_config(run_config: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The config of a run being continued, with the allowed overrides applied (None = not given).

    Anything else that differs is an error naming the setting, instead of a silent mismatch.
    """
    cfg = TrainConfig.from_dict(run_config["train"])
    refused = []
    for key, value in overrides.items():
        if value is None:
            continue
        current = getattr(cfg, key) if hasattr(cfg, key) else getattr(cfg.arch, key, None)
        if value == current:
            continue
        if key not in CONTINUE_OVERRIDABLE:
            refused.append(f"--{key.replace('_', '-')} ({current!r} in the run)")
            continue
        setattr(cfg, key, value)
    if refused:
        raise BenderError(f"--continue keeps a run's settings; these differ: {', '.join(refused)}. Drop them, or "
                          f"start a new run with --resume RUN. May change: "
                          f"{', '.join('--' + k.replace('_', '-') for k in CONTINUE_OVERRIDABLE)}")
    validate(cfg)
    return cfg

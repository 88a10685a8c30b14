"""Architecture configs for the StyleGAN2 generator and discriminator.

Field names mirror the constructor keyword arguments of NVIDIA's StyleGAN2-ADA networks, so a
pretrained snapshot's stored kwargs map onto these dataclasses one to one (see bender/io/nvidia.py),
and our own checkpoints store exactly these fields as JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MappingConfig:
    """The mapping network z (+ class c) -> w."""

    num_layers: int = 8
    embed_features: int | None = None  # class embedding width; default w_dim
    layer_features: int | None = None  # hidden width; default w_dim
    activation: str = "lrelu"
    lr_multiplier: float = 0.01  # equalised-lr multiplier: the mapping learns 100x slower
    w_avg_beta: float | None = 0.995  # EMA decay of the tracked mean w (for truncation)


@dataclass
class SynthesisConfig:
    """The synthesis network w -> image."""

    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    num_fp16_res: int = 0  # the highest N resolutions run in half precision (on CUDA)
    conv_clamp: float | None = None  # clamp conv outputs to +-this (keeps fp16 finite)
    architecture: str = "skip"  # 'orig' | 'skip' | 'resnet'
    resample_filter: list[float] = field(default_factory=lambda: [1.0, 3.0, 3.0, 1.0])
    fp16_channels_last: bool = False
    use_noise: bool = True
    kernel_size: int = 3
    activation: str = "lrelu"


@dataclass
class GeneratorConfig:
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping: MappingConfig = field(default_factory=MappingConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)

    def validate(self) -> None:
        _check_resolution(self.img_resolution)
        if self.synthesis.architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"G architecture must be orig, skip or resnet, not {self.synthesis.architecture!r}")
        if self.z_dim <= 0 or self.w_dim <= 0 or self.c_dim < 0 or self.img_channels <= 0:
            raise ValueError("z_dim, w_dim, img_channels must be positive and c_dim >= 0")


@dataclass
class DiscriminatorConfig:
    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"  # 'orig' | 'skip' | 'resnet'
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None  # conditioning projection width; default channels at 4x4
    activation: str = "lrelu"
    resample_filter: list[float] = field(default_factory=lambda: [1.0, 3.0, 3.0, 1.0])
    fp16_channels_last: bool = False
    freeze_layers: int = 0  # Freeze-D: the first N layers get requires_grad=False
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping: MappingConfig = field(default_factory=lambda: MappingConfig(w_avg_beta=None))

    def validate(self) -> None:
        _check_resolution(self.img_resolution)
        if self.architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"D architecture must be orig, skip or resnet, not {self.architecture!r}")


def _check_resolution(res: int) -> None:
    if res < 4 or res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (nested dataclasses become dicts)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]):
    """Build a config dataclass from a dict, refusing unknown keys with a clear message."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown option(s) {', '.join(unknown)}")
    kwargs = {}
    for key, value in data.items():
        sub = {"mapping": MappingConfig, "synthesis": SynthesisConfig}.get(key)
        kwargs[key] = from_dict(sub, value) if sub is not None and isinstance(value, dict) else value
    return cls(**kwargs)


def channels_at(channel_base: int, channel_max: int, res: int) -> int:
    return min(channel_base // res, channel_max)


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Blocks at this resolution and above run in half precision."""
    log2 = img_resolution.bit_length() - 1
    return max(2 ** (log2 + 1 - num_fp16_res), 8)

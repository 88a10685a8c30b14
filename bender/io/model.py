"""`Model`: what every loader returns — the networks plus where they came from."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig


@dataclass
class Lineage:
    """Provenance carried from file to file, so a fine-tune always knows its ancestry."""

    source_format: str = "bender"  # 'nvidia-pickle' | 'bender' | 'scratch'
    source_name: str = ""  # file name it was first loaded from
    source_sha256: str = ""  # sha256 of that file
    fine_tuned_from: str = ""  # sha256 (or name) of the model a fine-tune started from
    kimg: float = 0.0  # training progress in thousands of real images shown to D
    dataset_fingerprint: str = ""  # sha256 of the dataset zip trained on
    dataset_name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Model:
    """Generator(s) and discriminator with their configs and lineage.

    `G_ema` is the generator to render with (the exponential moving average of training weights);
    `G` (the raw training generator) and `D` are present when the file had them and are needed to
    continue training. `augment_p` is ADA's augmentation probability when the file recorded one.
    `nvidia` keeps the non-tensor skeleton of an NVIDIA pickle so the model can be exported back.
    """

    G_ema: Generator
    G: Generator | None = None
    D: Discriminator | None = None
    g_config: GeneratorConfig | None = None
    d_config: DiscriminatorConfig | None = None
    lineage: Lineage = field(default_factory=Lineage)
    augment_p: float | None = None
    training_set_kwargs: dict[str, Any] | None = None
    nvidia: Any = None  # bender.io.nvidia.NvidiaSkeleton

    def __post_init__(self) -> None:
        if self.g_config is None:
            self.g_config = self.G_ema.cfg
        if self.d_config is None and self.D is not None:
            self.d_config = self.D.cfg

    @property
    def resolution(self) -> int:
        return self.G_ema.img_resolution

    def networks(self) -> dict[str, torch.nn.Module]:
        """The present networks by their snapshot names."""
        return {k: v for k, v in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)) if v is not None}

    def to(self, device: torch.device | str) -> Model:
        for net in self.networks().values():
            net.to(device)
        return self

    def eval(self) -> Model:
        for net in self.networks().values():
            net.eval().requires_grad_(False)
        return self

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: v.state_dict() for k, v in self.networks().items()}

    def clone(self) -> Model:
        return copy.deepcopy(self)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for `bender info` and the UI."""
        g = self.g_config
        out: dict[str, Any] = {
            "resolution": g.img_resolution,
            "z_dim": g.z_dim,
            "w_dim": g.w_dim,
            "c_dim": g.c_dim,
            "img_channels": g.img_channels,
            "num_ws": self.G_ema.num_ws,
            "mapping_layers": g.mapping.num_layers,
            "channel_base": g.synthesis.channel_base,
            "channel_max": g.synthesis.channel_max,
            "num_fp16_res": g.synthesis.num_fp16_res,
            "conv_clamp": g.synthesis.conv_clamp,
            "G_architecture": g.synthesis.architecture,
            "networks": sorted(self.networks()),
            "G_ema_parameters": sum(p.numel() for p in self.G_ema.parameters()),
            "augment_p": self.augment_p,
            "lineage": dataclasses.asdict(self.lineage),
            "exportable_to_nvidia_pickle": self.nvidia is not None,
        }
        if self.d_config is not None:
            out["D_architecture"] = self.d_config.architecture
            out["mbstd_group_size"] = self.d_config.mbstd_group_size
        return out

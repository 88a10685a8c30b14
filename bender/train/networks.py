"""Which networks a run trains: built from scratch, or a loaded model checked against the dataset;
and which of their parameters the transfer controls leave frozen."""

from __future__ import annotations

import copy
import dataclasses

import torch

from bender.errors import BenderError
from bender.io.model import Lineage, Model
from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig
from bender.nets.config import SynthesisConfig
from bender.train.config import TrainConfig, auto_channel_base
from bender.train.data import DatasetInfo


def build_scratch(cfg: TrainConfig, data: DatasetInfo) -> Model:
    """Randomly initialised G, G_ema (= G) and D for the dataset, from the architecture options."""
    a = cfg.arch
    res = a.resolution or data.resolution
    if res != data.resolution:
        raise BenderError(f"dataset is {data.resolution}², --resolution is {res}²: repack with "
                          f"`bender dataset pack SOURCE --out {data.name}-{res}.zip --resolution {res}`")
    c_dim = data.c_dim if a.cond else 0
    base = auto_channel_base(cfg, res)
    g_cfg = GeneratorConfig(
        z_dim=a.z_dim, c_dim=c_dim, w_dim=a.w_dim, img_resolution=res, img_channels=data.channels,
        mapping=MappingConfig(num_layers=a.map_layers),
        synthesis=SynthesisConfig(channel_base=base, channel_max=a.channel_max, num_fp16_res=a.num_fp16_res,
                                  conv_clamp=a.conv_clamp, architecture=a.g_arch))
    d_cfg = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=res, img_channels=data.channels, architecture=a.d_arch, channel_base=base,
        channel_max=a.channel_max, num_fp16_res=a.num_fp16_res, conv_clamp=a.conv_clamp,
        mbstd_group_size=a.mbstd_group)
    try:
        g_cfg.validate()
        d_cfg.validate()
    except ValueError as e:
        raise BenderError(str(e)) from None
    torch.manual_seed(cfg.seed)  # the same initial weights in every process of a multi-GPU run
    G = Generator(g_cfg)
    D = Discriminator(d_cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    lineage = Lineage(source_format="scratch", source_name="random init", notes={"seed": cfg.seed})
    return Model(G_ema=G_ema, G=G, D=D, g_config=g_cfg, d_config=d_cfg, lineage=lineage)


def check_compatible(model: Model, data: DatasetInfo, source: str) -> None:
    """The resumed model must fit the dataset; say exactly how to fix it when it does not."""
    g = model.g_config
    if g.img_resolution != data.resolution:
        raise BenderError(f"dataset is {data.resolution}², model is {g.img_resolution}²: repack with "
                          f"`bender dataset pack SOURCE --out {data.name}-{g.img_resolution}.zip "
                          f"--resolution {g.img_resolution}` (or resume a {data.resolution}² model)")
    if g.img_channels != data.channels:
        raise BenderError(f"dataset images have {data.channels} channel(s), {source} makes {g.img_channels}: "
                          f"repack with `bender dataset pack SOURCE --out ... --channels {g.img_channels}`")
    if g.c_dim > 0 and data.c_dim == 0:
        raise BenderError(f"{source} is conditional ({g.c_dim} classes) but the dataset has no labels: repack with "
                          "`bender dataset pack SOURCE --out ... --labels folder`")
    if g.c_dim > 0 and data.c_dim > g.c_dim:
        raise BenderError(f"{source} has {g.c_dim} classes, the dataset's labels have {data.c_dim}: use a dataset "
                          f"with at most {g.c_dim} classes (or train from scratch)")


def complete_for_training(model: Model, progress_say=print) -> Model:
    """Make sure there is a G and a D to train: G from G_ema, a fresh D if the file had none."""
    if model.G is None:
        model.G = copy.deepcopy(model.G_ema)
    if model.D is None:
        g = model.g_config
        s = g.synthesis
        model.d_config = DiscriminatorConfig(
            c_dim=g.c_dim, img_resolution=g.img_resolution, img_channels=g.img_channels,
            channel_base=s.channel_base, channel_max=s.channel_max, num_fp16_res=s.num_fp16_res,
            conv_clamp=s.conv_clamp)
        model.D = Discriminator(model.d_config)
        model.nvidia = None  # the NVIDIA skeleton has no D to pair the new one with
        progress_say("note: the model file has no discriminator; training starts a fresh one "
                     "(expect a rough first few kimg)")
    return model


def frozen_names(G: Generator, D: Discriminator, cfg: TrainConfig) -> set[str]:
    """'G.<param>' / 'D.<param>' names that the transfer controls keep fixed."""
    out: set[str] = set()
    if cfg.freeze_mapping:
        out.update(f"G.mapping.{n}" for n, _ in G.mapping.named_parameters())
    for block in G.synthesis.blocks():
        if block.resolution < cfg.freeze_g_below:
            name = f"b{block.resolution}"
            out.update(f"G.synthesis.{name}.{n}" for n, _ in block.named_parameters())
    if cfg.freeze_d:
        blocks = D.blocks()
        total = sum(b.num_layers for b in blocks)
        if cfg.freeze_d > total:
            raise BenderError(f"--freeze-d {cfg.freeze_d}: this discriminator has {total} layers before its "
                              f"4x4 head; use at most {total}")
        for block in blocks:
            names = [n for n in ("fromrgb", "conv0", "conv1", "skip") if hasattr(block, n)]
            for i, layer in enumerate(names):
                if block.first_layer_idx + i < cfg.freeze_d:
                    sub = getattr(block, layer)
                    out.update(f"D.b{block.resolution}.{layer}.{n}" for n, _ in sub.named_parameters())
    return out


def trainable(net: torch.nn.Module, prefix: str, frozen: set[str]) -> list[torch.nn.Parameter]:
    return [p for n, p in net.named_parameters() if f"{prefix}.{n}" not in frozen]


def describe_arch(model: Model) -> dict:
    return {"G": dataclasses.asdict(model.g_config),
            "D": dataclasses.asdict(model.d_config) if model.d_config else None}

"""The training loop: phases, snapshots, progress, stopping — for one process or many.

One training step = one global minibatch of reals: G's main phase, G's path-length phase (every
`pl_interval` steps), D's main phase, D's R1 phase (every `r1_interval` steps), each ending in
one Adam step; then G_ema, w_avg, pl_mean and (every `ada_interval` steps) ADA's p are updated.

Everything random in a step is drawn from generators seeded by (seed, step, phase, micro-batch),
and the images of a step are a function of (seed, step). So continuing a run from a snapshot
reproduces exactly what an uninterrupted run would have done, and N processes with batch B/N
compute exactly what one process does with B split into N accumulation rounds.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bender.errors import BenderError
from bender.fileio import atomic_write_text
from bender.io.model import Model
from bender.train import checkpoint as ckpt
from bender.train import ddp
from bender.train.augment import AugmentConfig, AugmentPipe, ada_adjust, plan_size, unpack_plan
from bender.train.config import (
    TrainConfig,
    auto_ema_kimg,
    auto_gamma,
    auto_lr,
    lazy_reg_ratio,
)
from bender.train.data import TrainingData
from bender.train.ema import ema_beta, update_ema
from bender.train.events import SnapshotEvent, StopCondition
from bender.train.graphs import PhaseGraph, seed_default_generator, shared_pool
from bender.train.loss import Precision, StyleGAN2Loss, own_grads
from bender.train.networks import (
    build_scratch,
    check_compatible,
    complete_for_training,
    frozen_names,
    trainable,
)
from bender.train.progress import Progress


class NonFiniteLoss(BenderError):
    """A loss became NaN or infinite; the message names the last good snapshot."""


@dataclass
class Phase:
    name: str
    net: str  # 'G' | 'D'
    interval: int
    reg: bool  # a regularisation phase (its loss is scaled by the interval)


@dataclass
class TrainResult:
    run_dir: Path
    kimg: float
    snapshot: Path | None
    reason: str  # why it stopped: 'done', a stop condition's reason, 'interrupted'
    stats: dict = field(default_factory=dict)


class Trainer:
    """Set up from a TrainConfig (new run) or a run folder (continue), then `run()`."""

    def __init__(self, cfg: TrainConfig, continue_run: Path | None = None,
                 stop_conditions: Sequence[StopCondition] = (), quiet: bool = False):
        self.cfg = cfg
        self.stop_conditions = list(stop_conditions)
        self.dist, device_name = ddp.init_from_env(cfg.device)
        from bender.device import pick_device

        self.device = pick_device(device_name)
        self.progress = Progress(cfg.kimg, quiet=quiet or not self.dist.main)
        self._interrupt = threading.Event()
        self._setup_backends()

        self.data = TrainingData(cfg.data, self.device, seed=cfg.seed, mirror=cfg.mirror, cache=cfg.data_cache,
                                 workers=cfg.workers)
        info = self.data.info
        state = None
        if continue_run is not None:
            _, snap, state_file = ckpt.latest_resumable(Path(continue_run))
            started = json.loads((Path(continue_run) / "config.json").read_text()).get("resolved", {})
            if started.get("dataset", {}).get("fingerprint", info.fingerprint) != info.fingerprint:
                raise BenderError(f"{info.path} has changed since {continue_run} started (different sha256); "
                                  f"continuing would train on other data. Start a new run from this one "
                                  f"with --resume {continue_run}")
            if self.dist.main:
                ckpt.remove_partial_files(Path(continue_run))
                (Path(continue_run) / "STOP").unlink(missing_ok=True)  # a stop request from the last session
            from bender.io import load

            model = load(snap)
            state = ckpt.load_state(state_file)
            self.progress.say(f"continuing {continue_run} from {snap.name}")
        elif cfg.resume:
            from bender.io import load

            model = load(cfg.resume)
            check_compatible(model, info, Path(str(cfg.resume)).name)
            model = complete_for_training(model, self.progress.say)
            model.lineage.fine_tuned_from = model.lineage.source_sha256 or model.lineage.source_name
            model.lineage.notes = {**model.lineage.notes, "base_kimg": model.lineage.kimg}
        else:
            model = build_scratch(cfg, info)
        if info.c_dim and not model.g_config.c_dim:
            self.progress.say("note: the dataset has labels but the model is unconditional; labels are ignored")
        self.use_labels = model.g_config.c_dim > 0
        if self.use_labels:
            self.data.widen_labels(model.g_config.c_dim)
        if cfg.export_pkl and model.nvidia is None:
            raise BenderError("--export-pkl: this model did not come from an NVIDIA pickle, so there is no NVIDIA "
                              "network code to pair its weights with; its .safetensors snapshots are the result")
        model.lineage.dataset_fingerprint = info.fingerprint
        model.lineage.dataset_name = info.name
        model.training_set_kwargs = {"path": str(info.path), "resolution": info.resolution,
                                     "use_labels": self.use_labels, "xflip": cfg.mirror, "max_size": info.size}
        self.model = model.to(self.device)
        self.G, self.D, self.G_ema = model.G, model.D, model.G_ema
        self.G.train()
        self.D.train()
        self.G_ema.eval().requires_grad_(False)

        self._setup_batch()
        self._setup_training(model)
        self._phase_graphs: dict[tuple[int, int], PhaseGraph] | None = None  # by (phase, ADA padding)
        if cfg.cuda_graphs:
            self.enable_cuda_graphs()
        self.cur_nimg = 0
        self.step = 0
        self.elapsed = 0.0
        if state is not None:
            self._restore(state)
            run_dir = continue_run
        else:
            run_dir = self._new_run_dir() if self.dist.main else None
        self.run_dir = Path(ddp.broadcast_object(str(run_dir) if run_dir is not None else None))
        res = model.g_config.img_resolution
        self.progress.say(
            f"run {self.run_dir} | {info.name}: {info.size} images{' (+mirrored)' if cfg.mirror else ''} "
            f"{res}² | batch {cfg.batch} ({self.batch_gpu}/process x {self.rounds} rounds x {self.dist.world}) | "
            f"lr {self.lr:g} gamma {self.gamma:g} | aug {cfg.aug}"
            f"{f' p={float(self.augment.p):.3f}' if self.augment is not None else ''} | {self.device}")

    # -- setup ------------------------------------------------------------------------------------

    def _setup_backends(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = self.cfg.tf32
            torch.backends.cudnn.allow_tf32 = self.cfg.tf32

    def _setup_batch(self) -> None:
        cfg, world = self.cfg, self.dist.world
        if cfg.batch % world:
            raise BenderError(f"--batch {cfg.batch} must be a multiple of the number of processes ({world})")
        per_process = cfg.batch // world
        self.batch_gpu = cfg.batch_gpu or per_process
        if per_process % self.batch_gpu:
            raise BenderError(f"--batch-gpu {self.batch_gpu} must divide the per-process batch {per_process} "
                              f"(--batch {cfg.batch} over {world} processes)")
        self.rounds = per_process // self.batch_gpu
        group = self.D.cfg.mbstd_group_size
        if group is not None and self.batch_gpu % min(group, self.batch_gpu):
            raise BenderError(f"batch per round {self.batch_gpu} is not a multiple of D's minibatch-std group "
                              f"{group}: use --batch-gpu {group} (or a multiple of it)")
        start = self.dist.rank * per_process
        self.data.set_share(cfg.batch, start, per_process)

    def _setup_training(self, model: Model) -> None:
        cfg = self.cfg
        res = model.g_config.img_resolution
        self.lr = auto_lr(cfg, res)
        self.gamma = auto_gamma(cfg, res)
        self.ema_kimg = auto_ema_kimg(cfg)
        precision = self._precision()
        if precision.channels_last:
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        self.frozen = frozen_names(self.G, self.D, cfg)
        self.params = {"G": trainable(self.G, "G", self.frozen), "D": trainable(self.D, "D", self.frozen)}
        if not self.params["G"] or not self.params["D"]:
            raise BenderError("the freeze options leave nothing to train in G or D; freeze less")
        self.phases = [Phase("Gmain", "G", 1, False)]
        if cfg.pl_weight > 0:
            self.phases.append(Phase("Greg", "G", cfg.pl_interval, True))
        self.phases.append(Phase("Dmain", "D", 1, False))
        if self.gamma > 0:
            self.phases.append(Phase("Dreg", "D", cfg.r1_interval, True))
        self.opt = {}
        for net, interval, enabled in (("G", cfg.pl_interval, cfg.pl_weight > 0),
                                       ("D", cfg.r1_interval, self.gamma > 0)):
            c = lazy_reg_ratio(interval, enabled)
            self.opt[net] = torch.optim.Adam(self.params[net], lr=self.lr * c, betas=(0.0, 0.99**c), eps=1e-8)

        self.augment = None
        if cfg.aug != "none":
            p = cfg.aug_p
            if p is None:
                p = model.augment_p if (model.augment_p is not None and cfg.aug == "ada") else (
                    0.0 if cfg.aug == "ada" else 0.2)
            try:
                aug_cfg = AugmentConfig.from_spec(cfg.aug_spec)
            except ValueError as e:
                raise BenderError(f"--aug-spec: {e}") from None
            self.augment = AugmentPipe(aug_cfg, p=p).to(self.device)
        self.ada_sign = torch.zeros([], device=self.device)
        self.ada_count = torch.zeros([], device=self.device)

        synthesis_fast, D_fast, cuda_graphs = None, None, False
        if cfg.compile:
            # Both networks trace as one graph each (tests/test_nets_compile.py). On CUDA the default
            # mode also records them as CUDA graphs: at a fine-tune's small batches the step is
            # bound by launching thousands of small kernels, which a graph replay removes.
            mode = cfg.compile_mode
            if mode == "auto":
                mode = "reduce-overhead" if self.device.type == "cuda" else "default"
            synthesis_fast = torch.compile(self.G.synthesis, mode=mode)
            D_fast = torch.compile(self.D, mode=mode)
            cuda_graphs = self.device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment, r1_gamma=self.gamma, pl_weight=cfg.pl_weight,
                                  style_mixing=cfg.style_mixing, pl_batch_shrink=cfg.pl_batch_shrink,
                                  precision=precision, synthesis_fast=synthesis_fast, D_fast=D_fast,
                                  cuda_graphs=cuda_graphs)
        from bender.latent.seeds import zs_from_seeds

        g = model.g_config
        self.preview_z = zs_from_seeds(cfg.preview_seeds, g.z_dim, self.device)
        self.preview_c = torch.zeros([len(cfg.preview_seeds), g.c_dim], device=self.device)
        if g.c_dim:
            self.preview_c[torch.arange(len(cfg.preview_seeds)), torch.arange(len(cfg.preview_seeds)) % g.c_dim] = 1

    def _precision(self) -> Precision:
        cfg = self.cfg
        cuda = self.device.type == "cuda"
        name = cfg.precision
        if name == "auto":
            name = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        channels_last = cfg.channels_last if cfg.channels_last is not None else cuda
        return Precision(half_dtype=torch.float16 if name == "fp16" else torch.bfloat16,
                         force_fp32=name == "fp32", channels_last=channels_last)

    def _new_run_dir(self) -> Path:
        cfg = self.cfg
        run = ckpt.new_run_dir(Path(cfg.out), f"{self.data.info.name}-{cfg.preset}")
        record = {"train": cfg.to_dict(), "resolved": {
            "lr": self.lr, "gamma": self.gamma, "ema_kimg": self.ema_kimg, "batch_gpu": self.batch_gpu,
            "world": self.dist.world, "dataset": {"path": str(self.data.info.path), "size": self.data.info.size,
                                                  "resolution": self.data.info.resolution,
                                                  "fingerprint": self.data.info.fingerprint},
            "model": {"G": _asdict(self.model.g_config), "D": _asdict(self.model.d_config)},
            "lineage": _asdict(self.model.lineage)}}
        atomic_write_text(run / "config.json", json.dumps(record, indent=2, default=str) + "\n")
        return run

    # -- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "cur_nimg": self.cur_nimg, "step": self.step, "seed": self.cfg.seed, "elapsed": self.elapsed,
            "G_opt": self.opt["G"].state_dict(), "D_opt": self.opt["D"].state_dict(),
            "augment_p": float(self.augment.p) if self.augment is not None else None,
            "ada_sign": float(self.ada_sign), "ada_count": float(self.ada_count),
            "pl_mean": float(self.loss.pl_mean), "pl_ready": self.loss.pl_ready,
            "torch_rng": torch.get_rng_state(),
            "config": json.dumps(self.cfg.to_dict()),
        }

    def _restore(self, state: dict) -> None:
        self.cur_nimg = int(state["cur_nimg"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        for net in ("G", "D"):
            self.opt[net].load_state_dict(state[f"{net}_opt"])
            for group in self.opt[net].param_groups:  # --lr-scale may change on a continue
                c = lazy_reg_ratio(self.cfg.pl_interval if net == "G" else self.cfg.r1_interval,
                                   self.cfg.pl_weight > 0 if net == "G" else self.gamma > 0)
                group["lr"] = self.lr * c
        if self.augment is not None and state.get("augment_p") is not None:
            self.augment.p.fill_(float(state["augment_p"]))
        self.ada_sign.fill_(float(state["ada_sign"]))
        self.ada_count.fill_(float(state["ada_count"]))
        self.loss.pl_mean.fill_(float(state["pl_mean"]))
        self.loss.pl_ready = bool(state["pl_ready"])
        torch.set_rng_state(state["torch_rng"])

    # -- one step ---------------------------------------------------------------------------------

    def _seed(self, phase: int, micro: int) -> int:
        seed = np.random.SeedSequence([self.cfg.seed, self.step, phase, micro]).generate_state(2, np.uint64)[0]
        return int(seed) & ((1 << 63) - 1)

    def _generator(self, phase: int, micro: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self._seed(phase, micro))

    def train_step(self, acc: dict[str, torch.Tensor]) -> None:
        cfg = self.cfg
        bg, rounds = self.batch_gpu, self.rounds
        real_all, c_all = self.data.batch(self.step)
        if not self.use_labels:
            c_all = c_all[:, :0]
        reals, cs = real_all.split(bg), c_all.split(bg)
        share = bg / cfg.batch
        extra: dict[str, torch.Tensor] = {}
        graphed = self._phase_graphs is not None and self.step > 0
        if graphed:
            self._write_graph_inputs(real_all, c_all)
        for index, phase in enumerate(self.phases):
            if self.step % phase.interval:
                continue
            self._train_only(phase.net)
            weight = share * (phase.interval if phase.reg else 1)
            if graphed and (phase.name != "Greg" or self.loss.pl_ready):
                self._collect(self._replay_phase(index, phase, weight), acc, extra)
                ddp.sum_grads_(self.params[phase.net])
                self.opt[phase.net].step()
                continue
            self.opt[phase.net].zero_grad(set_to_none=True)
            summed = None
            for k in range(rounds):
                gen = self._generator(index, self.dist.rank * rounds + k)
                z = torch.randn([bg, self.G.z_dim], device=self.device, generator=gen)
                c_gen = self.data.random_labels(bg, gen) if self.use_labels else c_all[:bg, :0]
                out = self._phase_loss(phase, z, c_gen, reals[k], cs[k], gen, weight)
                self._collect(out, acc, extra)
                if rounds > 1:
                    if self.loss.cuda_graphs:  # the next round replays the graphs these came from
                        own_grads(self.params[phase.net])
                    summed = _sum_round_grads(self.params[phase.net], summed)
            if rounds > 1:
                for p, g in zip(self.params[phase.net], summed):
                    p.grad = g
            ddp.sum_grads_(self.params[phase.net])
            self.opt[phase.net].step()
        self._train_only(None)

        # What every process must agree on is reduced once per step.
        if extra:
            keys = sorted(extra)
            flat = ddp.all_reduce_sum_(torch.cat([extra[k].reshape(-1) for k in keys]))
            sizes = [extra[k].numel() for k in keys]
            extra = {k: v.reshape(extra[k].shape) for k, v in zip(keys, flat.split(sizes))}
        with torch.no_grad():
            if "w_sum" in extra and self.G.mapping.w_avg_beta is not None:
                w_mean = extra["w_sum"] / extra["w_count"]
                self.G.mapping.w_avg.copy_(w_mean.lerp(self.G.mapping.w_avg, self.G.mapping.w_avg_beta))
            if "pl_sum" in extra:
                self.loss.update_pl_mean(extra["pl_sum"] / extra["pl_count"], cfg.pl_decay)
            update_ema(self.G_ema, self.G, ema_beta(cfg.batch, self.ema_kimg, self.cur_nimg, cfg.ema_rampup))
            if self.augment is not None and cfg.aug == "ada" and "ada_sign_sum" in extra:
                self.ada_sign += extra["ada_sign_sum"]
                self.ada_count += extra["ada_count"]
                if (self.step + 1) % cfg.ada_interval == 0:
                    self.augment.p.copy_(ada_adjust(self.augment.p, self.ada_sign, self.ada_count,
                                                    cfg.ada_target, cfg.ada_kimg))
                    _add(acc, "ada_rt", self.ada_sign / self.ada_count.clamp(min=1))
                    _add(acc, "ada_rt#", torch.ones([], device=self.device))
                    self.ada_sign.zero_()
                    self.ada_count.zero_()
        self.step += 1
        self.cur_nimg += cfg.batch

    def _phase_loss(self, phase: Phase, z: torch.Tensor, c_gen: torch.Tensor, real: torch.Tensor,
                    c_real: torch.Tensor, gen: torch.Generator | None, weight: float) -> dict[str, torch.Tensor]:
        """One micro-batch of one phase: forward, backward (gradients accumulate), its statistics."""
        if phase.name == "Gmain":
            return self.loss.g_main(z, c_gen, gen, weight)
        if phase.name == "Greg":
            return self.loss.g_pl(z, c_gen, gen, weight)
        if phase.name == "Dmain":
            return self.loss.d_main(real, c_real, z, c_gen, gen, weight)
        return self.loss.d_r1(real, c_real, gen, weight)

    def _collect(self, out: dict[str, torch.Tensor], acc: dict[str, torch.Tensor],
                 extra: dict[str, torch.Tensor]) -> None:
        """Losses and scores go to the progress statistics, the rest to the step's global sums."""
        for key, value in out.items():
            if key.startswith(("Loss/", "Scores/")):
                _add(acc, key, value.float())
                _add(acc, key + "#", torch.ones([], device=self.device))
            else:
                _add(extra, key, value.float())

    # -- CUDA graphs (bender/train/graphs.py) -----------------------------------------------------

    ADA_CALLS = {"Gmain": 1, "Greg": 0, "Dmain": 2, "Dreg": 1}  # augmentations each phase runs, in order

    def enable_cuda_graphs(self, emulate: bool = False) -> None:
        """Record each phase as a CUDA graph the first time it runs after step 0, then replay it.
        `emulate` stands in for CUDA on a CPU (tests; see bender.train.graphs)."""
        if not emulate and self.device.type != "cuda":
            raise BenderError(f"--cuda-graphs needs a CUDA GPU (this run is on {self.device}); "
                              "leave it out to train eagerly")
        if self.cfg.compile:
            raise BenderError("--cuda-graphs and --compile both record CUDA graphs: choose one")
        if self.rounds > 1:
            raise BenderError(f"--cuda-graphs records whole per-process batches: leave --batch-gpu unset "
                              f"(or set it to {self.batch_gpu * self.rounds})")
        self._phase_graphs = {}
        self._graphs_emulated = emulate
        res, channels = self.G.img_resolution, self.G.img_channels
        self._graph_inputs = (torch.zeros([self.batch_gpu, channels, res, res], device=self.device),
                              torch.zeros([self.batch_gpu, self.G.c_dim if self.use_labels else 0],
                                          device=self.device))
        self._plan_buffers: dict[int, torch.Tensor] = {}
        self._graph_pool = None if emulate else shared_pool(self.device)

    def _replay_phase(self, index: int, phase: Phase, weight: float) -> dict[str, torch.Tensor]:
        seed = self._seed(index, self.dist.rank)
        calls = self.ADA_CALLS[phase.name] if self.augment is not None else 0
        pad = self._write_plans(index, seed, calls) if calls else 0
        graph = self._phase_graphs.get((index, pad))  # one graph per phase and ADA padding
        if graph is None:
            graph = PhaseGraph(self._phase_fn(phase, weight, calls, self._plan_buffers.get(index), pad),
                               self.params[phase.net], self.device, emulate=self._graphs_emulated,
                               pool=self._graph_pool, name=phase.name)
            graph.capture()
            self._phase_graphs[(index, pad)] = graph
        seed_default_generator(self.device, seed)
        return graph.replay()

    def _write_graph_inputs(self, real: torch.Tensor, c: torch.Tensor) -> None:
        self._graph_inputs[0].copy_(real)
        self._graph_inputs[1].copy_(c)

    def _write_plans(self, index: int, seed: int, calls: int) -> int:
        """This step's augmentation plans for phase `index` (from the seeds eager mode uses) into its
        fixed buffer: one copy, queued without waiting for the GPU. Returns the padding they need."""
        stand_in = torch.Generator().manual_seed(seed)  # the pipe derives its host generator from the seed
        size = tuple(self._graph_inputs[0].shape[2:])
        plans = [self.augment.plan(self.batch_gpu, size, stand_in) for _ in range(calls)]
        packed = torch.cat([plan.packed() for plan in plans])
        buffer = self._plan_buffers.setdefault(index, torch.empty(packed.shape, device=self.device))
        buffer.copy_(packed.pin_memory() if self.device.type == "cuda" else packed, non_blocking=True)
        return self.augment.fixed_padding(plans, size)

    def _phase_fn(self, phase: Phase, weight: float, calls: int, plans: torch.Tensor | None, pad: int):
        """The phase as the graph records it: fixed inputs, the default generator, ADA's plans handed in."""
        bg, augment = self.batch_gpu, self.augment
        real, c_real = self._graph_inputs
        color = augment is not None and augment.color_on
        n = plan_size(bg, color)

        def run() -> dict[str, torch.Tensor]:
            z = torch.randn([bg, self.G.z_dim], device=self.device)
            c_gen = self.data.random_labels(bg, None) if self.use_labels else c_real[:, :0]
            fixed = [unpack_plan(plans[k * n:(k + 1) * n], bg, color) for k in range(calls)]
            with augment.fixed_plans(fixed, pad) if calls else contextlib.nullcontext():
                return self._phase_loss(phase, z, c_gen, real, c_real, None, weight)

        return run

    def _train_only(self, net: str | None) -> None:
        for name, params in self.params.items():
            for p in params:
                p.requires_grad_(name == net)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg = self.cfg
        total_nimg = int(round(cfg.kimg * 1000))
        snap_nimg = max(int(round(cfg.snap * 1000)), 1)
        last_snapshot = None
        reason = "done"
        restore_handler = self._install_sigint()
        try:
            if self.cur_nimg == 0:
                last_snapshot = self.snapshot({})  # the starting point: the bend begins here
            else:
                last_snapshot = ckpt.snapshot_path(self.run_dir, self.cur_nimg / 1000)
                self._ensure_preview(self.cur_nimg / 1000)
            acc: dict[str, torch.Tensor] = {}
            tick_acc: dict[str, torch.Tensor] = {}
            next_snap = (self.cur_nimg // snap_nimg + 1) * snap_nimg
            tick_time = time.time()
            tick_nimg = self.cur_nimg
            self.progress.say(f"training to {cfg.kimg:g} kimg, snapshot every {cfg.snap:g} kimg")
            while self.cur_nimg < total_nimg:
                t0 = time.time()
                step_acc: dict[str, torch.Tensor] = {}
                self.train_step(step_acc)
                for k, v in step_acc.items():
                    _add(acc, k, v)
                    _add(tick_acc, k, v)
                self.elapsed += time.time() - t0
                due_snap = self.cur_nimg >= next_snap or self.cur_nimg >= total_nimg  # the same in every process
                stop_now, tick_due = self._stop_requested(), time.time() - tick_time >= cfg.tick
                if ddp.active():  # processes agree on the others (a collective: every 8 steps, not every step)
                    agreed = self._agree(stop_now, tick_due) if due_snap or self.step % 8 == 0 else [False, False]
                    stop_now, tick_due = agreed
                due_snap = due_snap or stop_now
                if due_snap or tick_due:
                    stats = self._check_finite(tick_acc, last_snapshot)
                    now = time.time()
                    kimg_done = (self.cur_nimg - tick_nimg) / 1000
                    speed = (now - tick_time) / kimg_done if kimg_done > 0 else None
                    self.progress.update(self.cur_nimg / 1000, speed, stats, self._p(), self._mem())
                    tick_acc, tick_time, tick_nimg = {}, now, self.cur_nimg
                if due_snap:
                    stats = self._check_finite(acc, last_snapshot)
                    acc = {}
                    last_snapshot = self.snapshot(stats)
                    next_snap = (self.cur_nimg // snap_nimg + 1) * snap_nimg
                    tick_time = time.time()  # snapshot writing does not count toward speed
                    why = self._check_stop_conditions(last_snapshot, stats)
                    if stop_now and why is None:
                        why = "stopped on request"
                        if self.dist.main:
                            (self.run_dir / "STOP").unlink(missing_ok=True)  # or --continue would stop at once
                    if why is not None:
                        reason = why
                        break
        finally:
            restore_handler()
        kimg = self.cur_nimg / 1000
        self.progress.say(f"{'finished' if reason == 'done' else 'stopped: ' + reason} at kimg {kimg:.3f}; "
                          f"latest snapshot {last_snapshot}")
        if self.dist.main and cfg.timeline:
            self._timeline()
        ddp.barrier()
        return TrainResult(self.run_dir, kimg, last_snapshot, reason)

    def _stop_requested(self) -> bool:
        """Ctrl-C, or a file named STOP in the run folder (what a UI can create)."""
        return self._interrupt.is_set() or (self.run_dir / "STOP").exists()

    def _agree(self, *flags: bool) -> list[bool]:
        """Each flag set in any process is set in all, so they stop and report at the same step."""
        box = ddp.all_reduce_sum_(torch.tensor([float(f) for f in flags], device=self.device))
        return [bool(v > 0) for v in box.tolist()]

    def _install_sigint(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self._interrupt.is_set():  # second Ctrl-C: stop at once
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self._interrupt.set()
            self.progress.say("Ctrl-C: finishing this step and writing a snapshot (Ctrl-C again to abort)")

        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _check_finite(self, acc: dict[str, torch.Tensor], last_snapshot: Path | None) -> dict[str, float]:
        """Mean of each accumulated statistic; stop the run if any loss went NaN/Inf."""
        stats = _means(acc, reduce=ddp.all_reduce_sum_)
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            hint = (f"the last good snapshot is {last_snapshot}; continue from it with `bender train --continue "
                    f"{self.run_dir} --lr-scale 0.5` (or a larger --gamma)") if last_snapshot else \
                "lower --lr-scale or raise --gamma and start again"
            raise NonFiniteLoss(f"{', '.join(bad)} became NaN/Inf near kimg {self.cur_nimg / 1000:.3f}; {hint}")
        return stats

    def _check_stop_conditions(self, snapshot: Path, stats: dict) -> str | None:
        why = None
        if self.dist.main and self.stop_conditions:
            event = SnapshotEvent(run_dir=self.run_dir, kimg=self.cur_nimg / 1000, snapshot=snapshot,
                                  G_ema=self.G_ema, stats=stats, dataset=self.data.info.path)
            for condition in self.stop_conditions:
                why = condition(event)
                if why:
                    break
        return ddp.broadcast_object(why)

    # -- snapshots --------------------------------------------------------------------------------

    def snapshot(self, stats: dict[str, float]) -> Path:
        """State, then model, then preview and stats; only the main process writes."""
        kimg = self.cur_nimg / 1000
        snap = ckpt.snapshot_path(self.run_dir, kimg)
        for net in (self.G, self.D):  # identical in every process, so every process stops alike
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                raise NonFiniteLoss(f"weights became NaN/Inf near kimg {kimg:.3f}; not writing a snapshot. "
                                    f"Continue from the previous one with `bender train --continue {self.run_dir} "
                                    "--lr-scale 0.5`")
        if self.dist.main:
            ckpt.save_state(ckpt.state_path(self.run_dir, kimg), self.state_dict())
            from bender.io import export_nvidia, save_model

            m = self.model
            m.lineage.kimg = kimg
            m.augment_p = float(self.augment.p) if self.augment is not None else m.augment_p
            save_model(m, snap)
            if self.cfg.export_pkl and m.nvidia is not None:
                export_nvidia(m, snap.with_suffix(".pkl"))
            self._write_preview(kimg)
            record = {"kimg": kimg, "step": self.step, "time": round(self.elapsed, 3),
                      "augment_p": self._p(), "pl_mean": float(self.loss.pl_mean), "gpu_mem_gb": self._mem(),
                      "snapshot": snap.name, **{k: round(v, 6) for k, v in stats.items()}}
            ckpt.append_stats(self.run_dir, record)
        ddp.barrier()
        return snap

    @torch.no_grad()
    def _write_preview(self, kimg: float) -> None:
        from bender.render.images import make_grid, save_png, to_uint8

        pr = self.loss.precision
        chunks = []
        for z, c in zip(self.preview_z.split(8), self.preview_c.split(8)):
            img = self.G_ema(z, c if self.use_labels else None, noise_mode="const", force_fp32=pr.force_fp32,
                             half_dtype=pr.half_dtype)
            chunks.append(to_uint8(img))
        grid = make_grid(np.concatenate(chunks), cols=math.ceil(math.sqrt(len(self.cfg.preview_seeds))))
        save_png(grid, ckpt.preview_path(self.run_dir, kimg),
                 {"kimg": f"{kimg:.3f}", "seeds": ",".join(map(str, self.cfg.preview_seeds)),
                  "run": self.run_dir.name, "noise_mode": "const", "truncation_psi": "1"})

    def _ensure_preview(self, kimg: float) -> None:
        if self.dist.main and not ckpt.preview_path(self.run_dir, kimg).exists():
            self._write_preview(kimg)

    def _timeline(self) -> None:
        """RUN/timeline.mp4: the preview seeds through every snapshot (bender.render.timeline)."""
        try:
            from bender.render.timeline import render_timeline
        except ImportError:
            self.progress.say("timeline video: not available in this install (bender.render.timeline is missing)")
            return
        out = self.run_dir / "timeline.mp4"
        try:
            render_timeline(self.run_dir, out, seeds=list(self.cfg.preview_seeds), psi=1.0, device=self.device)
        except Exception as e:  # noqa: BLE001 - the training itself succeeded; say what failed and go on
            self.progress.say(f"timeline video failed ({type(e).__name__}: {e}); render it later with "
                              f"`bender render timeline {self.run_dir}`")
            return
        self.progress.say(f"timeline video: {out}")

    # -- small helpers ----------------------------------------------------------------------------

    def _p(self) -> float | None:
        return float(self.augment.p) if self.augment is not None else None

    def _mem(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)


def _sum_round_grads(params: list[torch.nn.Parameter], summed: list | None) -> list:
    """Add this round's gradients to the sum of the previous rounds' (and clear them).

    Summing whole per-round gradients, instead of letting autograd accumulate every backward call
    into one buffer, adds the same numbers in the same order as the all-reduce across processes
    does, so N rounds in one process give bit-for-bit the result of N processes.
    """
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    for p in params:
        p.grad = None
    if summed is None:
        return grads
    return [a + b for a, b in zip(summed, grads)]


def _add(acc: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> None:
    acc[key] = acc[key] + value.detach() if key in acc else value.detach().clone()


def _means(acc: dict[str, torch.Tensor], reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
           ) -> dict[str, float]:
    """{'Loss/G/main': sum, 'Loss/G/main#': count, ...} -> {'Loss/G/main': mean}, over all processes
    when `reduce` sums across them (one collective, one device sync)."""
    keys = sorted(acc)
    if not keys:
        return {}
    totals = torch.stack([acc[k].float() for k in keys])
    if reduce is not None:
        totals = reduce(totals)
    total = dict(zip(keys, totals.tolist()))
    return {k: v / total[k + "#"] if k + "#" in total else v for k, v in total.items() if not k.endswith("#")}


def _asdict(obj):
    import dataclasses

    return dataclasses.asdict(obj) if obj is not None else None


def train(cfg: TrainConfig, continue_run: Path | None = None, stop_conditions: Sequence[StopCondition] = (),
          quiet: bool = False) -> TrainResult:
    """Run a training (new, or continuing `continue_run`) to the end, a stop condition, or Ctrl-C."""
    trainer = Trainer(cfg, continue_run=continue_run, stop_conditions=stop_conditions, quiet=quiet)
    return trainer.run()


__all__ = ["NonFiniteLoss", "TrainResult", "Trainer", "train"]

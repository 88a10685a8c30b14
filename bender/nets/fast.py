"""Fast batched inference for a trained Generator on CUDA (opt-in).

Rendering videos and latent grids runs G thousands of times at a fixed batch size, so it pays to
prepare G once for that:

* **half precision** for the blocks the model already runs in fp16 (its `num_fp16_res`), as
  bfloat16 by default: same speed as fp16 on tensor cores, fp32's exponent range;
* **channels_last** activations and weights in those blocks, the layout cuDNN's tensor-core
  convolutions want (saves a layout transform around every convolution);
* **CUDA graphs**: a StyleGAN2 forward is hundreds of small kernel launches, which at low
  resolutions cost more than the work; one captured graph per (batch size, truncation) replays
  them all with one launch;
* optionally **torch.compile** (Inductor fuses the elementwise ops; slow to start, so off by default).

The model's weights are shared with the source G only through `copy.deepcopy`: the wrapper never
changes the caller's model. On the CPU the same wrapper simply runs G (no graphs, fp32), so code
that uses it works everywhere.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import torch

from bender.nets.generator import Generator

HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class FastOptions:
    half: str = "bfloat16"  # dtype of the model's fp16 blocks: "float16" (NVIDIA's) or "bfloat16"
    channels_last: bool = True
    cuda_graph: bool = True
    compile: bool = False
    noise_mode: str = "const"  # "const" is deterministic per seed; "random" also works inside graphs
    cudnn_benchmark: bool = True  # let cuDNN time its algorithms for the fixed shapes (a global setting)
    max_graphs: int = 4  # captured graphs kept (each holds its own activation memory)
    # Modulated convolutions of the float32 (low-resolution) layers: None keeps G's choice for
    # inference, one grouped convolution with per-sample weights (NVIDIA's); False modulates the
    # activations instead and runs one plain convolution for the whole batch, which cuDNN usually
    # runs faster than a grouped one at batch 32-64 (benchmarks/generate.py times both).
    fused_modconv: bool | None = None

    def __post_init__(self) -> None:
        if self.half not in HALF_DTYPES:
            raise ValueError(f"half must be one of {', '.join(HALF_DTYPES)}, got {self.half!r}")
        if self.noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be const, random or none, got {self.noise_mode!r}")


class FastGenerator:
    """`G` prepared for repeated batched inference: `fast(z)` / `fast.synthesize(ws)` -> float32 images.

    Outputs are fresh tensors (not views of graph memory) in [-1, 1] (not clamped), NCHW.
    """

    def __init__(self, G: Generator, options: FastOptions | None = None, device: torch.device | str | None = None):
        self.options = options or FastOptions()
        device = torch.device(device) if device is not None else next(G.parameters()).device
        self.device = device
        self.on_cuda = device.type == "cuda"
        # On the CPU, G's own default (float32 there): the wrapper must not change CPU numerics.
        self.half_dtype = HALF_DTYPES[self.options.half] if self.on_cuda else torch.float16
        self.G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
        if self.options.channels_last and self.on_cuda:
            self._use_channels_last()
        if self.options.cudnn_benchmark and self.on_cuda:
            torch.backends.cudnn.benchmark = True
        self._call = self.G
        if self.options.compile and self.on_cuda:
            self._call = torch.compile(self.G, dynamic=False)
        self._graphs: OrderedDict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]] = OrderedDict()

    def _use_channels_last(self) -> None:
        for block in self.G.synthesis.blocks():
            if not block.use_fp16:
                continue
            block.channels_last = True
            for p in block.parameters():
                if p.ndim == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)

    # The two entry points -------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None) -> torch.Tensor:
        """Images for latents z [N, z_dim] (and labels c for conditional models)."""
        z = z.to(self.device, torch.float32)
        c = c.to(self.device, torch.float32) if c is not None else None
        key = ("z", tuple(z.shape), None if c is None else tuple(c.shape), float(truncation_psi), truncation_cutoff)

        def run(z, *rest):
            return self._call(z, rest[0] if rest else None, truncation_psi=truncation_psi,
                              truncation_cutoff=truncation_cutoff, noise_mode=self.options.noise_mode,
                              half_dtype=self.half_dtype, fused_modconv=self.options.fused_modconv)

        return self._run(key, run, [z] if c is None else [z, c])

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """Images for per-layer latents ws [N, num_ws, w_dim] (latent walks, style mixing, bends)."""
        ws = ws.to(self.device, torch.float32)

        def run(ws):
            return self.G.synthesis(ws, noise_mode=self.options.noise_mode, half_dtype=self.half_dtype,
                                    fused_modconv=self.options.fused_modconv)

        return self._run(("ws", tuple(ws.shape)), run, [ws])

    # Graph capture ---------------------------------------------------------------------------------

    def _run(self, key: tuple, fn, inputs: list[torch.Tensor]) -> torch.Tensor:
        if not (self.on_cuda and self.options.cuda_graph):
            return fn(*inputs).float()
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(fn, inputs)
            self._graphs[key] = entry
            while len(self._graphs) > self.options.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        graph, static_inputs, static_out = entry
        for dst, src in zip(static_inputs, inputs):
            dst.copy_(src)
        graph.replay()
        out = static_out.float()
        return out.clone() if out is static_out else out  # never hand out the graph's own memory

    def _capture(self, fn, inputs: list[torch.Tensor]):
        static_inputs = [t.clone() for t in inputs]
        # Warm up on a side stream (cuDNN autotuning, lazy kernel builds, torch.compile) before capture.
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn(*static_inputs)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = fn(*static_inputs)
        return graph, static_inputs, static_out

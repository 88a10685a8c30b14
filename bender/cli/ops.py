"""`bender ops`: build the CUDA kernels ahead of time and see which ops path is in use."""

from __future__ import annotations

import shutil
import time

import click

from bender.errors import BenderError


@click.group()
def ops() -> None:
    """Build and inspect bender's CUDA kernels (fused bias+activation, upfirdn2d)."""


@ops.command()
@click.option("--arch", default=None, metavar="LIST",
              help="GPU architectures in TORCH_CUDA_ARCH_LIST syntax, e.g. '9.0+PTX' (H100) or '8.6;9.0+PTX'. "
                   "Default: the visible GPUs', which is what a later run looks for; give it to build on a "
                   "machine without a GPU.")
@click.option("--force", is_flag=True, help="Rebuild even if a build, or a failed build, is cached.")
@click.option("-v", "--verbose", is_flag=True, help="Show the compiler's output as it runs.")
def build(arch: str | None, force: bool, verbose: bool) -> None:
    """Compile the kernels now (MAX_JOBS sets parallel compile jobs) instead of on first use."""
    from bender.ops.cuda import build as builder
    from bender.ops.cuda.build import KernelBuildError

    start = time.perf_counter()
    try:
        module = builder.build(arch=arch, force=force, verbose=verbose)
        key = builder.build_key(arch)
    except KernelBuildError as e:
        raise BenderError(f"CUDA kernels not built: {e}") from None
    click.echo(f"built {module.__name__} for arch {key.arch} (torch {key.torch}, CUDA {key.cuda}) "
               f"in {time.perf_counter() - start:.1f}s: {builder.build_dir(key)}")
    import torch

    if arch is not None or not torch.cuda.is_available():
        click.echo("self-check: runs on the GPU before the kernels' first use")
        return
    from bender.ops.cuda.selfcheck import run_self_check

    report = run_self_check(module, torch.device("cuda", torch.cuda.current_device()))
    if report.failures:
        raise BenderError(f"CUDA kernels built but disagree with the reference ops on this GPU, so bender will not "
                          f"use the failing ones; please report this. {report.summary()}")
    click.echo(report.summary())


@ops.command()
def status() -> None:
    """Which path each op takes here, and why (never builds anything)."""
    import torch

    from bender.ops import backend
    from bender.ops.cuda import build as builder
    from bender.ops.cuda import kernel_status

    nvcc = builder.nvcc_path()
    rows = [
        ("BENDER_OPS", backend.mode()),
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda or 'none'})"),
        ("GPU", ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
         if torch.cuda.is_available() else "none visible"),
        ("nvcc", f"{nvcc} ({builder.nvcc_version(nvcc) or '?'})" if nvcc else "not found"),
        ("cache", str(builder.cache_root())),
    ]
    rows += [(f"kernel {name}", state) for name, state in kernel_status().items()]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")


@ops.command()
def clean() -> None:
    """Delete every cached kernel build (they are rebuilt on next use)."""
    from bender.ops.cuda.build import cache_root

    root = cache_root()
    if not root.exists():
        click.echo(f"nothing to delete: {root} does not exist")
        return
    builds = [p for p in root.iterdir() if p.is_dir()]
    shutil.rmtree(root)
    click.echo(f"deleted {len(builds)} cached build(s) in {root}")

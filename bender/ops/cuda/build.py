"""Building the CUDA extension: once per machine, loudly when it cannot be built.

NVIDIA's StyleGAN2 plugins are the most reported failure of their code: they rebuild in every
process, hide the compiler's message, and on a mismatch silently run slow reference code. Here:

* the build is cached under `~/.cache/bender/ops/<key>/` where the key hashes the sources, the
  torch version, its CUDA version, the GPU architectures and the Python ABI — a new torch or a new
  card builds afresh, nothing else does;
* a file lock makes concurrent processes (DDP ranks, several notebooks) build once while the
  others wait;
* every failure becomes one `KernelBuildError` whose message names the cause (no CUDA build of
  torch, no GPU, no nvcc, an nvcc that does not match torch's CUDA, no ninja, no C++ compiler, or
  the compiler's first error lines). A compile error is remembered for that key, so later processes
  fall back at once instead of recompiling; `bender ops build --force` retries.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from bender.fileio import atomic_write_text

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("bindings.cpp", "bias_act.cu", "upfirdn2d.cu", "upfirdn2d_rows_f32.cu", "upfirdn2d_rows_f16.cu",
           "upfirdn2d_rows_bf16.cu")
HEADERS = ("ops.h", "common.cuh", "bias_act.cuh", "upfirdn2d.cuh", "upfirdn2d_rows.cuh", "upfirdn2d_rows_launch.cuh",
           "upfirdn2d_rows_launch.h")
CUDA_FLAGS = ("-O3", "-lineinfo", "--expt-relaxed-constexpr")
CXX_FLAGS = ("-O3",)
FAILED = "FAILED"
BUILT = "built.json"

T = TypeVar("T")


class KernelBuildError(RuntimeError):
    """The kernels cannot be built or loaded here; the message is one line naming why."""


def cache_root() -> Path:
    """Where built kernels live: $BENDER_CACHE_DIR, else $XDG_CACHE_HOME/bender, else ~/.cache/bender."""
    base = os.environ.get("BENDER_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "ops"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bender" / "ops"


@dataclass(frozen=True)
class BuildKey:
    """Everything the compiled library depends on."""

    sources: str  # sha256 of the kernel sources and flags
    torch: str
    cuda: str
    arch: str  # TORCH_CUDA_ARCH_LIST syntax, e.g. "9.0+PTX"
    python: str  # extension modules are tied to the interpreter's ABI

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def module_name(self) -> str:
        return f"bender_ops_{self.digest()}"


def source_hash() -> str:
    h = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes() + b"\0")
    h.update(" ".join((*CUDA_FLAGS, *CXX_FLAGS)).encode())
    return h.hexdigest()


def gpu_arch_list(arch: str | None = None) -> str:
    """The architectures to build for: `arch`, else $TORCH_CUDA_ARCH_LIST, else the visible GPUs'
    (with PTX for the newest, so a newer card can still JIT-compile the kernels)."""
    import torch

    arch = arch or os.environ.get("TORCH_CUDA_ARCH_LIST")
    if arch:
        return arch.strip()
    if not torch.cuda.is_available():
        raise KernelBuildError("no CUDA GPU is visible to PyTorch and no architecture was given "
                               "(bender ops build --arch 9.0 builds for an H100 without one)")
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    names = [f"{major}.{minor}" for major, minor in caps]
    names[-1] += "+PTX"
    return ";".join(names)


def build_key(arch: str | None = None) -> BuildKey:
    import torch

    return BuildKey(sources=source_hash(), torch=torch.__version__, cuda=str(torch.version.cuda),
                    arch=gpu_arch_list(arch), python=f"{sys.implementation.cache_tag}-{sys.platform}")


def build_dir(key: BuildKey) -> Path:
    return cache_root() / key.digest()


# ------------------------------------------------------------------------------------------------
# What is missing, checked in milliseconds before any compiler runs.

def nvcc_path() -> str | None:
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    if home:
        exe = Path(home) / "bin" / ("nvcc.exe" if os.name == "nt" else "nvcc")
        if exe.exists():
            return str(exe)
    return shutil.which("nvcc")


def nvcc_version(nvcc: str) -> str | None:
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else None


def environment_problem(need_gpu: bool = True) -> str | None:
    """Why the kernels cannot be built here, or None if nothing obvious is missing."""
    import torch

    if not torch.version.cuda:
        return f"this PyTorch ({torch.__version__}) is built without CUDA; install a CUDA build of torch"
    if need_gpu and not torch.cuda.is_available():
        return "no CUDA GPU is visible to PyTorch"
    nvcc = nvcc_path()
    if nvcc is None:
        return (f"nvcc not found: install the CUDA {torch.version.cuda} toolkit and set CUDA_HOME "
                "(or put nvcc on PATH)")
    version = nvcc_version(nvcc)
    if version and version.split(".")[0] != str(torch.version.cuda).split(".")[0]:
        return (f"nvcc {version} ({nvcc}) does not match PyTorch's CUDA {torch.version.cuda}; "
                "point CUDA_HOME at a matching toolkit")
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return "ninja not found: pip install ninja"
    cxx = os.environ.get("CXX", "c++")
    if os.name != "nt" and shutil.which(cxx) is None:
        return f"no C++ compiler ('{cxx}' not found): install g++ or set CXX"
    return None


def summarize_compiler_output(text: str, limit: int = 3) -> str:
    """The compiler's first error lines (not the command lines around them), joined into one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    noise = ("Error building extension", "ninja: build stopped", "FAILED:", "[")
    errors = [line for line in lines if re.search(r"\b(error|fatal)\b", line, re.IGNORECASE)
              and not line.startswith(noise)]
    picked = errors[:limit] or [line for line in lines if not line.startswith(noise)][-limit:] or lines[-limit:]
    return " | ".join(line[:240] for line in picked)


# ------------------------------------------------------------------------------------------------
# Build once per key, under a lock.

@contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive lock on `path` across processes; released when the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if on_wait:
                        on_wait()
                        on_wait = None
                    time.sleep(0.5)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if on_wait:
                    on_wait()
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def build_once(directory: Path, compile_fn: Callable[[Path], T], load_fn: Callable[[Path], T],
               force: bool = False, info: dict | None = None) -> T:
    """Run `compile_fn(directory)` unless a completed build is there, then return what it (or, for a
    cached build, `load_fn(directory)`) gives. Other processes wait on the lock meanwhile.

    A `KernelBuildError` from `compile_fn` is recorded in `directory/FAILED` and re-raised by later
    calls without compiling again, until `force`.
    """
    lock = directory.parent / f"{directory.name}.lock"

    def waiting() -> None:
        print(f"bender: waiting for another process to finish building the CUDA kernels ({directory})",
              file=sys.stderr, flush=True)

    with file_lock(lock, on_wait=waiting):
        if force and directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        failed = directory / FAILED
        if failed.exists():
            raise KernelBuildError(f"{failed.read_text().strip()} (earlier build of this version; "
                                   "`bender ops build --force` retries)")
        if (directory / BUILT).exists():
            return load_fn(directory)
        start = time.perf_counter()
        try:
            result = compile_fn(directory)
        except KernelBuildError as e:
            atomic_write_text(failed, str(e) + "\n")
            raise
        record = dict(info or {}, seconds=round(time.perf_counter() - start, 1), built_at=time.time())
        atomic_write_text(directory / BUILT, json.dumps(record, indent=2) + "\n")
        return result


def import_library(name: str, directory: Path) -> ModuleType:
    """Import a built extension module from its build directory (no compiler, no ninja needed)."""
    import torch  # noqa: F401 - the library links against libtorch, which must be loaded first

    suffix = ".pyd" if os.name == "nt" else ".so"
    path = directory / f"{name}{suffix}"
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as e:
        raise KernelBuildError(f"built but failed to load ({path.name}): {e}") from e
    return module


def compile_extension(key: BuildKey, directory: Path, verbose: bool = False) -> ModuleType:
    """Compile with torch's JIT builder (ninja, MAX_JOBS parallel jobs) and import the result."""
    from torch.utils import cpp_extension

    old_arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    os.environ["TORCH_CUDA_ARCH_LIST"] = key.arch
    try:
        return cpp_extension.load(
            name=key.module_name, sources=[str(SOURCE_DIR / s) for s in SOURCES], build_directory=str(directory),
            extra_cflags=list(CXX_FLAGS), extra_cuda_cflags=list(CUDA_FLAGS), extra_include_paths=[str(SOURCE_DIR)],
            with_cuda=True, verbose=verbose)
    except ImportError as e:
        raise KernelBuildError(f"built but failed to load: {e}") from e
    except (RuntimeError, subprocess.CalledProcessError) as e:
        text = str(e)
        log = directory / "build.log"
        atomic_write_text(log, text + "\n")
        raise KernelBuildError(f"compiler error: {summarize_compiler_output(text)} (full log: {log})") from e
    finally:
        if old_arch is None:
            os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
        else:
            os.environ["TORCH_CUDA_ARCH_LIST"] = old_arch


def build(arch: str | None = None, force: bool = False, verbose: bool = False, need_gpu: bool = True) -> ModuleType:
    """Build (or find in the cache) and import the extension; `KernelBuildError` says why not."""
    problem = environment_problem(need_gpu=need_gpu and not arch)
    if problem:
        raise KernelBuildError(problem)
    key = build_key(arch)
    directory = build_dir(key)
    return build_once(directory, lambda d: compile_extension(key, d, verbose=verbose),
                      lambda d: import_library(key.module_name, d), force=force, info=asdict(key))


def cached_state(arch: str | None = None) -> tuple[str, str]:
    """('built' | 'failed' | 'absent', detail) for the current key, without building anything."""
    key = build_key(arch)
    directory = build_dir(key)
    if (directory / FAILED).exists():
        return "failed", (directory / FAILED).read_text().strip()
    if (directory / BUILT).exists():
        return "built", str(directory)
    return "absent", str(directory)

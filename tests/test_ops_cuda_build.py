"""Building the CUDA kernels: the fallback, its one-line reasons, the cache and lock, the compile check.

Runs without a GPU. The `.cu` files are compiled with plain `nvcc -c` when nvcc is on PATH, as CI
does; the whole extension is built against a CUDA build of torch when BENDER_TEST_CUDA_PYTHON names
a Python that has one (e.g. /work/venv-cuda/bin/python).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bender.cli import main
from bender.ops import backend
from bender.ops import cuda as cuda_ops
from bender.ops.cuda import build as builder
from bender.ops.cuda.build import KernelBuildError, build_once

REPO = Path(__file__).resolve().parents[1]
CUDA_DIR = REPO / "bender" / "ops" / "cuda"
NO_CUDA_TORCH = torch.version.cuda is None


@pytest.fixture(autouse=True)
def fresh_state(tmp_path, monkeypatch):
    """An empty kernel cache and no memory of earlier load attempts."""
    monkeypatch.setenv("BENDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENDER_OPS", raising=False)
    monkeypatch.setattr(cuda_ops, "_state", {"ops": None, "error": None})
    monkeypatch.setattr(backend, "_state", {"module": None, "error": None, "tried": False, "checked": False})
    yield tmp_path / "cache"


@pytest.mark.skipif(not NO_CUDA_TORCH, reason="checks the CPU-only torch fallback")
def test_cpu_torch_falls_back_with_one_warning_naming_the_cause(fresh_state):
    with pytest.raises(KernelBuildError) as info:
        cuda_ops.load()
    assert "built without CUDA" in str(info.value) and "\n" not in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backend.cuda_module() is None
        assert backend.cuda_module() is None
        x = torch.randn(2, 3)
        assert not backend.use_cuda("bias_act", x)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "using reference ops" in messages[0] and "built without CUDA" in messages[0]
    assert not fresh_state.exists(), "a failed environment check must not touch the cache"


@pytest.mark.skipif(not NO_CUDA_TORCH, reason="checks the CPU-only torch fallback")
def test_bender_ops_cuda_turns_the_fallback_into_an_error(monkeypatch):
    monkeypatch.setenv("BENDER_OPS", "cuda")
    with pytest.raises(RuntimeError, match="BENDER_OPS=cuda but the CUDA kernels could not be loaded"):
        backend.cuda_module(required=True)


def test_upfirdn2d_kernel_choice_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("BENDER_UPFIRDN2D_KERNEL", raising=False)
    assert backend.upfirdn2d_path() == 4  # row-streaming first, then tiled, then generic (ops.h)
    monkeypatch.setenv("BENDER_UPFIRDN2D_KERNEL", " Tiled ")
    assert backend.upfirdn2d_path() == 0  # tiled, then generic
    monkeypatch.setenv("BENDER_UPFIRDN2D_KERNEL", "fastest")
    with pytest.raises(ValueError, match="use tiled or rows"):
        backend.upfirdn2d_path()


def test_the_instruction_count_model_still_pins_the_kernels_branches(monkeypatch):
    """benchmarks/upfirdn2d_sass.py edits a copy of the kernels to keep only an interior thread's
    path; every edit must still find its text, or the model silently counts something else."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "upfirdn2d_sass.py"
    spec = importlib.util.spec_from_file_location("upfirdn2d_sass", path)
    model = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, model)  # dataclasses look their module up there
    spec.loader.exec_module(model)
    for name, old, _new in model.PIN:
        assert (model.CUDA_DIR / name).read_text().count(old) == 1, f"{name}: {old.strip()!r}"


def test_kernel_status_reports_every_kernel_without_building(fresh_state, monkeypatch):
    status = cuda_ops.kernel_status()
    assert set(status) == {"bias_act", "upfirdn2d"}
    for state in status.values():
        assert state in ("built", "not built yet") or state.startswith("fallback (")
    if NO_CUDA_TORCH:
        assert all("built without CUDA" in s for s in status.values())
    assert not fresh_state.exists()
    monkeypatch.setenv("BENDER_OPS", "ref")
    assert set(cuda_ops.kernel_status().values()) == {"fallback (BENDER_OPS=ref)"}


def fake_cuda_torch(monkeypatch, tmp_path, nvcc_release: str | None, ninja: bool = True) -> None:
    """Make this torch look like a CUDA 13.0 build on a GPU machine, with the given nvcc (or none)."""
    from torch.utils import cpp_extension

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    home = tmp_path / "cuda_home"
    (home / "bin").mkdir(parents=True)
    if nvcc_release:
        nvcc = home / "bin" / "nvcc"
        nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {nvcc_release}, V{nvcc_release}.1'\n")
        nvcc.chmod(0o755)
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(home))
    monkeypatch.setenv("PATH", str(tmp_path / "empty_path"))
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: ninja)


@pytest.mark.skipif(os.name == "nt", reason="uses a shell script as a stand-in nvcc")
def test_each_missing_piece_is_named(monkeypatch, tmp_path):
    fake_cuda_torch(monkeypatch, tmp_path, nvcc_release=None)
    assert "nvcc not found" in builder.environment_problem()
    monkeypatch.undo()

    fake_cuda_torch(monkeypatch, tmp_path / "b", nvcc_release="12.4")
    assert "nvcc 12.4" in builder.environment_problem() and "does not match PyTorch's CUDA 13.0" in \
        builder.environment_problem()
    monkeypatch.undo()

    fake_cuda_torch(monkeypatch, tmp_path / "c", nvcc_release="13.0", ninja=False)
    assert builder.environment_problem() == "ninja not found: pip install ninja"
    monkeypatch.undo()

    fake_cuda_torch(monkeypatch, tmp_path / "d", nvcc_release="13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert builder.environment_problem() == "no CUDA GPU is visible to PyTorch"
    assert builder.environment_problem(need_gpu=False) is None or "C++ compiler" in \
        builder.environment_problem(need_gpu=False)


def test_build_key_changes_with_sources_torch_cuda_and_arch(monkeypatch):
    key = builder.build_key("9.0+PTX")
    assert builder.build_key("9.0+PTX") == key
    assert builder.build_key("8.6").digest() != key.digest()
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert builder.build_key("9.0+PTX").digest() != key.digest()
    monkeypatch.undo()
    monkeypatch.setattr(builder, "CUDA_FLAGS", (*builder.CUDA_FLAGS, "-DSOMETHING"))
    assert builder.build_key("9.0+PTX").digest() != key.digest()


LOCK_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from bender.ops.cuda.build import build_once

    directory, log = Path(sys.argv[1]), Path(sys.argv[2])

    def compile_fn(d):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(1.5)
        (d / "artifact").write_text("v1")
        return "compiled"

    print(build_once(directory, compile_fn, lambda d: "loaded " + (d / "artifact").read_text()))
""")


def test_concurrent_processes_build_once(tmp_path):
    directory, log = tmp_path / "ops" / "key", tmp_path / "compiles.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", LOCK_SCRIPT, str(directory), str(log)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    results = sorted(out.strip() for out, _ in outputs)
    assert results == ["compiled", "loaded v1", "loaded v1"]
    assert len(log.read_text().split()) == 1


def test_compile_errors_are_remembered_until_forced(tmp_path):
    calls = []

    def failing(d):
        calls.append(d)
        raise KernelBuildError("compiler error: x.cu(3): error: expected a ';'")

    directory = tmp_path / "key"
    for _ in range(2):
        with pytest.raises(KernelBuildError, match="expected a ';'"):
            build_once(directory, failing, lambda d: None)
    assert len(calls) == 1
    assert build_once(directory, lambda d: "fixed", lambda d: "cached", force=True) == "fixed"
    assert build_once(directory, lambda d: "again", lambda d: "cached") == "cached"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_compiler_errors_are_summarised_in_one_line(tmp_path):
    broken = tmp_path / "broken.cu"
    broken.write_text("__global__ void k(float* x) { x[0] = undefined_name; }\n")
    result = subprocess.run(["nvcc", "-c", str(broken), "-o", str(tmp_path / "b.o")], capture_output=True, text=True)
    assert result.returncode != 0
    text = "Error building extension 'x': [1/3] /usr/bin/nvcc -c broken.cu\n" + result.stdout + result.stderr
    text += "\nninja: build stopped: subcommand failed.\n"
    summary = builder.summarize_compiler_output(text)
    assert "\n" not in summary and "broken.cu" in summary and "undefined_name" in summary
    assert not summary.startswith(("Error building", "["))


def test_device_code_has_no_torch_headers():
    """The .cu files must compile with plain nvcc (CI has no CUDA build of torch)."""
    for path in [*CUDA_DIR.glob("*.cu"), *CUDA_DIR.glob("*.cuh"), CUDA_DIR / "ops.h"]:
        text = path.read_text()
        assert "torch/" not in text and "ATen/" not in text and "c10/" not in text, path.name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_every_cu_file_compiles_with_plain_nvcc(tmp_path):
    sources = sorted(CUDA_DIR.glob("*.cu"))
    rows = {f"upfirdn2d_rows_{t}.cu" for t in ("f32", "f16", "bf16")}
    assert {s.name for s in sources} == {"bias_act.cu", "upfirdn2d.cu", *rows}
    procs = [subprocess.Popen(["nvcc", "-c", "-std=c++17", "-O3", "-gencode=arch=compute_90,code=sm_90",
                               "-Werror", "all-warnings", str(src), "-o", str(tmp_path / f"{src.stem}.o")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for src in sources]
    for src, proc in zip(sources, procs):
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{src.name}:\n{out}"
        assert (tmp_path / f"{src.stem}.o").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("BENDER_TEST_CUDA_PYTHON"), reason="set BENDER_TEST_CUDA_PYTHON to a Python "
                    "with a CUDA build of torch to build the whole extension")
def test_whole_extension_builds_against_cuda_torch(tmp_path):
    script = ("from bender.ops.cuda import build\n"
              "m = build.build(arch='9.0+PTX')\n"
              "print(m.__name__, sorted(n for n in dir(m) if not n.startswith('_')))\n")
    env = dict(os.environ, BENDER_CACHE_DIR=str(tmp_path), PYTHONPATH=str(REPO))
    result = subprocess.run([os.environ["BENDER_TEST_CUDA_PYTHON"], "-c", script], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "['bias_act', 'upfirdn2d']" in result.stdout


def test_cli_status_and_build(fresh_state):
    runner = CliRunner()
    result = runner.invoke(main, ["ops", "status"])
    assert result.exit_code == 0, result.output
    assert "kernel bias_act" in result.output and "kernel upfirdn2d" in result.output
    assert "BENDER_OPS" in result.output
    if NO_CUDA_TORCH:
        result = runner.invoke(main, ["ops", "build"])
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: CUDA kernels not built: ")
        assert "Traceback" not in result.output


def test_cli_clean(fresh_state):
    (fresh_state / "ops" / "0123456789abcdef").mkdir(parents=True)
    result = CliRunner().invoke(main, ["ops", "clean"])
    assert result.exit_code == 0 and "deleted 1 cached build" in result.output
    assert not (fresh_state / "ops").exists()

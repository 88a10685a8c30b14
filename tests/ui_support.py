"""Shared helpers for the UI tests: small real models, a run folder, a live server on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bender.io import load, save_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def fixture_pkl(fixtures_dir: Path, name: str = "sg2ada-res32-fp32") -> Path:
    return fixtures_dir / "networks" / f"{name}.pkl"


def save_pair(fixtures_dir: Path, out: Path) -> tuple[Path, Path]:
    """An 'original' (the 32² fixture as .safetensors) and a 'fine-tune' with visibly moved weights."""
    out.mkdir(parents=True, exist_ok=True)
    a = load(fixture_pkl(fixtures_dir))
    save_model(a, out / "original.safetensors")
    b = a.clone()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in b.G_ema.synthesis.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3 * (p.std() if p.numel() > 1 else 1))
    b.lineage.fine_tuned_from = a.lineage.source_sha256
    b.lineage.kimg = 12.0
    b.lineage.dataset_name = "rocks"
    save_model(b, out / "tuned.safetensors")
    return out / "original.safetensors", out / "tuned.safetensors"


def make_run(fixtures_dir: Path, run: Path, kimgs=(0.0, 4.0, 8.0)) -> Path:
    """A training-run folder as `bender train` lays it out: snapshots drifting away from the start."""
    model = load(fixture_pkl(fixtures_dir))
    gen = torch.Generator().manual_seed(3)
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text("{}")
    for i, kimg in enumerate(kimgs):
        m = model.clone()
        with torch.no_grad():
            for p in m.G_ema.synthesis.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.15 * i * (p.std() if p.numel() > 1 else 1))
        m.lineage.kimg = kimg
        save_model(m, run / "checkpoints" / f"snapshot-{kimg:010.3f}.safetensors")
    return run


def require_chromium() -> str:
    """Path of Debian's chromium; skip (or fail when BENDER_REQUIRE_BROWSER=1) when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("BENDER_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is not installed but BENDER_REQUIRE_BROWSER=1 (apt-get install -y chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium)")


@contextlib.contextmanager
def running_ui(config, **kwargs) -> Iterator:
    """A UI server on a free loopback port whose process records (and refuses) outbound connections."""
    from bender.ui.server import serve

    server = serve(config, host="127.0.0.1", port=free_port(), **kwargs)
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(server):
    from gradio_client import Client

    return Client(server.url, analytics_enabled=False, verbose=False)


def raw_event(server, api_name: str, data: list, event_data=None, session_hash: str | None = None,
              timeout: float = 120.0):
    """Call an event through Gradio's queue the way the browser does, with `event_data` (a click's
    SelectData), which gradio_client cannot send. Returns the output values, or raises RuntimeError
    with the app's error message."""
    import json
    import uuid

    import httpx

    base = server.url.rstrip("/")
    config = httpx.get(f"{base}/config", timeout=30).json()
    fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name.lstrip("/"))
    session_hash = session_hash or uuid.uuid4().hex[:10]
    body = {"data": data, "event_data": event_data, "fn_index": fn_index, "trigger_id": None,
            "session_hash": session_hash}
    with httpx.Client(timeout=timeout) as http:
        r = http.post(f"{base}/gradio_api/queue/join", json=body)
        r.raise_for_status()
        with http.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    out = msg.get("output", {})
                    if not msg.get("success", False):
                        raise RuntimeError(out.get("error") or str(out))
                    return out["data"]
    raise RuntimeError("event stream ended without a result")

"""`bender demo` end to end at its smallest setting: every artefact, offline, on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bender.render.video import probe

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_produces_every_artefact(tmp_path):
    pytest.importorskip("skimage", reason="the demo's textures come from scikit-image")
    out = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.run([sys.executable, "-m", "bender", "demo", "--out", str(out), "--kimg", "1",
                           "--device", "cpu"], capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "bender demo finished" in text and "bender ui " in text
    run = next((out / "runs").iterdir())
    for path in (out / "rocks-foliage-64.zip", run / "timeline.mp4", out / "walk-loop.mp4", out / "bend-timeline.png",
                 run / "bend_curve.png", run / "metrics" / "bend.jsonl", run / "stats.jsonl"):
        assert path.exists() and path.stat().st_size > 0, path
        assert str(path) in text or path.name in text or path.parent.name in text
    snapshots = sorted((run / "checkpoints").glob("snapshot-*.safetensors"))
    previews = sorted((run / "previews").glob("preview-*.png"))
    assert len(snapshots) >= 2 and len(previews) == len(snapshots)  # the original, then the bends
    strip = Image.open(out / "bend-timeline.png")
    assert strip.size == (len(snapshots) * 64 + (len(snapshots) - 1) * 2, 4 * 64)  # a column per snapshot
    walk = probe(out / "walk-loop.mp4")
    assert walk["frames"] == 3 * 24 and walk["fps"] == pytest.approx(24)
    timeline = probe(run / "timeline.mp4")
    assert timeline["frames"] >= len(snapshots)
    # the steps were shown as copyable commands
    for step in ("$ bender dataset pack", "$ bender train", "$ bender render walk", "$ bender metrics",
                 "$ bender render timeline"):
        assert step in proc.stderr


def test_demo_refuses_to_overwrite_a_previous_run(tmp_path):
    from click.testing import CliRunner

    from bender.cli import main

    (tmp_path / "runs" / "00000-old").mkdir(parents=True)
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "already holds a demo run" in result.output

"""`bender render ...` through the real CLI (click runner and a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from bender.cli import main
from bender.render import video


@pytest.fixture(scope="module")
def pkl(fixtures_dir):
    return str(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")


def run(*args):
    result = CliRunner().invoke(main, ["render", *map(str, args)], catch_exceptions=False)
    return result


def test_walk_loop_frame_count_and_fps(pkl, tmp_path):
    out = tmp_path / "walk.mp4"
    result = run("walk", pkl, "--seeds", "1,2,3", "--frames", "30", "--loop", "--fps", "24", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    meta = video.probe(out)
    assert meta["frames"] == 90 and meta["fps"] == pytest.approx(24.0)
    assert "90 frames" in result.output and (tmp_path / "walk.mp4.yaml").exists()


def test_script_rerender_is_bit_identical(pkl, tmp_path):
    first = tmp_path / "first"
    result = run("walk", pkl, "--seeds", "4,5", "--frames", "4", "--noise", "random", "--psi", "0.6", "--out", first,
                 "-q")
    assert result.exit_code == 0, result.output
    again = tmp_path / "again"
    result = run("script", tmp_path / "first.yaml", "--out", again, "-q")
    assert result.exit_code == 0, result.output
    a, b = video.decode_frames(first), video.decode_frames(again)
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    tags_a, tags_b = video.read_metadata(first), video.read_metadata(again)
    assert tags_a["bender_script_sha256"] == tags_b["bender_script_sha256"]


def test_script_from_an_earlier_render(pkl, tmp_path):
    out = tmp_path / "loop.gif"
    assert run("loop", pkl, "--kind", "noise", "--frames", "6", "--out", out, "-q").exit_code == 0
    result = run("script", out, "-q")
    assert result.exit_code == 0, result.output
    assert len(video.decode_frames(tmp_path / "loop-again.gif")) == len(video.decode_frames(out))


def test_grid_plane_and_layers(pkl, tmp_path):
    result = run("grid", pkl, "--seeds", "0-5", "--cols", "3", "--size", "16", "--out", tmp_path / "g.png", "-q")
    assert result.exit_code == 0, result.output
    assert video.decode_frames(tmp_path / "g.png")[0].shape == (32, 48, 3)
    result = run("plane", pkl, "--seeds", "1,2,3", "--grid", "2x3", "--out", tmp_path / "p.png", "-q")
    assert result.exit_code == 0, result.output
    assert video.decode_frames(tmp_path / "p.png")[0].shape == (64, 96, 3)
    result = run("plane", pkl, "--seeds", "1,2,3", "--path", "0,0 1,0 0,1", "--frames", "3", "--loop",
                 "--out", tmp_path / "p.webm", "-q")
    assert result.exit_code == 0, result.output
    assert video.probe(tmp_path / "p.webm")["frames"] == 9
    result = run("layers", pkl)
    assert "synthesis.b16.conv1" in result.output and "32 channels" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["walk", "missing.pkl", "--seeds", "1,2", "--out", "x.mp4"], "missing.pkl: no such file"),
    (["walk", "PKL", "--seeds", "1,2", "--alpha", "0.5", "--out", "x.mp4"], "needs both --model-b"),
    (["walk", "PKL", "--seeds", "1,2", "--out", "x.avi"], "unknown output type"),
    (["walk", "PKL", "--seeds", "1,2", "--frames", "0", "--out", "x.mp4"], "frames must be"),
    (["plane", "PKL", "--seeds", "1,2"], "exactly 3 seeds"),
    (["plane", "PKL", "--sefa", "0,1", "--pca", "0,1"], "exactly one of"),
    (["grid", "PKL", "--seeds", "0-3", "--class", "2"], "class"),
])
def test_errors_are_one_line(pkl, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [pkl if a == "PKL" else a for a in args]
    result = CliRunner().invoke(main, ["render", *args], catch_exceptions=False)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not any(p.suffix in (".mp4", ".png", ".avi") for p in tmp_path.iterdir())


def test_bad_script_file(tmp_path):
    (tmp_path / "w.yaml").write_text("model: default\nkeyframes: [{sed: 1}]\n")
    result = CliRunner().invoke(main, ["render", "script", str(tmp_path / "w.yaml")])
    assert result.exit_code == 1 and "did you mean 'seed'" in result.output


def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "bender", "render", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    for name in ("walk", "loop", "grid", "plane", "timeline", "script"):
        assert name in proc.stdout

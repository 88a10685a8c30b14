"""`bender info / convert / generate / doctor` on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bender.cli import main
from bender.io import load
from bender.render.images import read_png_metadata


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_seed_means_what_it_means_in_nvidias_tools(tmp_path, fixtures_dir):
    """Seed 101 with psi 1 and const noise is the fixture's first reference image, to the 8-bit pixel."""
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    ref = np.load(fixtures_dir / "networks" / "sg2ada-res32-fp32.npz")
    # The fixture's z rows come from RandomState(101).randn(4, z_dim): row 0 is seed 101's z.
    assert np.array_equal(np.random.RandomState(101).randn(1, 64).astype(np.float32), ref["z"][:1])
    run("generate", str(pkl), "--seeds", "101", "--noise-mode", "const", "--outdir", str(tmp_path))
    png = np.asarray(Image.open(tmp_path / "seed0101.png"))
    expect = np.clip(ref["img_const"][0].transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert np.abs(png.astype(int) - expect.astype(int)).max() <= 1
    assert (png == expect).mean() > 0.99
    meta = read_png_metadata(tmp_path / "seed0101.png")
    assert meta["seed"] == "101" and meta["truncation_psi"] == "1.0" and meta["noise_mode"] == "const"
    assert meta["model_sha256"] == load(pkl).lineage.source_sha256


def test_generate_many_seeds_with_grid_and_truncation(tmp_path, fixtures_dir):
    pkl = fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl"
    run("generate", str(pkl), "--seeds", "0-2,7", "--trunc", "0.7", "--trunc-cutoff", "4", "--class", "3",
        "--outdir", str(tmp_path), "--grid", "--batch", "3")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    assert Image.open(tmp_path / "grid.png").size == (128, 128)
    assert read_png_metadata(tmp_path / "seed0007.png")["class"] == "3"


def test_generate_conditional_without_class_is_a_clear_error(tmp_path, fixtures_dir):
    result = run("generate", str(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl"), "--outdir",
                 str(tmp_path), ok=False)
    assert result.exit_code != 0
    assert "--class" in result.output and "Traceback" not in result.output


def test_info_json_and_text(fixtures_dir):
    out = run("info", str(fixtures_dir / "networks" / "sg2ada-res32-orig-skipD.pkl"), "--json").output
    desc = json.loads(out)
    assert desc["G_architecture"] == "orig" and desc["D_architecture"] == "skip" and desc["num_ws"] == 8
    text = run("info", str(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")).output
    assert "32x32" in text and "augment_p" in text


def test_convert_round_trip_and_ema_only(tmp_path, fixtures_dir):
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    st = tmp_path / "m.safetensors"
    run("convert", str(pkl), str(st))
    back = tmp_path / "back.pkl"
    run("convert", str(st), str(back))
    assert load(back).augment_p == pytest.approx(0.37)
    small = tmp_path / "ema.safetensors"
    run("convert", str(pkl), str(small), "--ema-only")
    assert small.stat().st_size < st.stat().st_size / 2
    assert load(small).D is None
    result = run("convert", str(small), str(tmp_path / "x.pkl"), ok=False)
    assert "did not come from an NVIDIA pickle" in result.output


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    result = run("info", str(bad), ok=False)
    assert result.exit_code != 0
    assert "not a model file" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_doctor_reports():
    out = run("doctor").output
    for name in ("torch", "ffmpeg", "gradio", "ops mode"):
        assert name in out


def test_generate_bf16_is_close_to_fp32(tmp_path, fixtures_dir):
    pkl = fixtures_dir / "networks" / "sg2ada-res32-orig-skipD.pkl"  # has reduced-precision blocks
    run("generate", str(pkl), "--seeds", "5", "--outdir", str(tmp_path / "a"))
    run("generate", str(pkl), "--seeds", "5", "--outdir", str(tmp_path / "b"), "--bf16")
    a = np.asarray(Image.open(tmp_path / "a" / "seed0005.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "b" / "seed0005.png")).astype(int)
    assert 0 < np.abs(a - b).mean() < 8
    assert read_png_metadata(tmp_path / "b" / "seed0005.png")["precision"] == "bf16"

"""examples/: the walk scripts render on the default model, batch_render.py renders what it says,
and train_default_model.sh is valid bash whose every command and flag exists (and, slow, runs)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bender.cli import main as bender_main
from bender.io import load, save_model
from bender.latent.generate import images_for_seeds
from bender.latent.script import load as load_script
from bender.render import video
from bender.render.images import read_png_metadata

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
RECIPE = EXAMPLES / "train_default_model.sh"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def load_batch_render():
    spec = importlib.util.spec_from_file_location("batch_render", EXAMPLES / "batch_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- walk.yaml / bend.yaml ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["walk.yaml", "bend.yaml"])
def test_example_scripts_render_on_the_default_model(tmp_path, name):
    out = tmp_path / f"{name}.mp4"
    result = CliRunner().invoke(bender_main, ["render", "script", str(EXAMPLES / name), "--out", str(out),
                                              "--preview", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    script = load_script(EXAMPLES / name)
    assert script.loop  # a loop: every keyframe starts a segment, the first frame is not repeated
    expected = sum(k.frames or script.frames for k in script.keyframes)
    info = video.probe(out)
    assert info["frames"] == expected and info["size"] == (64, 64)
    assert (tmp_path / f"{name}.mp4.yaml").exists()


# -- batch_render.py ---------------------------------------------------------------------------------


@pytest.fixture
def two_snapshot_run(tmp_path):
    """A run folder in the trainer's layout: the default model at kimg 0 and a nudged copy at kimg 1."""
    run = tmp_path / "runs" / "00000-test-bend"
    (run / "checkpoints").mkdir(parents=True)
    model = load("default")
    save_model(model, run / "checkpoints" / "snapshot-000000.000.safetensors")
    with torch.no_grad():
        for p in model.G_ema.synthesis.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    model.lineage.kimg = 1.0
    save_model(model, run / "checkpoints" / "snapshot-000001.000.safetensors")
    return run


def test_batch_render_writes_seeds_grid_walk_and_timeline(tmp_path, two_snapshot_run, capsys):
    br = load_batch_render()
    out = tmp_path / "renders"
    code = br.main(["default", str(two_snapshot_run), "--seeds", "0-2", "--psi", "0.5", "--walk-frames", "2",
                    "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    default, run = out / "default", out / two_snapshot_run.name

    # the seed PNGs are exactly what the library makes for those seeds, and carry their recipe
    expected = images_for_seeds(load("default").G_ema, [0, 1, 2], truncation_psi=0.5)
    for i, seed in enumerate([0, 1, 2]):
        path = default / "seeds" / f"seed-{seed:04d}.png"
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), expected[i])
        meta = read_png_metadata(path)
        assert meta["seed"] == str(seed) and meta["truncation_psi"] == "0.5"
    grid = np.asarray(Image.open(default / "grid.png"))
    assert grid.shape == (128, 128, 3)  # 3 seeds in a 2 x 2 grid of 64 px
    assert np.array_equal(grid[:64, 64:], expected[1])

    # a looping walk: 3 keyframes x 2 frames, with its script beside it
    assert video.probe(default / "walk.mp4")["frames"] == 6
    assert (default / "walk.mp4.yaml").exists()
    assert not (default / "timeline.mp4").exists()  # only run folders have a timeline

    # the run folder renders its latest snapshot, which differs from the default model
    run_seed0 = np.asarray(Image.open(run / "seeds" / "seed-0000.png").convert("RGB"))
    assert not np.array_equal(run_seed0, expected[0])
    timeline = video.probe(run / "timeline.mp4")
    assert timeline["frames"] == 13  # 12 frames from snapshot 0 to 1, and snapshot 1 itself


def test_batch_render_reports_bad_input(tmp_path, capsys):
    br = load_batch_render()
    assert br.main(["default", "--seeds", "3-1", "--out", str(tmp_path)]) == 1
    assert "runs backwards" in capsys.readouterr().err
    assert br.main(["default", "default", "--out", str(tmp_path)]) == 1
    assert "share the output folder" in capsys.readouterr().err
    assert br.main([str(tmp_path / "missing.pkl"), "--out", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_batch_render_runs_as_a_script(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "batch_render.py"), "default", "--seeds", "4",
                           "--no-walk", "--out", str(tmp_path), "--device", "cpu"],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "default" / "seeds" / "seed-0004.png").exists()
    assert not (tmp_path / "default" / "walk.mp4").exists()


# -- train_default_model.sh --------------------------------------------------------------------------


def recipe_commands() -> list[tuple[list[str], set[str]]]:
    """(bender subcommand words, --flags used) for every `-m bender ...` call in the recipe."""
    text = RECIPE.read_text()
    lines = [ln for ln in re.sub(r"\\\n", " ", text).splitlines() if not ln.lstrip().startswith("#")]
    calls = []
    train = re.search(r"TRAIN=\((.*?)\)", text, re.S)
    assert train, "the recipe keeps the training command in a TRAIN=(...) array"
    calls.append((["train"], set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", train.group(1)))))
    for line in lines:
        m = re.search(r"-m bender ((?:[a-z]+ )+)(.*)", line)
        if m and '"${TRAIN[@]}"' not in line:
            calls.append((m.group(1).split(), set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", m.group(2)))))
    return calls


def test_recipe_is_valid_bash():
    bash = shutil.which("bash")
    assert bash, "bash is needed"
    proc = subprocess.run([bash, "-n", str(RECIPE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_recipe_uses_only_existing_commands_and_flags():
    calls = recipe_commands()
    words = [c[0] for c in calls]
    assert ["train"] in words and ["dataset", "pack"] in words
    for command, flags in calls:
        result = CliRunner().invoke(bender_main, [*command, "--help"])
        assert result.exit_code == 0, f"bender {' '.join(command)}: {result.output}"
        missing = sorted(f for f in flags if f not in result.output)
        assert not missing, f"bender {' '.join(command)} has no {', '.join(missing)}"
    text = RECIPE.read_text()
    for module in ("bender.demo.faces", "bender.demo.model_card"):
        flags = set()
        for line in re.sub(r"\\\n", " ", text).splitlines():
            if f"-m {module} " in line:
                flags |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line))
        assert flags, f"the recipe calls {module}"
        proc = subprocess.run([sys.executable, "-m", module, "--help"], env=subprocess_env(), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        missing = sorted(f for f in flags if f not in proc.stdout)
        assert not missing, f"{module} has no {', '.join(missing)}"


def test_recipe_trains_the_shipped_architecture():
    """The recipe's architecture flags are the shipped model's (so it really reproduces it)."""
    import json

    card = json.loads((REPO / "bender" / "assets" / "default-64.json").read_text())
    arch = card["architecture"]
    train = re.search(r"TRAIN=\((.*?)\)", RECIPE.read_text(), re.S).group(1)
    for flag, value in [("--channel-base", arch["channel_base"]), ("--channel-max", arch["channel_max"]),
                        ("--z-dim", arch["z_dim"]), ("--w-dim", arch["w_dim"]),
                        ("--map-layers", arch["mapping_layers"])]:
        assert re.search(rf"{flag} {value}\b", train), f"{flag} should be {value}"


@pytest.mark.slow
def test_recipe_runs_end_to_end_tiny(tmp_path):
    pytest.importorskip("gan_face_generate")
    env = subprocess_env()
    env.update(PYTHON=sys.executable, FACES="32", KIMG="0.016", BATCH="8", SNAP="0.016", DEVICE="cpu", CARD="0")
    proc = subprocess.run(["bash", str(RECIPE), str(tmp_path / "dm")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert len(list((tmp_path / "dm" / "faces").glob("face-*.png"))) == 32
    runs = list((tmp_path / "dm" / "runs").iterdir())
    assert len(runs) == 1
    snapshot = proc.stdout.split("latest snapshot: ")[1].split()[0]
    model = load(snapshot)
    assert (model.g_config.z_dim, model.g_config.w_dim, model.g_config.img_resolution) == (128, 128, 64)
    assert model.lineage.kimg >= 0.016
    # a second run into the same folder is refused instead of mixing runs
    again = subprocess.run(["bash", str(RECIPE), str(tmp_path / "dm")], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode != 0 and "already holds a run" in again.stderr

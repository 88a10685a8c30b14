"""The trainer end to end on a tiny 32² model and a generated dataset: run layout, exact continue,
kill -9 safety, ADA's controller, transfer controls, fine-tuning an NVIDIA pickle, errors, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from bender.cli import main
from bender.errors import BenderError
from bender.train import checkpoint as ckpt
from bender.train.augment import ada_adjust
from bender.train.config import make_config
from bender.train.data import TrainingData, sample_indices
from bender.train.loop import NonFiniteLoss, Trainer, train
from tests.train_fixtures import TINY_ARCH, make_dataset

TINY_FLAGS = ["--channel-base", "256", "--channel-max", "32", "--map-layers", "2", "--z-dim", "32", "--w-dim", "32",
              "--num-fp16-res", "0", "--conv-clamp", "0", "--batch", "8", "--tick", "60", "--no-timeline"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "blobs.zip", count=24)


def cli(*args: str) -> dict:
    result = CliRunner().invoke(main, ["train", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def straight_run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    info = cli("--data", str(dataset), "--out", str(out), "--preset", "scratch", "--kimg", "0.064", "--snap",
               "0.032", *TINY_FLAGS)
    return Path(info["run"])


def test_run_folder_layout(straight_run):
    from bender.io import load
    from bender.io.runs import list_snapshots

    snaps = list_snapshots(straight_run)
    assert [s.name for s in snaps] == [f"snapshot-{k}.safetensors" for k in ("000000.000", "000000.032", "000000.064")]
    for kimg in (0.0, 0.032, 0.064):
        assert ckpt.state_path(straight_run, kimg).is_file()
        preview = ckpt.preview_path(straight_run, kimg)
        with Image.open(preview) as im:
            assert im.size == (4 * 32, 4 * 32)  # 16 preview seeds, 4 x 4
    records = ckpt.read_stats(straight_run)
    assert [r["kimg"] for r in records] == [0.0, 0.032, 0.064]
    assert {"Loss/G/main", "Loss/D/real", "Loss/D/fake", "Loss/G/pl", "augment_p"} <= set(records[-1])
    assert "Loss/D/r1" in records[1]  # lazy R1 runs on steps 0, 16, ...
    config = json.loads((straight_run / "config.json").read_text())
    assert config["train"]["preset"] == "scratch" and config["train"]["arch"]["channel_max"] == 32
    model = load(straight_run)
    assert model.lineage.kimg == pytest.approx(0.064)
    assert model.G is not None and model.D is not None and model.augment_p is not None
    assert model.lineage.dataset_fingerprint == config["resolved"]["dataset"]["fingerprint"]
    assert not list(straight_run.rglob(".*tmp*"))  # no temporary files left behind


def test_preview_is_the_fixed_seeds_through_g_ema(straight_run):
    """The preview grid is the same latents every time: re-render it from the snapshot."""
    from bender.io import load
    from bender.latent.seeds import zs_from_seeds
    from bender.render.images import make_grid, to_uint8

    model = load(ckpt.snapshot_path(straight_run, 0.032))
    img = model.G_ema(zs_from_seeds(list(range(16)), 32), None, noise_mode="const")
    expected = make_grid(to_uint8(img), cols=4)
    with Image.open(ckpt.preview_path(straight_run, 0.032)) as im:
        assert np.array_equal(np.asarray(im), expected)


def test_continue_reproduces_the_uninterrupted_run(straight_run, dataset, tmp_path):
    first = cli("--data", str(dataset), "--out", str(tmp_path), "--preset", "scratch", "--kimg", "0.032", "--snap",
                "0.032", *TINY_FLAGS)
    second = cli("--continue", first["run"], "--kimg", "0.064")
    assert second["run"] == first["run"] and second["kimg"] == pytest.approx(0.064)
    ours = load_file(second["snapshot"])
    reference = load_file(str(ckpt.snapshot_path(straight_run, 0.064)))
    assert ours.keys() == reference.keys()
    for key in reference:
        assert torch.equal(ours[key], reference[key]), key
    assert [r["kimg"] for r in ckpt.read_stats(Path(first["run"]))] == [0.0, 0.032, 0.064]


def test_continue_refuses_changed_settings(straight_run):
    result = CliRunner().invoke(main, ["train", "--continue", str(straight_run), "--batch", "4", "--lr", "0.01"])
    assert result.exit_code != 0
    assert "--batch" in result.output and "--lr" in result.output and "--resume" in result.output


def test_kill9_then_continue_restores_the_exact_state(dataset, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "bender", "train", "--data", str(dataset), "--out", str(tmp_path), "--preset",
           "scratch", "--kimg", "100", "--snap", "0.008", "--aug-p", "0.3", "--ada-kimg", "2", *TINY_FLAGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        run = None
        while time.time() < deadline and proc.poll() is None:
            runs = list(tmp_path.glob("0*"))
            if runs and len(list(runs[0].glob("checkpoints/snapshot-*.safetensors"))) >= 4:
                run = runs[0]
                break
            time.sleep(0.05)
        assert run is not None, proc.stderr.read().decode() if proc.poll() is not None else "no snapshots in time"
        time.sleep(np.random.uniform(0, 0.3))  # somewhere in the middle of whatever it is doing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    kimg, snap, state_file = ckpt.latest_resumable(run)
    state = ckpt.load_state(state_file)
    cfg = make_config("scratch", data=str(dataset), out=str(tmp_path), kimg=kimg + 0.016, snap=0.008, batch=8,
                      aug_p=0.3, ada_kimg=2, tick=60, timeline=False, **TINY_ARCH)
    trainer = Trainer(cfg, continue_run=run, quiet=True)
    assert trainer.cur_nimg == state["cur_nimg"] == round(kimg * 1000)
    assert float(trainer.augment.p) == state["augment_p"]
    assert float(trainer.loss.pl_mean) == state["pl_mean"]
    for net in ("G", "D"):
        restored = trainer.opt[net].state_dict()
        for idx, saved in state[f"{net}_opt"]["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(restored["state"][idx][key].cpu(), saved[key]), (net, idx, key)
    assert not list(run.rglob(".*tmp*"))  # the killed process's partial files were cleared
    result = trainer.run()
    assert result.reason == "done" and result.kimg == pytest.approx(kimg + 0.016)
    kimgs = [r["kimg"] for r in ckpt.read_stats(run)]
    assert kimgs == sorted(set(kimgs)) and kimgs[-1] == pytest.approx(kimg + 0.016)


def test_ada_controller_arithmetic():
    p = torch.tensor(0.5)
    up = ada_adjust(p, torch.tensor(28.0), torch.tensor(32.0), target=0.6, ada_kimg=100)  # r_t = 0.875
    down = ada_adjust(p, torch.tensor(-8.0), torch.tensor(32.0), target=0.6, ada_kimg=100)  # r_t = -0.25
    assert up.item() == pytest.approx(0.5 + 32 / 100_000)
    assert down.item() == pytest.approx(0.5 - 32 / 100_000)
    assert ada_adjust(torch.tensor(1.0), torch.tensor(32.0), torch.tensor(32.0), 0.6, 0.001).item() == 1.0


def test_ada_p_follows_the_overfitting_heuristic(dataset, tmp_path):
    """Each snapshot spans exactly one ADA interval (4 steps of 8): p must move by 32 / (ada_kimg * 1000)
    in the direction of sign(r_t - target), with r_t measured from D's real logits."""
    cfg = make_config("scratch", data=str(dataset), out=str(tmp_path), kimg=0.064, snap=0.032, batch=8,
                      aug_p=0.5, ada_kimg=1.0, ada_target=0.0, tick=60, timeline=False, **TINY_ARCH)
    train(cfg, quiet=True)
    records = ckpt.read_stats(next(tmp_path.glob("0*")))[1:]
    p_before = 0.5
    moved = 0
    for r in records:
        expected = p_before + np.sign(r["ada_rt"] - 0.0) * 0.032
        assert r["augment_p"] == pytest.approx(min(max(expected, 0), 1), abs=1e-6)
        moved += r["augment_p"] != p_before
        p_before = r["augment_p"]
    assert moved >= 1


def test_finetune_from_nvidia_pickle_starts_from_exactly_its_weights_and_freezes(fixtures_dir, dataset, tmp_path):
    from bender.io import load

    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    original = load(pkl)
    cfg = make_config("bend", data=str(dataset), out=str(tmp_path), resume=str(pkl), kimg=0.016, snap=0.016,
                      batch=4, freeze_d=3, freeze_mapping=True, freeze_g_below=16, tick=60, timeline=False)
    trainer = Trainer(cfg, quiet=True)
    for name in ("G", "G_ema", "D"):
        ours = getattr(trainer.model, name).state_dict()
        for key, value in getattr(original, name).state_dict().items():
            assert torch.equal(ours[key], value), (name, key)
    assert float(trainer.augment.p) == pytest.approx(0.37)  # the pickle's own ADA p
    result = trainer.run()

    start = load_file(str(ckpt.snapshot_path(result.run_dir, 0.0)))
    for key, value in original.D.state_dict().items():
        assert torch.equal(start[f"D.{key}"], value)
    final = load(result.snapshot)
    d0, d1 = original.D.state_dict(), final.D.state_dict()
    # Freeze-D 3: the 32² block's fromrgb, conv0, conv1 (layers 0-2); its skip (layer 3) trains.
    for key in d0:
        frozen = key.startswith(("b32.fromrgb.", "b32.conv0.", "b32.conv1.")) and not key.endswith("resample_filter")
        if frozen:
            assert torch.equal(d0[key], d1[key]), key
    assert not torch.equal(d0["b32.skip.weight"], d1["b32.skip.weight"])
    assert not torch.equal(d0["b16.conv0.weight"], d1["b16.conv0.weight"])
    g0, g1 = original.G.state_dict(), final.G.state_dict()
    for key in g0:
        if key.startswith(("mapping.fc", "synthesis.b4.", "synthesis.b8.")):
            assert torch.equal(g0[key], g1[key]), key
    assert not torch.equal(g0["synthesis.b32.conv1.weight"], g1["synthesis.b32.conv1.weight"])
    assert final.lineage.fine_tuned_from == original.lineage.source_sha256
    assert final.nvidia is not None  # still exportable as an NVIDIA pickle


def test_conditional_fixture_is_loaded_exactly(fixtures_dir, tmp_path):
    from bender.io import load

    pkl = fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl"
    data = make_dataset(tmp_path / "cond.zip", count=10, resolution=64, classes=5)
    cfg = make_config("bend", data=str(data), out=str(tmp_path), resume=str(pkl), batch=4, timeline=False)
    trainer = Trainer(cfg, quiet=True)
    original = load(pkl)
    for name in ("G", "G_ema", "D"):
        ours = getattr(trainer.model, name).state_dict()
        assert all(torch.equal(ours[k], v) for k, v in getattr(original, name).state_dict().items())
    assert trainer.use_labels and trainer.data.labels.shape == (10, 5)


def test_mismatches_are_explained(fixtures_dir, dataset, tmp_path):
    nets = fixtures_dir / "networks"
    with pytest.raises(BenderError, match=r"dataset is 32², model is 64²: repack with .*--resolution 64"):
        Trainer(make_config("bend", data=str(dataset), out=str(tmp_path), resume=str(nets / "sg2ada-res32-fp32.pkl")
                            .replace("res32-fp32", "res64-fp16-cond"), batch=4), quiet=True)
    grey = make_dataset(tmp_path / "grey.zip", count=4, channels=1)
    with pytest.raises(BenderError, match="--channels 3"):
        Trainer(make_config("bend", data=str(grey), out=str(tmp_path), resume=str(nets / "sg2ada-res32-fp32.pkl"),
                            batch=4), quiet=True)
    with pytest.raises(BenderError, match="minibatch-std group"):
        Trainer(make_config("scratch", data=str(dataset), out=str(tmp_path), batch=6, **TINY_ARCH), quiet=True)
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--preset", "bend"])
    assert result.exit_code != 0 and "--resume" in result.output


def test_nan_stops_the_run_naming_the_last_good_snapshot(dataset, tmp_path, monkeypatch):
    from bender.train.loss import StyleGAN2Loss

    calls = {"n": 0}
    original = StyleGAN2Loss.g_main

    def poisoned(self, z, c, gen, weight):
        calls["n"] += 1
        out = original(self, z, c, gen, weight)
        if calls["n"] >= 3:  # step 2: between the snapshots at kimg 0 and 0.032
            out["Loss/G/main"] = out["Loss/G/main"] * float("nan")
        return out

    monkeypatch.setattr(StyleGAN2Loss, "g_main", poisoned)
    cfg = make_config("scratch", data=str(dataset), out=str(tmp_path), kimg=0.064, snap=0.032, batch=8, tick=60,
                      timeline=False, **TINY_ARCH)
    with pytest.raises(NonFiniteLoss, match=r"Loss/G/main became NaN.*snapshot-000000\.000\.safetensors"):
        train(cfg, quiet=True)
    run = next(tmp_path.glob("0*"))
    assert [p.name for p in run.glob("checkpoints/snapshot-*")] == ["snapshot-000000.000.safetensors"]


def test_stop_condition_hook_and_stop_file(dataset, tmp_path):
    from bender.nets import Generator

    seen = []

    def bent_enough(event):
        seen.append(event)
        return "bent enough" if event.kimg >= 0.016 else None

    cfg = make_config("scratch", data=str(dataset), out=str(tmp_path / "a"), kimg=1.0, snap=0.008, batch=8,
                      tick=60, timeline=False, **TINY_ARCH)
    result = train(cfg, stop_conditions=[bent_enough], quiet=True)
    assert result.reason == "bent enough" and result.kimg == pytest.approx(0.016)
    assert result.snapshot.is_file() and seen[-1].snapshot == result.snapshot
    assert isinstance(seen[-1].G_ema, Generator) and "Loss/G/main" in seen[-1].stats
    assert seen[-1].dataset == dataset

    cfg.out = str(tmp_path / "b")
    trainer = Trainer(cfg, quiet=True)
    step = trainer.train_step

    def step_then_stop(acc):
        step(acc)
        if trainer.step == 3:
            (trainer.run_dir / "STOP").touch()

    trainer.train_step = step_then_stop
    result = trainer.run()
    assert result.reason == "stopped on request" and result.kimg == pytest.approx(0.024)
    assert result.snapshot == ckpt.snapshot_path(trainer.run_dir, 0.024) and result.snapshot.is_file()
    assert not (trainer.run_dir / "STOP").exists()  # consumed, so a --continue runs on


def test_stop_when_runs_the_bend_metric_and_the_timeline_is_rendered(dataset, tmp_path):
    """The real hook: bender.metrics.stop decides at each snapshot; the run ends cleanly with its
    reason, a final snapshot, and RUN/timeline.mp4 from bender.render.timeline."""
    flags = [f for f in TINY_FLAGS if f != "--no-timeline"]
    info = cli("--data", str(dataset), "--out", str(tmp_path), "--preset", "scratch", "--kimg", "1", "--snap",
               "0.016", "--stop-when", "bend>0,samples=16,max_real=24,features=d:original", *flags)
    assert info["kimg"] == pytest.approx(0.016) and info["reason"].startswith("bend")
    run = Path(info["run"])
    assert Path(info["snapshot"]).is_file() and (run / "timeline.mp4").stat().st_size > 0
    assert (run / "metrics" / "bend.jsonl").is_file()
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(tmp_path), "--preset", "scratch",
                                       "--stop-when", "soon", *TINY_FLAGS])
    assert result.exit_code != 0 and "--stop-when" in result.output and not list(tmp_path.glob("00001-*"))


def test_streaming_and_in_memory_data_agree(dataset):
    mem = TrainingData(dataset, torch.device("cpu"), seed=3, mirror=True, cache="memory")
    stream = TrainingData(dataset, torch.device("cpu"), seed=3, mirror=True, cache="stream", workers=1)
    for data in (mem, stream):
        data.set_share(batch=16, start=8, count=8)
    for step in range(5):  # 5 x 16 > 2 x 24: crosses an epoch of the mirrored dataset
        a, la = mem.batch(step)
        b, lb = stream.batch(step)
        assert torch.equal(a, b) and torch.equal(la, lb)
    # an epoch is a permutation of the (mirrored) dataset, and shares of a batch never overlap
    assert sorted(sample_indices(0, 48, 48, seed=3).tolist()) == list(range(48))
    assert np.array_equal(sample_indices(40, 16, 48, seed=3),
                          np.concatenate([sample_indices(40, 8, 48, seed=3), sample_indices(48, 8, 48, seed=3)]))


def test_channels_last_does_not_change_the_gradients(dataset, tmp_path):
    """The memory format is a speed switch: every phase's gradients stay the same (to float rounding)."""
    grads = []
    for channels_last in (False, True):
        cfg = make_config("scratch", data=str(dataset), out=str(tmp_path / str(channels_last)), batch=8, aug_p=0.5,
                          channels_last=channels_last, timeline=False, **TINY_ARCH)
        trainer = Trainer(cfg, quiet=True)
        real, c = trainer.data.batch(0)
        z = torch.randn([8, 32], generator=torch.Generator().manual_seed(0))
        found = {}
        for phase, net in (("g_main", "G"), ("g_pl", "G"), ("d_main", "D"), ("d_r1", "D")):
            trainer._train_only(net)
            getattr(trainer, net).zero_grad(set_to_none=True)
            gen = torch.Generator().manual_seed(1)
            args = (z, c, gen, 1.0) if net == "G" else ((real, c, z, c, gen, 1.0) if phase == "d_main" else
                                                        (real, c, gen, 1.0))
            getattr(trainer.loss, phase)(*args)
            found.update({f"{phase}.{n}": p.grad.detach().contiguous().clone()
                          for n, p in getattr(trainer, net).named_parameters() if p.grad is not None})
        grads.append(found)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 100
    for key, ref in grads[0].items():
        torch.testing.assert_close(grads[1][key], ref, rtol=1e-4, atol=1e-5 * max(1.0, ref.abs().max().item()),
                                   msg=key)


def test_continue_refuses_a_changed_dataset(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=8)
    info = cli("--data", str(data), "--out", str(tmp_path), "--preset", "scratch", "--kimg", "0.008", "--snap",
               "0.008", *TINY_FLAGS)
    make_dataset(data, count=8, seed=1)  # same name, other pictures
    result = CliRunner().invoke(main, ["train", "--continue", info["run"], "--kimg", "0.016"])
    assert result.exit_code != 0 and "has changed since" in result.output and "--resume" in result.output

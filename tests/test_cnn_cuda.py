"""GPU paths of the CNN tools agree with the CPU (run on a CUDA machine; skipped elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cnn_helpers import fake_run, has_mobilenet, scene, stripes, tamed

from bender.metrics.bend import BendMeter, BendSettings
from bender.metrics.embed import embed_arrays
from bender.metrics.features import load_feature_extractor

pytestmark = pytest.mark.cuda


def test_feature_extractors_match_cpu_on_cuda(fixtures_dir):
    rng = np.random.RandomState(0)
    images = np.stack([np.asarray(scene(rng, 128)) for _ in range(8)])
    specs = [f"d:{fixtures_dir / 'networks' / 'sg2ada-res32-fp32.pkl'}"] + (["mobilenet_v2"] if has_mobilenet() else [])
    for spec in specs:
        cpu = embed_arrays(load_feature_extractor(spec, "cpu"), [images], "cpu")
        gpu = embed_arrays(load_feature_extractor(spec, "cuda"), [images], "cuda")
        np.testing.assert_allclose(gpu, cpu, rtol=2e-3, atol=2e-3 * float(np.abs(cpu).max()))


def test_bend_metric_on_cuda_matches_cpu(fixtures_dir, tmp_path):
    from bender.io import load

    original = tamed(load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"))
    run_dir, _ = fake_run(tmp_path, original, [0.0, 0.5, 1.0], [0.0, 2.0, 4.0])
    cpu = BendMeter(run_dir, BendSettings(features="d:original", samples=32, device="cpu")).measure_run()
    import shutil

    shutil.rmtree(run_dir / "metrics")
    gpu = BendMeter(run_dir, BendSettings(features="d:original", samples=32, device="cuda")).measure_run()
    for a, b in zip(cpu, gpu):
        assert b.to_target == pytest.approx(a.to_target, rel=0.02, abs=1e-3)
        assert b.from_original == pytest.approx(a.from_original, rel=0.02, abs=1e-3)
    assert gpu[0].to_target > gpu[1].to_target > gpu[2].to_target


def test_allconv_trains_on_cuda():
    from bender.curate.train_classifier import TrainOptions, train_classifier_arrays

    images, labels = stripes(200, 32, seed=0)
    clf = train_classifier_arrays(images, labels, ["h", "v"],
                                  TrainOptions(backbone="allconv", size=32, width=16, epochs=10, device="cuda"))
    assert clf.info.report["val_accuracy"] >= 0.95
    assert next(clf.parameters()).device.type == "cpu"  # returned ready to save
    torch.cuda.synchronize()

"""`read_dataset`: the reader the trainer and CNN tools use, checked against the zip's own PNGs."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from dataset_helpers import zip_pixels

from bender.dataset import PackOptions, pack_dataset, read_dataset
from bender.errors import BenderError


def test_reads_pixels_and_labels(fixtures_dir, tmp_path):
    report = pack_dataset([fixtures_dir / "images-classes"], tmp_path / "c.zip",
                          PackOptions(resolution=32, labels="folders", jobs=1), progress=False)
    ds = read_dataset(report.out)
    assert len(ds) == 6 and ds.class_names == ["leaves", "rocks"]
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    for i, (pixels, label) in enumerate(ds):
        assert pixels.dtype == np.uint8 and pixels.shape == (32, 32, 3)
        assert np.array_equal(pixels, zip_pixels(report.out, ds.names[i]))
        assert label == report.kept[i].label
    assert ds.image(0, chw=True).shape == (3, 32, 32)
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers get a copy that reopens the zip
    assert np.array_equal(clone[5][0], ds[5][0])
    ds.close()


def test_grey_unlabelled_and_incomplete(fixtures_dir, tmp_path):
    report = pack_dataset([fixtures_dir / "images-classes"], tmp_path / "g.zip",
                          PackOptions(resolution=16, channels=1, jobs=1), progress=False)
    with read_dataset(report.out) as ds:
        pixels, label = ds[0]
        assert pixels.shape == (16, 16, 1) and label is None and ds.labels is None
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(report.out) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "dataset.json":
                data = b'{"labels": [["00000/img00000000.png", 0]]}'
            dst.writestr(name, data)
    with pytest.raises(BenderError, match="no label for 5 images"):
        read_dataset(broken)

"""Datasets in NVIDIA's StyleGAN2-ADA zip format: pack, check, inspect, preview, dedup, read.

Pillow/numpy only: importing this package never imports torch. Python API used by other parts of
bender (`bender dataset build`, `bender demo`, the trainer):

    from bender.dataset import PackOptions, pack_dataset, check_dataset, read_dataset
    report = pack_dataset(["photos/"], Path("rocks.zip"), PackOptions(resolution=256))
    assert check_dataset("rocks.zip").ok
    for pixels, label in read_dataset("rocks.zip"): ...   # uint8 HxWxC, int or None
"""

from bender.dataset.check import CheckReport, check_dataset
from bender.dataset.dedup import Duplicate
from bender.dataset.find_dups import DedupReport, find_duplicates
from bender.dataset.info import DatasetInfo, dataset_info
from bender.dataset.pack import PackOptions, pack_dataset
from bender.dataset.preview import contact_sheet
from bender.dataset.reader import ZipDataset, read_dataset
from bender.dataset.rejects import Reject
from bender.dataset.report import KeptEntry, PackReport

__all__ = [
    "CheckReport", "DatasetInfo", "DedupReport", "Duplicate", "KeptEntry", "PackOptions", "PackReport",
    "Reject", "ZipDataset", "check_dataset", "contact_sheet", "dataset_info", "find_duplicates",
    "pack_dataset", "read_dataset",
]

"""Reading a dataset zip the way NVIDIA's `ImageFolderDataset` does: uint8 pixels plus labels.

The trainer and the CNN tools read datasets through this class. It follows NVIDIA's rules: image
members are those whose extension Pillow registers (sorted by name), labels come from
`dataset.json` (`{"labels": null}` or a list of [name, label]), grey images have one channel.
The zip handle is reopened after a fork, so it is safe in DataLoader worker processes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from bender.errors import BenderError


def nvidia_image_names(names: list[str]) -> list[str]:
    """The members NVIDIA's loader treats as images: any extension Pillow registers, sorted."""
    Image.init()
    extensions = set(Image.registered_extensions())
    return sorted(n for n in names if os.path.splitext(n)[1].lower() in extensions)


class ZipDataset:
    """Random access to the images of a dataset zip: `ds[i] -> (HxWxC uint8 array, label or None)`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        try:
            self._file()
        except (OSError, zipfile.BadZipFile) as e:
            raise BenderError(f"cannot open dataset {self.path}: {e}") from None
        names = [i.filename for i in self._file().infolist() if not i.is_dir()]
        self.names = nvidia_image_names(names)
        meta = json.loads(self._file().read("dataset.json")) if "dataset.json" in names else {}
        self.class_names: list[str] | None = meta.get("class_names")
        raw = meta.get("labels")
        self.labels: np.ndarray | None = None
        if raw is not None:
            by_name = {str(k).replace("\\", "/"): v for k, v in raw}
            missing = [n for n in self.names if n not in by_name]
            if missing:  # NVIDIA's loader fails here too (KeyError); say it in words
                raise BenderError(f"{self.path}: dataset.json has no label for {len(missing)} images "
                                  f"(e.g. {missing[0]}); run `bender dataset check {self.path}`")
            values = [by_name[n] for n in self.names]
            arr = np.array(values)
            self.labels = arr.astype(np.int64) if arr.ndim == 1 else arr.astype(np.float32)

    def _file(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int | np.ndarray | None]:
        return self.image(index), self.label(index)

    def image(self, index: int, chw: bool = False) -> np.ndarray:
        with Image.open(io.BytesIO(self._file().read(self.names[index]))) as img:
            pixels = np.asarray(img)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return pixels.transpose(2, 0, 1) if chw else pixels

    def label(self, index: int):
        if self.labels is None:
            return None
        value = self.labels[index]
        return int(value) if self.labels.ndim == 1 else value

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | np.ndarray | None]]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> ZipDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: the handle is reopened there
        state = dict(self.__dict__)
        state["_zip"], state["_pid"] = None, -1
        return state


def read_dataset(path: str | Path) -> ZipDataset:
    """Open a dataset zip; iterate it for (uint8 HxWxC array, label) pairs."""
    return ZipDataset(path)

"""`find_duplicates`: the `dedup` command's report, without packing anything.

Runs the same discovery, decoding and fingerprinting as a pack (in parallel, in pack order), so the
pairs it lists are exactly the ones `pack --dedup` with the same settings would drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bender.dataset.decode import DEFAULT_MAX_PIXELS, DecodeOptions
from bender.dataset.dedup import DEFAULT_THRESHOLD, DedupIndex, Duplicate
from bender.dataset.parallel import available_cores, ordered_map
from bender.dataset.rejects import Reject
from bender.dataset.sources import discover
from bender.dataset.worker import WorkerConfig


@dataclass
class DedupReport:
    inputs: int = 0
    unique: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"inputs": self.inputs, "unique": self.unique,
                "duplicates": [d.to_json() for d in self.duplicates],
                "rejects": [r.to_json() for r in self.rejects]}


def find_duplicates(sources: list[str | Path], mode: str = "near", threshold: int = DEFAULT_THRESHOLD,
                    mirror: bool = False, exif_orientation: bool = True, jobs: int | None = None,
                    max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> DedupReport:
    found = discover(sources)
    config = WorkerConfig(decode=DecodeOptions(exif_orientation=exif_orientation, max_pixels=max_pixels),
                          transform=None, dedup_mode=mode, mirror=mirror)
    index = DedupIndex(mode, threshold)
    report = DedupReport(inputs=len(found.items) + len(found.rejects), rejects=list(found.rejects))
    from tqdm import tqdm

    with tqdm(total=len(found.items), disable=not progress, unit="img", desc="hashing", leave=False) as bar:
        for result in ordered_map(found.items, config, jobs or available_cores()):
            bar.update(1)
            if result.reject is not None:
                report.rejects.append(result.reject)
                continue
            match = index.match(result.fingerprint)
            if match is None:
                index.add(result.fingerprint, result.item.source)
                report.unique += 1
            else:
                report.duplicates.append(Duplicate(result.item.source, match[0], match[1], match[2]))
    return report

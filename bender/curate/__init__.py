"""Curation and labelling of image sets with CNN embeddings (`bender dataset curate`, `bender classify`).

    from bender.curate import CurateOptions, curate
    image_set, report = curate("sets/rocks", CurateOptions(outliers="5%", clusters=6))
    report.counts()   # {'keep': 480, 'duplicate': 12, 'outlier': 25}

Sources are only ever read: decisions land in a report folder, optionally as superseding records
in the SET's manifest.jsonl, or in an exported copy.
"""

from bender.curate.curate import CurateOptions, CurationReport, Decision, apply_to_manifest, curate, export_kept
from bender.curate.sources import ImageItem, ImageSet, UnreadableImage, load_rgb, open_image_set

__all__ = ["CurateOptions", "CurationReport", "Decision", "ImageItem", "ImageSet", "UnreadableImage",
           "apply_to_manifest", "curate", "export_kept", "load_rgb", "open_image_set"]

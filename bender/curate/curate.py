"""Curation of a scraped image set in a CNN's embedding space.

Four independent looks at the set, each optional:
- near-duplicates: cosine similarity of embeddings >= a threshold (catches re-encodes, resizes and
  re-crops that byte and perceptual hashes miss); the largest image of a group is kept;
- outliers: images far from their nearest neighbours (mean cosine distance to the k nearest), i.e.
  things that look like nothing else in the set;
- "more like these": similarity to a handful of example images, by prototype (cosine to the mean
  example) or a logistic head trained on examples vs. the set;
- clusters: k-means, with a contact sheet per cluster, to see what the set is made of.

Decisions go into a report (`curation.jsonl`, `summary.json`, contact sheets) and, on request,
into the SET's manifest as superseding records or into an exported copy. Sources are never deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bender.curate.sources import ImageItem, ImageSet, UnreadableImage, load_rgb, open_image_set
from bender.errors import BenderError
from bender.fileio import atomic_write_text


@dataclass
class CurateOptions:
    features: str = "auto"  # see bender.metrics.features
    near_dup: float | None = 0.95  # cosine similarity at or above which two images are near-duplicates
    outliers: str | None = None  # '5%' (a fraction of the set) or '10' (a count); None: off
    outlier_k: int = 5  # neighbours averaged for the outlier score
    like: list[Path] = field(default_factory=list)  # example images or folders of them
    like_mode: str = "prototype"  # 'prototype' | 'logistic'
    like_top: str | None = None  # keep the top '50%' or '200' by likeness; None: score only
    clusters: int = 0  # k for k-means; 0: off
    seed: int = 0
    device: str = "auto"
    batch: int = 32
    out: Path | None = None  # report folder; default SET/curation (a zip: <zip>.curation/)


@dataclass
class Decision:
    key: str
    path: str
    decision: str = "keep"  # keep | duplicate | outlier | unlike | unreadable
    reason: str | None = None
    duplicate_of: str | None = None
    similarity: float | None = None  # to the image it duplicates
    outlier_score: float | None = None  # mean cosine distance to the nearest neighbours
    centre_distance: float | None = None  # cosine distance to the set's mean embedding
    like_score: float | None = None
    cluster: int | None = None


@dataclass
class CurationReport:
    out_dir: Path
    decisions: list[Decision]
    features: str
    sheets: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.decision] = out.get(d.decision, 0) + 1
        return out

    def by_decision(self, name: str) -> list[Decision]:
        return [d for d in self.decisions if d.decision == name]


def parse_amount(text: str | None, total: int, what: str) -> int:
    """'5%' -> ceil(5% of total), '12' -> 12; None/'0' -> 0."""
    if text is None:
        return 0
    t = str(text).strip()
    try:
        if t.endswith("%"):
            return int(np.ceil(float(t[:-1]) / 100 * total))
        n = int(t)
    except ValueError:
        raise BenderError(f"--{what} {text}: expected a percentage like 5% or a count like 10") from None
    if n < 0:
        raise BenderError(f"--{what} {text}: must not be negative")
    return n


def normalise(f: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))
    return torch.nn.functional.normalize(x, dim=1)


def similar_pairs(x: torch.Tensor, threshold: float, block: int = 1024) -> list[list[tuple[int, float]]]:
    """For each row i, the rows j != i with cosine similarity >= threshold (blockwise: memory stays small)."""
    out: list[list[tuple[int, float]]] = [[] for _ in range(len(x))]
    for start in range(0, len(x), block):
        sims = x[start:start + block] @ x.T
        rows, cols = torch.nonzero(sims >= threshold, as_tuple=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if start + r != c:
                out[start + r].append((c, float(sims[r, c])))
    return out


def keep_priority(image_set: ImageSet, item: ImageItem) -> tuple[int, int]:
    """(pixels, file bytes): of near-duplicates the biggest image is kept, and of equal sizes the
    biggest file (the least compressed). Read from the manifest or the file header, without decoding."""
    if image_set.kind == "zip":
        return 0, 0
    path = image_set.root / item.path
    size = path.stat().st_size
    rec = item.record or {}
    if isinstance(rec.get("width"), int) and isinstance(rec.get("height"), int):
        return rec["width"] * rec["height"], size
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size[0] * im.size[1], size
    except Exception:  # noqa: BLE001 - unreadable files are reported elsewhere
        return 0, size


def find_near_duplicates(x: torch.Tensor, order: list[int], threshold: float) -> dict[int, tuple[int, float]]:
    """Greedy in priority order: an image similar to an already-kept one is its duplicate -> {dup: (kept, sim)}."""
    neighbours = similar_pairs(x, threshold)
    rank = {i: r for r, i in enumerate(order)}
    kept: set[int] = set()
    dups: dict[int, tuple[int, float]] = {}
    for i in order:
        earlier = [(j, s) for j, s in neighbours[i] if j in kept and rank[j] < rank[i]]
        if earlier:
            dups[i] = max(earlier, key=lambda t: t[1])
        else:
            kept.add(i)
    return dups


def outlier_scores(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean cosine distance of each row to its k nearest other rows."""
    if len(x) < 2:
        return torch.zeros(len(x))
    k = max(1, min(k, len(x) - 1))
    scores = []
    for start in range(0, len(x), 1024):
        sims = x[start:start + 1024] @ x.T
        idx = torch.arange(start, min(start + 1024, len(x)))
        sims[torch.arange(len(idx)), idx] = -2  # not its own neighbour
        scores.append(1 - sims.topk(k, dim=1).values.mean(1))
    return torch.cat(scores)


def like_scores(x: torch.Tensor, examples: torch.Tensor, mode: str, seed: int = 0) -> torch.Tensor:
    """How much each row looks like the examples: cosine to their mean, or a logistic head's probability."""
    if mode == "prototype":
        proto = torch.nn.functional.normalize(examples.mean(0), dim=0)
        return x @ proto
    # Examples are positives; the set (mostly unlabelled, some of it positive) is the negative class.
    # Weighted so both sides count equally; the ranking it gives is what matters, not calibration.
    torch.manual_seed(seed)
    data = torch.cat([examples, x])
    target = torch.cat([torch.ones(len(examples)), torch.zeros(len(x))])
    weight = torch.cat([torch.full((len(examples),), 0.5 / len(examples)), torch.full((len(x),), 0.5 / len(x))])
    head = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = head(data).squeeze(1)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum()
        loss = loss + 1e-3 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return torch.sigmoid(head(x).squeeze(1))


def example_paths(paths: list[Path]) -> list[Path]:
    from bender.curate.sources import IMAGE_EXTS

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTS and q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise BenderError(f"--like {p}: no such file or folder")
    if not out:
        raise BenderError("--like: no example images found")
    return out


def validate(options: CurateOptions) -> None:
    """Check the options before any slow work, so a typo fails in a second."""
    if options.near_dup is not None and not 0 < options.near_dup <= 1:
        raise BenderError(f"--near-dup {options.near_dup}: a cosine similarity in (0, 1], e.g. 0.95")
    parse_amount(options.outliers, 100, "outliers")
    parse_amount(options.like_top, 100, "like-top")
    if options.like_mode not in ("prototype", "logistic"):
        raise BenderError(f"--like-mode {options.like_mode}: expected prototype or logistic")
    if options.clusters < 0:
        raise BenderError(f"--clusters {options.clusters}: must be 0 (off) or more")
    if options.like_top and not options.like:
        raise BenderError("--like-top needs example images: --like EXAMPLES")


def default_out_dir(image_set: ImageSet) -> Path:
    if image_set.kind == "zip":
        return image_set.root.with_name(image_set.root.stem + ".curation")
    return image_set.root / "curation"


def curate(set_path: str | Path, options: CurateOptions, progress: bool = False) -> tuple[ImageSet, CurationReport]:
    """Embed the set, decide per image, write the report and contact sheets. Changes no source file."""
    from bender.curate.embeddings import embed_set
    from bender.device import pick_device
    from bender.metrics.features import load_feature_extractor

    validate(options)
    image_set = open_image_set(set_path)
    items = image_set.items
    out_dir = Path(options.out) if options.out else default_out_dir(image_set)
    device = pick_device(options.device)
    extractor = load_feature_extractor(options.features, device)
    feats, errors = embed_set(image_set, items, extractor, out_dir, device, options.batch, progress)
    decisions = [Decision(i.key, i.path) for i in items]
    for n, item in enumerate(items):
        if item.key in errors:
            decisions[n].decision, decisions[n].reason = "unreadable", errors[item.key]
    ok = [n for n in range(len(items)) if decisions[n].decision != "unreadable"]
    x_all = normalise(np.nan_to_num(feats))

    # near-duplicates: the biggest image of each group is kept
    if options.near_dup is not None and len(ok) > 1:
        priority = {n: keep_priority(image_set, items[n]) for n in ok}
        order = sorted(range(len(ok)), key=lambda r: (-priority[ok[r]][0], -priority[ok[r]][1], ok[r]))
        for r, (kept_r, sim) in find_near_duplicates(x_all[ok], order, options.near_dup).items():
            d = decisions[ok[r]]
            d.decision, d.duplicate_of, d.similarity = "duplicate", items[ok[kept_r]].key, round(sim, 4)
            d.reason = f"near-duplicate of {items[ok[kept_r]].path} (cosine {sim:.3f})"
    live = [n for n in ok if decisions[n].decision == "keep"]

    # outliers among the distinct images
    if live:
        x = x_all[live]
        centre = torch.nn.functional.normalize(x.mean(0), dim=0)
        scores = outlier_scores(x, options.outlier_k)
        for r, n in enumerate(live):
            decisions[n].outlier_score = round(float(scores[r]), 4)
            decisions[n].centre_distance = round(float(1 - x[r] @ centre), 4)
        count = min(parse_amount(options.outliers, len(live), "outliers"), len(live))
        for r in torch.argsort(scores, descending=True)[:count].tolist():
            d = decisions[live[r]]
            d.decision, d.reason = "outlier", f"far from its {options.outlier_k} nearest neighbours " \
                                              f"(mean cosine distance {float(scores[r]):.3f})"

    # more like these
    if options.like:
        examples = [load_example(p, extractor.input_size) for p in example_paths(options.like)]
        with torch.no_grad():
            from bender.metrics.embed import uint8_to_tensor

            ex = extractor(uint8_to_tensor(np.stack(examples), device)).float().cpu().numpy()
        candidates = [n for n in ok if decisions[n].decision != "duplicate"]
        scores = like_scores(x_all[candidates], normalise(ex), options.like_mode, options.seed)
        for r, n in enumerate(candidates):
            decisions[n].like_score = round(float(scores[r]), 4)
        keep_n = parse_amount(options.like_top, len(candidates), "like-top") if options.like_top else len(candidates)
        for r in torch.argsort(scores, descending=True)[keep_n:].tolist():
            d = decisions[candidates[r]]
            if d.decision == "keep":
                d.decision, d.reason = "unlike", f"not among the top {options.like_top} most like the examples " \
                                                 f"(score {float(scores[r]):.3f})"

    # clusters of everything distinct
    sheets: list[Path] = []
    distinct = [n for n in ok if decisions[n].decision != "duplicate"]
    centres = None
    if options.clusters and distinct:
        from bender.curate.kmeans import kmeans

        labels, centres = kmeans(x_all[distinct], options.clusters, seed=options.seed)
        for r, n in enumerate(distinct):
            decisions[n].cluster = int(labels[r])

    report = CurationReport(out_dir, decisions, extractor.name, sheets)
    write_report(report, image_set, options, x_all, distinct, centres)
    return image_set, report


def load_example(path: Path, size: int) -> np.ndarray:
    try:
        return load_rgb(path, size, name=str(path))
    except UnreadableImage as e:
        raise BenderError(f"--like: cannot read example {e}") from None


def write_report(report: CurationReport, image_set: ImageSet, options: CurateOptions, x_all: torch.Tensor,
                 distinct: list[int], centres: torch.Tensor | None) -> None:
    from bender.curate.sheets import contact_sheet

    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    items = {i.key: i for i in image_set.items}
    index = {d.key: n for n, d in enumerate(report.decisions)}
    atomic_write_text(out / "curation.jsonl", "".join(json.dumps(asdict(d)) + "\n" for d in report.decisions))
    summary = {"set": str(image_set.root), "kind": image_set.kind, "features": report.features,
               "images": len(report.decisions), "counts": report.counts(),
               "options": {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if isinstance(v, list) else v)
                           for k, v in asdict(options).items()}}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")

    def sheet(decs: list[Decision], name: str, captions: list[str], title: str) -> None:
        report.sheets.append(contact_sheet(image_set, [items[d.key] for d in decs], out / name, captions, title=title))

    dups = report.by_decision("duplicate")[:32]
    if dups:
        pair_items = [x for d in dups for x in (items[d.duplicate_of], items[d.key])]
        captions = [c for d in dups for c in ("kept", f"dup {d.similarity:.3f}")]
        report.sheets.append(contact_sheet(image_set, pair_items, out / "duplicates.png", captions, cols=8,
                                           title="near-duplicates: kept | duplicate"))
    outliers = sorted(report.by_decision("outlier"), key=lambda d: -(d.outlier_score or 0))[:64]
    if outliers:
        sheet(outliers, "outliers.png", [f"{d.outlier_score:.3f}" for d in outliers], "outliers (most isolated first)")
    liked = sorted((d for d in report.decisions if d.like_score is not None), key=lambda d: -d.like_score)
    if liked:
        sheet(liked[:64], "like-top.png", [f"{d.like_score:.3f}" for d in liked[:64]], "most like the examples")
        sheet(liked[-32:], "like-bottom.png", [f"{d.like_score:.3f}" for d in liked[-32:]], "least like the examples")
    for k in range(len(centres) if centres is not None else 0):
        members = [report.decisions[n] for n in distinct if report.decisions[n].cluster == k]
        if not members:
            continue
        centre = torch.nn.functional.normalize(centres[k], dim=0)
        sims = torch.stack([x_all[index[d.key]] for d in members]) @ centre
        closest = [members[i] for i in torch.argsort(sims, descending=True).tolist()][:64]
        captions = [("" if d.decision == "keep" else f"[{d.decision}] ") + d.path.rsplit("/", 1)[-1] for d in closest]
        sheet(closest, f"clusters/cluster-{k:02d}.png", captions,
              f"cluster {k}: {len(members)} images (closest to the centre first)")


def apply_to_manifest(image_set: ImageSet, report: CurationReport) -> int:
    """Append a superseding manifest record for every image the curation sets aside; returns the count."""
    from bender.curate.decisions import append_manifest, now_iso, updated_record

    if image_set.manifest is None:
        raise BenderError(f"--apply: {image_set.root} has no manifest.jsonl; use --export DIR to copy the kept images")
    items = {i.key: i for i in image_set.items}
    records = []
    for d in report.decisions:
        if d.decision == "keep":
            continue
        status = "duplicate" if d.decision == "duplicate" else "rejected"
        records.append(updated_record(items[d.key], status=status, reason=f"curate: {d.decision}: {d.reason}",
                                      curated_at=now_iso()))
    return append_manifest(image_set.manifest, records)


def export_kept(image_set: ImageSet, report: CurationReport, out_dir: Path, by_cluster: bool = False) -> int:
    from bender.curate.decisions import export_items

    keep = [d for d in report.decisions if d.decision == "keep"]
    items = {i.key: i for i in image_set.items}
    folders = [f"cluster-{d.cluster:02d}" for d in keep] if by_cluster and all(d.cluster is not None for d in keep) \
        else None
    if by_cluster and folders is None:
        raise BenderError("--export-clusters needs --clusters K")
    return export_items(image_set, [items[d.key] for d in keep], out_dir, folders)

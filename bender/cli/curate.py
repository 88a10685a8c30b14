"""`bender dataset curate SET`: near-duplicates, outliers, "more like these" and clusters in CNN feature space."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("set_path", metavar="SET", type=click.Path(exists=True, path_type=Path))
@click.option("--features", default="auto", show_default=True,
              help="Feature space: auto | mobilenet_v2 | resnet18 | d:MODEL | weights file (see README).")
@click.option("--near-dup", "near_dup", type=float, default=0.95, show_default=True,
              help="Cosine similarity at which two images count as near-duplicates (0 = off).")
@click.option("--outliers", default=None, help="Flag the most isolated images: a share (5%) or a count (10).")
@click.option("--like", "like", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Example image(s) or folder: rank the set by likeness (repeatable).")
@click.option("--like-mode", type=click.Choice(["prototype", "logistic"]), default="prototype", show_default=True)
@click.option("--like-top", default=None, help="Keep only the top share/count by likeness (e.g. 50% or 200).")
@click.option("--clusters", type=int, default=0, help="k-means clusters, each with a contact sheet.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: SET/curation, or ZIP.curation/ beside a zip].")
@click.option("--apply", is_flag=True, help="Append the decisions to SET/manifest.jsonl (superseding records).")
@click.option("--export", "export_dir", type=click.Path(path_type=Path), default=None,
              help="Copy the kept images into this folder.")
@click.option("--export-clusters", is_flag=True, help="With --export: one subfolder per cluster.")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True)
def curate(set_path: Path, features: str, near_dup: float, outliers: str | None, like: tuple[Path, ...],
           like_mode: str, like_top: str | None, clusters: int, out: Path | None, apply: bool,
           export_dir: Path | None, export_clusters: bool, device: str, batch: int, seed: int, quiet: bool) -> None:
    """Curate SET (a scraped set folder, an image folder or a dataset zip). Never deletes anything."""
    from bender.curate import CurateOptions, apply_to_manifest, export_kept
    from bender.curate import curate as run_curate

    options = CurateOptions(features=features, near_dup=near_dup or None, outliers=outliers, like=list(like),
                            like_mode=like_mode, like_top=like_top, clusters=clusters, seed=seed, device=device,
                            batch=batch, out=out)
    image_set, report = run_curate(set_path, options, progress=not quiet)
    counts = report.counts()
    click.echo(f"{len(report.decisions)} images in {report.features} features: "
               + ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: kv[0] != "keep")))
    click.echo(f"report: {report.out_dir / 'curation.jsonl'} (+ {len(report.sheets)} contact sheets)")
    if apply:
        n = apply_to_manifest(image_set, report)
        click.echo(f"manifest: appended {n} superseding records to {image_set.manifest}")
    elif image_set.manifest is not None and len(report.decisions) > counts.get("keep", 0):
        click.echo("(nothing changed in the manifest; rerun with --apply to record the decisions there)")
    if export_dir:
        n = export_kept(image_set, report, export_dir, by_cluster=export_clusters)
        click.echo(f"exported {n} kept images to {export_dir}")

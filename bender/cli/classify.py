"""`bender classify train|apply`: label images with a CNN (transfer learning or the all-conv net)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def classify() -> None:
    """Train an image classifier on labelled examples and use it to label or filter a set."""


@classify.command()
@click.argument("set_path", metavar="SET", type=click.Path(exists=True, path_type=Path))
@click.option("--labels", type=click.Choice(["folders", "manifest", "dataset"]), default="folders", show_default=True,
              help="Where labels come from: class subfolders, a manifest field, or dataset.json.")
@click.option("--label-field", default="label", show_default=True, help="Manifest field for --labels manifest.")
@click.option("--backbone", default="auto", show_default=True,
              help="mobilenet_v2 | resnet18 | d:MODEL | allconv | weights file (auto: mobilenet_v2 if installed).")
@click.option("--finetune", is_flag=True, help="Also train the backbone (slower; for bigger sets).")
@click.option("--epochs", type=int, default=None, help="[default: 60 head-only, 10 fine-tune, 40 allconv]")
@click.option("--lr", type=float, default=None)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--val", "val_fraction", type=float, default=0.2, show_default=True, help="Validation share.")
@click.option("--size", type=int, default=64, show_default=True, help="Input size for --backbone allconv.")
@click.option("--width", type=int, default=32, show_default=True, help="Channels for --backbone allconv.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("classifier.safetensors"), show_default=True)
@click.option("--quiet", is_flag=True)
def train(set_path: Path, labels: str, label_field: str, backbone: str, finetune: bool, epochs: int | None,
          lr: float | None, batch: int, val_fraction: float, size: int, width: int, seed: int, device: str,
          out: Path, quiet: bool) -> None:
    """Train a classifier on SET; writes OUT, OUT-report.json and OUT-confusion.png."""
    from bender.curate.confusion import draw_confusion, draw_history
    from bender.curate.sources import open_image_set
    from bender.curate.train_classifier import TrainOptions, train_classifier
    from bender.errors import BenderError
    from bender.fileio import atomic_write_text

    if not 0 <= val_fraction < 1:
        raise BenderError(f"--val {val_fraction}: a share in [0, 1), e.g. 0.2")
    image_set = open_image_set(set_path, labels=labels, label_field=label_field)
    options = TrainOptions(backbone=backbone, finetune=finetune, epochs=epochs, lr=lr, batch=batch,
                           val_fraction=val_fraction, seed=seed, size=size, width=width, device=device)
    from bender.curate.classifier import save_classifier

    clf = train_classifier(image_set, options, progress=not quiet)
    save_classifier(clf, out)
    rep = clf.info.report
    stem = out.with_suffix("")
    atomic_write_text(f"{stem}-report.json", json.dumps({"class_names": clf.class_names, **rep}, indent=2) + "\n")
    draw_confusion(rep["confusion"], clf.class_names, f"{stem}-confusion.png",
                   title=f"{rep['backbone']}: {rep['evaluated_on']} accuracy {rep['val_accuracy']:.1%}")
    draw_history(rep["history"], f"{stem}-curves.png", title=f"{rep['backbone']} training")
    click.echo(f"{len(clf.class_names)} classes, {rep['train_images']} train / {rep['val_images']} val images, "
               f"{rep['backbone']}{' fine-tuned' if finetune else ''}: {rep['evaluated_on']} accuracy "
               f"{rep['val_accuracy']:.1%} (best epoch {rep['best_epoch']} of {rep['epochs']})")
    if rep.get("unreadable"):
        click.echo(f"skipped {len(rep['unreadable'])} unreadable images")
    click.echo(f"saved {out} (+ {stem.name}-report.json, {stem.name}-confusion.png, {stem.name}-curves.png)")


@classify.command()
@click.argument("classifier_path", metavar="CLASSIFIER", type=click.Path(exists=True, path_type=Path))
@click.argument("set_path", metavar="SET", type=click.Path(exists=True, path_type=Path))
@click.option("--keep", default=None, help="Comma-separated classes to keep (the rest are filtered out).")
@click.option("--min-confidence", type=float, default=0.0, show_default=True,
              help="With --keep: also drop predictions less confident than this.")
@click.option("--label-field", default="label", show_default=True, help="Manifest field to write the label into.")
@click.option("--out-zip", type=click.Path(path_type=Path), default=None,
              help="For a zip SET: the labelled copy [default: ZIP-labelled.zip].")
@click.option("--export", "export_dir", type=click.Path(path_type=Path), default=None,
              help="Copy the kept images here, one subfolder per predicted class.")
@click.option("--dry-run", is_flag=True, help="Only write the predictions report.")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--quiet", is_flag=True)
def apply(classifier_path: Path, set_path: Path, keep: str | None, min_confidence: float, label_field: str,
          out_zip: Path | None, export_dir: Path | None, dry_run: bool, device: str, batch: int, quiet: bool) -> None:
    """Label SET with CLASSIFIER: manifest records, dataset.json or a labelled zip copy; optionally filter."""
    from bender.curate import labelling
    from bender.curate.classifier import load_classifier
    from bender.curate.decisions import export_items
    from bender.curate.sources import open_image_set
    from bender.device import pick_device
    from bender.errors import BenderError

    dev = pick_device(device)
    clf = load_classifier(classifier_path)
    keep_list = [k.strip() for k in keep.split(",") if k.strip()] if keep else None
    unknown = [k for k in keep_list or [] if k not in clf.class_names]
    if unknown:
        raise BenderError(f"--keep {','.join(unknown)}: not a class of this classifier ({', '.join(clf.class_names)})")
    image_set = open_image_set(set_path)
    if keep_list and image_set.kind == "folder" and not export_dir and not dry_run:
        raise BenderError("--keep on a plain folder needs --export DIR (the folder itself is never changed)")
    preds, errors = labelling.predict_set(clf, image_set, dev, batch, progress=not quiet)
    report_dir = (image_set.root.with_name(image_set.root.stem + ".classify") if image_set.kind == "zip"
                  else image_set.root / "classify")
    report = labelling.write_predictions(preds, errors, report_dir / f"{classifier_path.stem}.jsonl")
    counts = {n: sum(p.class_name == n for p in preds) for n in clf.class_names}
    kept = [p for p in preds if labelling.selected(p, keep_list, min_confidence)]
    click.echo(f"{len(preds)} images: " + ", ".join(f"{v} {k}" for k, v in counts.items())
               + (f"; {len(errors)} unreadable" if errors else "")
               + (f"; keeping {len(kept)}" if keep_list else ""))
    click.echo(f"predictions: {report}")
    if dry_run:
        return
    if image_set.kind == "manifest":
        n = labelling.labels_to_manifest(image_set, preds, classifier_path.name, label_field, keep_list, min_confidence)
        click.echo(f"manifest: appended {n} records (pack with `bender dataset pack {set_path} --labels manifest`)")
    elif image_set.kind == "zip":
        target = out_zip or image_set.root.with_name(image_set.root.stem + "-labelled.zip")
        labelling.labels_to_zip(image_set, preds, clf.class_names, target, keep_list, min_confidence)
        click.echo(f"wrote {target} ({len(kept)} images, labels in dataset.json)")
    elif keep_list is None:
        click.echo(f"wrote {labelling.labels_to_folder(image_set, preds, clf.class_names)}")
    if export_dir:
        items = {i.key: i for i in image_set.items}
        n = export_items(image_set, [items[p.key] for p in kept], export_dir, [p.class_name for p in kept])
        click.echo(f"exported {n} images to {export_dir}/<class>/ (pack with --labels folders)")

"""`bender dataset pack|check|info|preview|dedup`: thin click wrappers over `bender.dataset`."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path

import click

from bender.errors import BenderError

_SHOWN_REJECTS = 20


class Color(click.ParamType):
    """A colour as Pillow understands it: a name ("white"), "#rrggbb" or "r,g,b"."""

    name = "color"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from PIL import ImageColor

        text = str(value).strip()
        try:
            if "," in text:
                rgb = tuple(int(v) for v in text.split(","))
                if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                    raise ValueError
                return rgb
            return ImageColor.getrgb(text)[:3]
        except ValueError:
            self.fail(f"{value!r} is not a colour: use a name (black), #rrggbb or r,g,b", param, ctx)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C so that temp files are cleaned up on `kill` too."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a UI): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Dataset zip to write (written to a temp file, renamed when complete).")
@click.option("--resolution", "-r", default=256, show_default=True, help="Output size (power of two).")
@click.option("--transform", default="center-crop", show_default=True,
              type=click.Choice(["center-crop", "center-crop-wide", "pad", "tiles"]))
@click.option("--tiles-per-image", default=8, show_default=True,
              help="tiles: crops per source (with --tile-layout grid, 0 = every grid cell).")
@click.option("--tile-layout", default="random", show_default=True, type=click.Choice(["random", "grid"]))
@click.option("--tile-scale", default=1.0, show_default=True,
              help="tiles: resize sources by this factor before cutting tiles (0.5 = half size).")
@click.option("--wide-height", type=int, default=None,
              help="center-crop-wide: picture height on the square canvas [default: 3/4 of resolution].")
@click.option("--resize-filter", default="lanczos", show_default=True, type=click.Choice(["lanczos", "box"]))
@click.option("--channels", default="3", show_default=True, type=click.Choice(["3", "1"]),
              help="3 = RGB, 1 = greyscale.")
@click.option("--labels", default="none", show_default=True,
              type=click.Choice(["folders", "manifest", "none"]),
              help="Class labels from class subfolders, from a manifest field, or none.")
@click.option("--label-field", default="label", show_default=True,
              help="--labels manifest: the record field holding the class (falls back to 'query').")
@click.option("--dedup", is_flag=True, help="Drop duplicates (first one in pack order is kept).")
@click.option("--dedup-mode", default="near", show_default=True, type=click.Choice(["exact", "near"]),
              help="exact = identical pixels; near = also perceptual-hash neighbours.")
@click.option("--dedup-threshold", default=6, show_default=True,
              help="near: largest Hamming distance (of 64 bits) counted as a duplicate.")
@click.option("--mirror-check", is_flag=True,
              help="Also treat mirror images as duplicates (training with x-flips sees them as the same).")
@click.option("--max-images", type=int, default=None, help="Stop after this many dataset entries.")
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes [default: all cores].")
@click.option("--fast", is_flag=True,
              help="Decode large JPEGs at reduced scale: faster, not pixel-exact (>= 40 dB PSNR).")
@click.option("--exif-orientation/--no-exif-orientation", default=True, show_default=True,
              help="Rotate photos as the camera's EXIF flag says (NVIDIA's tool ignores it).")
@click.option("--min-size", type=int, default=None,
              help="Reject sources whose crop is smaller than this [default: resolution/4].")
@click.option("--background", default="white", show_default=True, type=Color(),
              help="Colour under transparent pixels.")
@click.option("--pad-color", default="black", show_default=True, type=Color(),
              help="Canvas colour for pad and center-crop-wide.")
@click.option("--max-pixels", default=89_478_485, show_default=True,
              help="Reject images declaring more pixels than this (decompression bombs).")
@click.option("--seed", default=0, show_default=True, help="Seed for random tile positions.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the JSON report [default: OUT's name with .report.json].")
@click.option("--quiet", "-q", is_flag=True, help="Only print the summary line.")
def pack(sources, out, resolution, transform, tiles_per_image, tile_layout, tile_scale, wide_height,
         resize_filter, channels, labels, label_field, dedup, dedup_mode, dedup_threshold, mirror_check,
         max_images, jobs, fast, exif_orientation, min_size, background, pad_color, max_pixels, seed,
         report, quiet):
    """Pack image folders, zips or scraper manifests into a StyleGAN2-ADA dataset zip.

    Every input either becomes an entry or is listed with the reason it was rejected (too small,
    not an image, truncated, decompression bomb, unsupported mode, duplicate).

    \b
    Examples:
      bender dataset pack photos/ --out rocks.zip --resolution 256
      bender dataset pack bark/ --out bark.zip --transform tiles --tiles-per-image 16 --dedup
      bender dataset pack sets/trees --out trees.zip --labels manifest
    """
    from bender.dataset import PackOptions, pack_dataset

    options = PackOptions(
        resolution=resolution, transform=transform, resize_filter=resize_filter, channels=int(channels),
        labels=labels, label_field=label_field, tiles_per_image=tiles_per_image, tile_layout=tile_layout,
        tile_scale=tile_scale, wide_height=wide_height, min_size=min_size, pad_color=pad_color,
        background=background, exif_orientation=exif_orientation, fast=fast, dedup=dedup,
        dedup_mode=dedup_mode, dedup_threshold=dedup_threshold, mirror_check=mirror_check,
        max_images=max_images, max_pixels=max_pixels, seed=seed, jobs=jobs, report=report)
    try:
        with _sigterm_as_interrupt():
            result = pack_dataset(list(sources), out, options, progress=not quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        click.echo(f"interrupted: nothing written to {out}", err=True)
        sys.exit(130)
    if not quiet:
        for reject in result.rejects[:_SHOWN_REJECTS]:
            click.echo(f"  rejected {reject.source}: {reject.reason} ({reject.detail})", err=True)
        if len(result.rejects) > _SHOWN_REJECTS:
            more = len(result.rejects) - _SHOWN_REJECTS
            click.echo(f"  ... and {more} more in {result.report_path}", err=True)
        for dup in result.duplicates[:_SHOWN_REJECTS]:
            click.echo(f"  duplicate {dup.dropped} of {dup.kept} ({dup.kind}, distance {dup.distance})",
                       err=True)
    click.echo(result.summary())


@click.command()
@click.argument("zip_path", metavar="ZIP", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def check(zip_path, as_json):
    """Check that NVIDIA's loader and trainer accept ZIP; list every problem at once (exit 1 if any)."""
    from bender.dataset import check_dataset

    report = check_dataset(zip_path)
    if as_json:
        click.echo(json.dumps({
            "path": str(report.path), "ok": report.ok, "images": report.images,
            "resolution": report.resolution, "channels": report.channels, "labels": report.labels,
            "classes": report.classes, "sizes": {f"{w}x{h}": n for (w, h), n in report.sizes.items()},
            "modes": dict(report.modes), "problems": report.problems, "warnings": report.warnings}, indent=1))
    else:
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
        click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(zip_path):
    """Describe a dataset zip: images, sizes, modes, classes, licences."""
    from bender.dataset import dataset_info

    for line in dataset_info(zip_path).lines():
        click.echo(line)


@click.command()
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write.")
@click.option("--count", "-n", default=64, show_default=True, help="How many images.")
@click.option("--columns", type=int, default=None, help="Grid columns [default: square grid].")
@click.option("--thumb", type=int, default=None, help="Thumbnail size [default: min(resolution, 128)].")
@click.option("--seed", type=int, default=None, help="Show a random sample instead of the first images.")
@click.option("--captions/--no-captions", default=True, show_default=True,
              help="Index and class on each image.")
def preview(zip_path, out, count, columns, thumb, seed, captions):
    """Write a contact sheet of a dataset's images."""
    from bender.dataset import contact_sheet

    path = contact_sheet(zip_path, out, count=count, columns=columns, thumb=thumb, seed=seed,
                         captions=captions)
    click.echo(f"wrote {path}")


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mode", default="near", show_default=True, type=click.Choice(["exact", "near"]))
@click.option("--threshold", default=6, show_default=True,
              help="near: largest Hamming distance (of 64 bits).")
@click.option("--mirror-check", is_flag=True, help="Also match mirror images.")
@click.option("--exif-orientation/--no-exif-orientation", default=True, show_default=True)
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes [default: all cores].")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the pairs as JSON here.")
def dedup(sources, mode, threshold, mirror_check, exif_orientation, jobs, report):
    """List exact and near duplicates in folders, zips or manifests (nothing is changed).

    To drop them, pack with `--dedup` and the same settings.
    """
    from bender.dataset import find_duplicates
    from bender.fileio import atomic_write_text

    if not 0 <= threshold <= 64:
        raise BenderError("--threshold is a Hamming distance between 0 and 64")
    result = find_duplicates(list(sources), mode=mode, threshold=threshold, mirror=mirror_check,
                             exif_orientation=exif_orientation, jobs=jobs, progress=sys.stderr.isatty())
    for dup in result.duplicates:
        click.echo(f"{dup.dropped}\tduplicates\t{dup.kept}\t({dup.kind}, distance {dup.distance})")
    if report is not None:
        atomic_write_text(report, json.dumps(result.to_json(), indent=1) + "\n")
    click.echo(f"{result.inputs} inputs: {result.unique} unique, {len(result.duplicates)} duplicates, "
               f"{len(result.rejects)} unreadable" + (f"; report: {report}" if report else ""))

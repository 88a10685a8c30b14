"""`bender demo`: the whole idea in minutes, offline, on a laptop."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bender-demo"),
              show_default=True, help="Folder for the dataset, the run, the videos and the curve.")
@click.option("--kimg", type=float, default=6.0, show_default=True,
              help="How long to fine-tune (thousands of images); 1 is a quick smoke run.")
@click.option("--model", default="default", show_default=True, help="The face model to bend.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def demo(out: Path, kimg: float, model: str, device: str) -> None:
    """Bend the embedded face model toward rocks & foliage: dataset, fine-tune, timeline, walk, bend curve.

    Runs offline on a CPU in about eleven minutes at the default --kimg (2-core CPU). Uses scikit-image's bundled
    textures (pip install scikit-image).
    """
    from bender.demo.pipeline import run_demo, summary

    result = run_demo(out, kimg=kimg, model=model, device=device)
    click.echo(summary(result))

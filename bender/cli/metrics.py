"""`bender metrics RUN`: the bend distance of every snapshot of a training run, and the bend curve."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--features", default="auto", show_default=True,
              help="auto | mobilenet_v2 | resnet18 | d:original | d:MODEL | weights file "
                   "(auto: mobilenet_v2 if installed, else the original model's D).")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="The dataset zip [default: the one in RUN/config.json].")
@click.option("--original", default=None, help="The model the run started from [default: config.json 'resume', "
                                                "else the first snapshot].")
@click.option("--samples", type=int, default=256, show_default=True, help="Generated images per snapshot.")
@click.option("--max-real", type=int, default=2000, show_default=True, help="Dataset images for the target.")
@click.option("--psi", "truncation_psi", type=float, default=1.0, show_default=True)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def metrics(run_dir: Path, features: str, data: Path | None, original: str | None, samples: int, max_real: int,
            truncation_psi: float, batch: int, device: str, quiet: bool) -> None:
    """Fréchet distance of each snapshot to the dataset and to the original model; draws RUN/bend_curve.png."""
    from bender.errors import BenderError
    from bender.metrics.bend import BendMeter, BendSettings

    if samples < 2 or max_real < 2:
        raise BenderError("--samples and --max-real must be at least 2 (a covariance needs 2 images)")
    settings = BendSettings(features=features, samples=samples, max_real=max_real, batch=batch,
                            truncation_psi=truncation_psi, device=device)
    meter = BendMeter(run_dir, settings, data=data, original=original, progress=not quiet)
    points = meter.measure_run()
    jsonl, png = meter.write(points)
    click.echo(f"{'kimg':>10}  {'to target':>12}  {'from original':>14}  snapshot")
    for p in points:
        click.echo(f"{p.kimg:>10.3f}  {p.to_target:>12.4f}  {p.from_original:>14.4f}  {p.snapshot}")
    click.echo(f"features: {meter.extractor.name}, {samples} samples vs {meter.data.name}")
    click.echo(f"wrote {jsonl} and {png}")

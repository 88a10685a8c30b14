"""The `bender` command line.

Each command lives in its own module under `bender/cli/` and is imported only when it runs, so
`bender --help` starts in milliseconds and a broken optional dependency (say, gradio) cannot break
`bender dataset pack`. The tables below are the whole command map; commands whose module is not
importable are left out of `--help` and explain themselves when called.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from bender.errors import BenderError

# command name -> "module:attribute". Groups nest through LazyGroup too.
COMMANDS: dict[str, str] = {
    "info": "bender.cli.model:info",
    "convert": "bender.cli.model:convert",
    "generate": "bender.cli.model:generate",
    "doctor": "bender.cli.doctor:doctor",
    "ops": "bender.cli.ops:ops",
    "dataset": "bender.cli:dataset_group",  # not `dataset`: importing bender.cli.dataset rebinds that name
    "scrape": "bender.cli.scrape:scrape",
    "train": "bender.cli.train:train",
    "render": "bender.cli.render:render",
    "ui": "bender.cli.ui:ui",
    "classify": "bender.cli.classify:classify",
    "metrics": "bender.cli.metrics:metrics",
    "demo": "bender.cli.demo:demo",
}

DATASET_COMMANDS: dict[str, str] = {
    "pack": "bender.cli.dataset:pack",
    "check": "bender.cli.dataset:check",
    "info": "bender.cli.dataset:info",
    "preview": "bender.cli.dataset:preview",
    "dedup": "bender.cli.dataset:dedup",
    "build": "bender.cli.scrape:build",
    "curate": "bender.cli.curate:curate",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(n for n in self.lazy if self._load(n, quiet=True) is not None)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in self.lazy:
            cmd = self._load(name, quiet=False)
        return cmd

    def _load(self, name: str, quiet: bool) -> click.Command | None:
        module_name, attr = self.lazy[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if quiet or (e.name and e.name.startswith("bender.cli")):
                return None
            raise click.ClickException(
                f"'{name}' needs the Python package '{e.name}', which is not installed: "
                f"pip install {e.name}") from e
        return getattr(module, attr, None)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BenderError as e:
            if os.environ.get("BENDER_DEBUG") or (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(str(e)) from None


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="bender")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """bender: StyleGAN2 circuit bending — scrape, pack, fine-tune just enough, walk, render."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@click.group(name="dataset", cls=LazyGroup, lazy=DATASET_COMMANDS)
def dataset_group() -> None:
    """Build, check and curate StyleGAN2-ADA zip datasets."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

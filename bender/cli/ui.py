"""`bender ui`: the Gradio web UI for artists (explore, plane, interpolate, bend, timeline, export)."""

from __future__ import annotations

import click


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """'user:pass' -> ('user', 'pass'); the password may itself contain ':'."""
    from bender.errors import BenderError

    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise BenderError("--auth takes USER:PASSWORD, e.g. --auth artist:s3cret")
    return user, password


@click.command()
@click.argument("models", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. 0.0.0.0 makes the UI reachable from your network (use --auth).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: the first free one from 7860).")
@click.option("--auth", default=None, metavar="USER:PASS", help="Ask for this user name and password.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of .pkl/.safetensors files and run folders, rescanned on refresh.")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Where uploads and exports go (default: a new temporary folder).")
@click.option("--max-upload-mb", type=float, default=1024, show_default=True, help="Largest model upload accepted.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--share", is_flag=True, help="Also open a public gradio.live link (off by default; needs internet).")
def ui(models, host, port, auth, models_dir, work_dir, max_upload_mb, device, share) -> None:
    """Open the web UI on MODELS (model files, run folders, or 'default').

    With no MODELS and no --models-dir it offers the embedded default model. Binds 127.0.0.1 by
    default, makes no outbound connections (unless --share) and sends no telemetry.
    """
    import os
    from pathlib import Path

    from bender.errors import BenderError

    credentials = parse_auth(auth)
    if max_upload_mb <= 0:
        raise BenderError("--max-upload-mb must be more than 0")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bender.ui.config import UIConfig
    from bender.ui.netguard import is_loopback

    config = UIConfig(models=list(models), models_dir=Path(models_dir) if models_dir else None, device=device,
                      work_dir=Path(work_dir) if work_dir else None, max_upload_mb=max_upload_mb)
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(config.work_dir / "gradio-cache")
    from bender.ui.server import serve

    server = serve(config, host=host, port=port, auth=credentials, share=share)
    if not server.ctx.library.entries():
        click.echo("note: no models yet (the embedded default model is not installed): upload one in the page, "
                   "or restart with a model file, run folder or --models-dir", err=True)
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can open the UI"
                   + ("" if credentials else "; consider --auth USER:PASS"), err=True)
    click.echo(f"bender ui running at {server.url}  (work dir {config.work_dir}; Ctrl-C to stop)", err=False)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()

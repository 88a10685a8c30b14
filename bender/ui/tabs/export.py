"""Export: the current walk as a walk script (download), or rendered to a video with progress.

Both are written by the library: `WalkScript.to_yaml` and `bender.render.script.render_script`
(which also writes the script beside the video and embeds its sha256 in the video's metadata), so
`bender render script walk.yaml` reproduces the download bit for bit on the same device.
"""

from __future__ import annotations

import gradio as gr

from bender.errors import BenderError
from bender.fileio import atomic_write_text
from bender.latent.walk import Walk
from bender.render.script import render_script
from bender.ui.context import AppContext, user_errors
from bender.ui.tabs.interpolate import WalkControls, current_script, script_name

FORMATS = {"mp4 (H.264)": ".mp4", "webm (VP9)": ".webm", "gif": ".gif"}


class ExportTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def export_script(self, model, source, frames, easing, interpolation, loop, fps, include_bend, size,
                      favourites, plane, bend):
        """The current walk as a YAML walk script, ready to download."""
        script = current_script(self.ctx, model, source, frames, easing, interpolation, loop, fps, include_bend,
                                favourites, plane, bend, size=_size(size))
        path = self.ctx.config.exports_dir / script_name(script, ".yaml")
        atomic_write_text(path, script.to_yaml(header="bender walk script, exported from bender ui\n"
                                                      f"render it: bender render script {path.name}"))
        return str(path)

    @user_errors
    def render_video(self, model, source, frames, easing, interpolation, loop, fps, include_bend, size, fmt,
                     favourites, plane, bend, progress=gr.Progress()):
        """Render the current walk at full quality; returns (video for the page, file to download, summary)."""
        if fmt not in FORMATS:
            raise BenderError(f"format must be one of {', '.join(FORMATS)}")
        script = current_script(self.ctx, model, source, frames, easing, interpolation, loop, fps, include_bend,
                                favourites, plane, bend, size=_size(size))
        out = self.ctx.config.exports_dir / script_name(script, FORMATS[fmt])
        progress(0, desc="loading models")
        walk = Walk(script, device=self.ctx.library.device)
        if not out.exists():
            done = [0]

            def tick(n: int) -> None:
                done[0] += n
                progress((done[0], walk.num_frames), desc="rendering", unit="frames")

            result = render_script(script, out, device=self.ctx.library.device, walk=walk, progress=tick)
            summary = (f"{result.video.frames} frames {result.video.width}×{result.video.height} in "
                       f"{result.seconds:.1f} s; script sha256 {result.script_sha256[:12]}")
        else:
            summary = f"{walk.num_frames} frames (rendered before); script sha256 {script.sha256()[:12]}"
        return str(out) if out.suffix != ".gif" else None, str(out), summary

    def build(self, model, walk: WalkControls, favourites, plane, bend) -> None:
        gr.Markdown("Exports **the current walk**: the keyframes and timing set on the Interpolate tab "
                    "(favourites or the plane path), with the Bend tab's settings when ticked there.")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                size = gr.Number(label="Pixels per image (0 = the model's resolution)", value=0, precision=0,
                                 elem_id="export-size")
                fmt = gr.Radio(list(FORMATS), value="mp4 (H.264)", label="Video format", elem_id="export-format")
                script_btn = gr.Button("Walk script (.yaml)", elem_id="export-script")
                render_btn = gr.Button("Render video", variant="primary", elem_id="export-render")
                summary = gr.Markdown(elem_id="export-summary")
            with gr.Column(scale=2):
                files = gr.File(label="Download", elem_id="export-file", interactive=False)
                video = gr.Video(label="Video", elem_id="export-video", height=360)
        inputs = [model, *walk.inputs(), size]
        script_btn.click(self.export_script, [*inputs, favourites, plane, bend], files, api_name="export_script",
                         concurrency_id="video", concurrency_limit=2)
        render_btn.click(self.render_video, [*inputs, fmt, favourites, plane, bend], [video, files, summary],
                         api_name="render_video", concurrency_id="video", concurrency_limit=2)


def _size(value) -> int | None:
    return None if value in (None, "", 0) else int(value)

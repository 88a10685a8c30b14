"""Interpolate: keyframes (favourites, or a path recorded on the plane) -> a strip of frames and an
inline video preview. The walk is a walk script rendered by `bender.render.script.render_script`."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from bender.errors import BenderError
from bender.latent.paths import EASINGS, INTERPOLATIONS
from bender.latent.script import WalkScript
from bender.latent.walk import Walk
from bender.render.frames import render_frames
from bender.render.video import write_video
from bender.ui.context import AppContext, user_errors
from bender.ui.tabs.plane import PlaneState
from bender.ui.walks import BendSettings, WalkSettings, favourites_script, model_ref, path_script

SOURCES = ("favourites", "plane path")


@dataclass
class WalkControls:
    """The widgets that define 'the current walk' (read by Export too)."""

    source: gr.Radio
    frames: gr.Slider
    easing: gr.Dropdown
    interpolation: gr.Radio
    loop: gr.Checkbox
    fps: gr.Number
    include_bend: gr.Checkbox

    def inputs(self) -> list:
        return [self.source, self.frames, self.easing, self.interpolation, self.loop, self.fps, self.include_bend]


def current_script(ctx: AppContext, model, source, frames, easing, interpolation, loop, fps, include_bend,
                   favourites, plane: PlaneState | None, bend: BendSettings | None, size: int | None = None
                   ) -> WalkScript:
    """The session's walk as a script: keyframes from favourites or the plane path, plus the bend."""
    if not frames or int(frames) < 1:
        raise BenderError("frames per segment must be 1 or more")
    settings = WalkSettings(frames=int(frames), easing=str(easing), interpolation=str(interpolation),
                            loop=bool(loop), fps=float(fps or 24), size=size)
    bend = bend if include_bend else None
    if source == "favourites":
        favs = list(favourites or [])
        if favs and favs[0].weights.model != model:
            raise BenderError("the favourites come from another model than the one picked; pick it again or "
                              "clear the favourites")
        return favourites_script(favs, model_ref(ctx.library.entry(model)), settings, bend,
                                 num_ws=int(ctx.library.get(model).G.num_ws))
    if source == "plane path":
        if plane is None or plane.axes is None:
            raise BenderError("draw a plane and record a path on the Plane tab first")
        return path_script(model_ref(ctx.library.entry(plane.model)), plane.axes, plane.path, plane.psi,
                           plane.class_idx, settings, bend)
    raise BenderError(f"keyframes come from {' or '.join(SOURCES)}, got {source!r}")


def script_name(script: WalkScript, suffix: str) -> str:
    return f"walk-{script.sha256()[:12]}{suffix}"


class InterpolateTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def interpolate(self, model, source, frames, easing, interpolation, loop, fps, include_bend, strip,
                    favourites, plane, bend, progress=gr.Progress()):
        """A strip of `strip` frames spread over the walk, and the whole walk as a preview video."""
        script = current_script(self.ctx, model, source, frames, easing, interpolation, loop, fps, include_bend,
                                favourites, plane, bend)
        walk = Walk(script, device=self.ctx.library.device)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            progress((done[0], walk.num_frames), desc="rendering preview", unit="frames")

        # Frames once, at preview resolution: exact pixels for the strip, then encoded for the player.
        frames_all = list(render_frames(walk, preview=True, progress=tick))
        out = self.ctx.config.exports_dir / script_name(script, "-preview.mp4")
        if not out.exists():
            sha = script.sha256()
            write_video(frames_all, out, fps=script.fps, metadata={
                "bender_script_sha256": sha, "bender_preview": "true", "bender_script": script.to_yaml(),
                "comment": f"bender ui preview; script sha256 {sha}"})
        count = max(1, min(int(strip or 12), len(frames_all)))
        picks = sorted({round(i * (len(frames_all) - 1) / max(count - 1, 1)) for i in range(count)})
        items = [(frames_all[i], f"frame {i + 1}/{len(frames_all)}") for i in picks]
        info = (f"{len(script.keyframes)} keyframes, {walk.num_frames} frames at {script.fps:g} fps "
                f"({walk.num_frames / script.fps:.1f} s); script sha256 {script.sha256()[:12]}")
        return items, str(out), info

    def build(self, model, favourites, plane, bend) -> WalkControls:
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                source = gr.Radio(list(SOURCES), value="favourites", label="Keyframes from", elem_id="walk-source")
                frames = gr.Slider(1, 240, value=24, step=1, label="Frames per segment", elem_id="walk-frames")
                easing = gr.Dropdown(list(EASINGS), value="linear", label="Easing", elem_id="walk-easing")
                interpolation = gr.Radio(list(INTERPOLATIONS), value="slerp", label="Interpolation",
                                         elem_id="walk-interpolation")
                loop = gr.Checkbox(label="Loop (back to the first keyframe)", value=False, elem_id="walk-loop")
                fps = gr.Number(label="Frames per second", value=24, minimum=1, maximum=240, elem_id="walk-fps")
                include_bend = gr.Checkbox(label="Use the Bend tab's model blend and bends", value=False,
                                           elem_id="walk-include-bend")
                strip = gr.Slider(2, 32, value=12, step=1, label="Frames in the strip", elem_id="walk-strip")
                go = gr.Button("Make strip + preview", variant="primary", elem_id="walk-go")
                info = gr.Markdown(elem_id="walk-info")
            with gr.Column(scale=2):
                gallery = gr.Gallery(label="Strip", columns=6, height=300, allow_preview=True, elem_id="walk-strip-out",
                                     format="png", fit_columns=False, object_fit="contain", interactive=False)
                video = gr.Video(label="Preview", autoplay=True, loop=True, elem_id="walk-video", height=360)
        controls = WalkControls(source, frames, easing, interpolation, loop, fps, include_bend)
        go.click(self.interpolate, [model, *controls.inputs(), strip, favourites, plane, bend],
                 [gallery, video, info], api_name="interpolate", concurrency_id="video", concurrency_limit=2)
        return controls

"""Timeline: scrub a training run's snapshots (t from the first to the last) on fixed preview seeds,
and play the run as a video (`bender.render.timeline.render_timeline`)."""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from bender.cli.common import parse_int_list
from bender.errors import BenderError
from bender.render.images import make_grid
from bender.render.timeline import render_timeline
from bender.ui.context import AppContext, user_errors
from bender.ui.pictures import Picture, Weights, with_metadata

MAX_SEEDS = 16


def parse_seeds(text) -> list[int]:
    seeds = parse_int_list(str(text or ""))
    if len(seeds) > MAX_SEEDS:
        raise BenderError(f"at most {MAX_SEEDS} preview seeds (got {len(seeds)})")
    if not all(0 <= s < 2**32 for s in seeds):
        raise BenderError("seeds are whole numbers from 0 to 4294967295")
    return seeds


class TimelineTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def runs(self):
        return [(r.label, r.key) for r in self.ctx.library.runs()]

    @user_errors
    def timeline_image(self, run, t, seeds, psi):
        """The preview seeds at position t of the run (t = 0 first snapshot, 1 last)."""
        if not run:
            raise BenderError("pick a training run (start bender ui with a run folder or a --models-dir with runs)")
        seeds = parse_seeds(seeds)
        t = min(1.0, max(0.0, float(t)))
        tl = self.ctx.painter.timeline(self.ctx.library.run(run).key)
        G = tl.first.G_ema
        class_idx = 0 if G.c_dim else None
        pictures = [Picture(weights=Weights(model="", run=run, t=t), seed=s, psi=float(psi), class_idx=class_idx)
                    for s in seeds]
        images = self.ctx.paint(*pictures)
        arrays = np.stack([a[..., None] if a.ndim == 2 else a for a in map(np.asarray, images)])
        grid = make_grid(arrays, pad=max(1, G.img_resolution // 32), pad_value=255)
        i, j, a = tl.locate(t)
        where = (f"snapshot {i + 1} of {len(tl)}" if i == j else
                 f"between snapshots {i + 1} and {j + 1} of {len(tl)} ({a:.0%} of the way)")
        info = f"t = {t:.3f}: {where}, {tl.kimg_at(t):g} kimg"
        meta = dict(images[0].info)
        meta.pop("seed", None)
        meta["seeds"] = ",".join(map(str, seeds))
        return with_metadata(Image.fromarray(grid.squeeze()), meta), info

    @user_errors
    def play(self, run, seeds, psi, progress=gr.Progress()):
        """The whole run as a video: the preview seeds morphing from the first snapshot to the last."""
        if not run:
            raise BenderError("pick a training run first")
        entry = self.ctx.library.run(run)
        seeds = parse_seeds(seeds)
        out = self.ctx.config.exports_dir / f"timeline-{entry.label}-{'_'.join(map(str, seeds))}-psi{psi:g}.mp4"
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            progress(done[0], desc="rendering timeline", unit="frames")

        result = render_timeline(entry.path, out, seeds=seeds, psi=float(psi), device=self.ctx.library.device,
                                 progress=tick)
        return str(out), f"{result.video.frames} frames, {result.seconds:.1f} s to render"

    def refresh(self, run):
        runs = self.runs()
        keys = [k for _, k in runs]
        return gr.update(choices=runs, value=run if run in keys else (keys[0] if keys else None))

    def build(self) -> None:
        runs = self.runs()
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                with gr.Row():
                    run = gr.Dropdown(choices=runs, value=runs[0][1] if runs else None, label="Training run",
                                      elem_id="timeline-run", scale=4)
                    refresh = gr.Button("↻", scale=0, min_width=50, elem_id="timeline-refresh")
                t = gr.Slider(0.0, 1.0, value=0.0, step=0.001, label="t (first snapshot → last)", elem_id="timeline-t")
                seeds = gr.Textbox(label="Preview seeds", value="0-3", elem_id="timeline-seeds")
                psi = gr.Slider(-1.0, 2.0, value=0.7, step=0.01, label="ψ", elem_id="timeline-psi")
                info = gr.Markdown(elem_id="timeline-info")
                play = gr.Button("▶ Play the run as a video", variant="primary", elem_id="timeline-play")
                play_info = gr.Markdown()
            with gr.Column(scale=2):
                image = gr.Image(label="Preview seeds at t", format="png", type="pil", height=480, interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="timeline-image")
                video = gr.Video(label="Timeline", elem_id="timeline-video", autoplay=True, height=360)
        gr.on([run.change, t.change, seeds.submit, psi.release], self.timeline_image, [run, t, seeds, psi],
              [image, info], api_name="timeline_image", trigger_mode="always_last", show_progress="hidden",
              **self.ctx.render_event())
        play.click(self.play, [run, seeds, psi], [video, play_info], api_name="timeline_play",
                   concurrency_id="video", concurrency_limit=2)
        refresh.click(self.refresh, run, run, api_name="timeline_refresh", queue=False)

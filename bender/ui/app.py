"""The page: a model picker above six tabs, wired together (launching it: `bender.ui.server`).

Layout and wiring only; each tab lives in `bender/ui/tabs/` and every picture comes from
`bender.latent` / `bender.render` through the shared render queue.
"""

from __future__ import annotations

import os

from bender.ui.config import UIConfig
from bender.ui.context import AppContext

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402 - after the telemetry switches above

TITLE = "bender"
# Pictures fill their frame (a 64² model's picture is tiny otherwise). Not the plane map: Gradio
# computes click positions assuming images are never scaled up, so the map is enlarged server-side.
CSS = """
#explore-image img, #plane-point img, #bend-image img, #timeline-image img {
  width: 100%; height: 100%; object-fit: contain; }
#model-info p { margin: 0.2em 0; }
"""


def build_app(config: UIConfig, ctx: AppContext | None = None) -> tuple[gr.Blocks, AppContext]:
    """The Gradio Blocks for `config` (not launched) and the context its handlers share."""
    from bender.ui.tabs.bend import BendTab
    from bender.ui.tabs.explore import ExploreTab
    from bender.ui.tabs.export import ExportTab
    from bender.ui.tabs.interpolate import InterpolateTab
    from bender.ui.tabs.picker import PickerTab
    from bender.ui.tabs.plane import PlaneTab
    from bender.ui.tabs.timeline import TimelineTab

    ctx = ctx or AppContext.from_config(config)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## bender — explore, walk, bend", elem_id="title")
        picker = PickerTab(ctx)
        model, info = picker.build()
        with gr.Tabs():
            with gr.Tab("Explore", id="explore"):
                explore_tab = ExploreTab(ctx)
                explore = explore_tab.build(model)
            with gr.Tab("Plane", id="plane"):
                plane_state = PlaneTab(ctx).build(model, explore.class_idx, explore.favourites)
            with gr.Tab("Bend", id="bend") as bend_tab_ui:
                bend_tab = BendTab(ctx)
                bend_state = bend_tab.build(model, explore)
            with gr.Tab("Interpolate", id="interpolate"):
                walk = InterpolateTab(ctx).build(model, explore.favourites, plane_state, bend_state)
            with gr.Tab("Timeline", id="timeline"):
                TimelineTab(ctx).build()
            with gr.Tab("Export", id="export"):
                ExportTab(ctx).build(model, walk, explore.favourites, plane_state, bend_state)
        bend_tab_ui.select(bend_tab.bend_image, bend_tab.inputs, [bend_tab.image, bend_tab.settings_state],
                           api_name=False, show_progress="hidden", **ctx.render_event())
        demo.load(bend_tab.bend_layout, [model, bend_tab.model_b], bend_tab.layout_outputs, api_name=False,
                  queue=False)
        for trigger, name in ((model.change, "model_info"), (demo.load, False)):
            trigger(picker.model_info, model, [info, explore.class_idx, explore.cutoff], api_name=name,
                    concurrency_id="load").then(
                explore_tab.explore, [model, *explore.inputs()], explore.image, api_name=False,
                show_progress="hidden", **ctx.render_event())
    demo.queue(default_concurrency_limit=config.max_batch)
    return demo, ctx

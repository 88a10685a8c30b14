"""The page: a model picker above the tabs, and `serve()` to run it safely on loopback.

Layout and wiring only; each tab lives in `bender/ui/tabs/` and every picture comes from
`bender.latent` / `bender.render` through the shared render queue.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from bender.ui.config import UIConfig
from bender.ui.context import AppContext, user_errors

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


class PickerTab:
    """The model picker: catalogue dropdown, refresh, upload, and the chosen model's description."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def model_info(self, key: str):
        """Description + the class number (shown for conditional models) + the cutoff slider's range."""
        loaded = self.ctx.library.get(key)
        c_dim, num_ws = int(loaded.G.c_dim), int(loaded.G.num_ws)
        classes = gr.update(maximum=c_dim - 1, value=0, visible=True, label=f"Class (0-{c_dim - 1})") if c_dim else \
            gr.update(value=None, visible=False)
        return loaded.describe_markdown(), classes, gr.update(maximum=num_ws)

    def refresh(self, key: str | None):
        choices = self.ctx.library.choices()
        keys = [k for _, k in choices]
        return gr.update(choices=choices, value=key if key in keys else (keys[0] if keys else None))

    @user_errors
    def upload(self, path: str | None):
        if not path:
            return gr.update()
        entry = self.ctx.library.add_upload(path, os.path.basename(path))
        return gr.update(choices=self.ctx.library.choices(), value=entry.key)

    def build(self) -> tuple[gr.Dropdown, gr.Markdown]:
        with gr.Row(equal_height=True):
            model = gr.Dropdown(choices=self.ctx.library.choices(), value=self.ctx.library.default_key(),
                                label="Model", scale=4, elem_id="model", filterable=True)
            refresh = gr.Button("↻ Refresh", scale=0, min_width=90, elem_id="refresh-models")
            upload = gr.UploadButton("Upload model (.pkl / .safetensors)", file_types=[".pkl", ".safetensors"],
                                     type="filepath", scale=1, elem_id="upload-model")
        info = gr.Markdown(elem_id="model-info")
        refresh.click(self.refresh, model, model, api_name="refresh_models", queue=False)
        upload.upload(self.upload, upload, model, api_name="upload_model", concurrency_id="load")
        return model, info


def build_app(config: UIConfig, ctx: AppContext | None = None) -> tuple[gr.Blocks, AppContext]:
    """The Gradio Blocks for `config` (not launched) and the context its handlers share."""
    from bender.ui.tabs.bend import BendTab
    from bender.ui.tabs.explore import ExploreTab
    from bender.ui.tabs.export import ExportTab
    from bender.ui.tabs.interpolate import InterpolateTab
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


@dataclass
class Server:
    """A running UI: its address, and how to stop it."""

    demo: gr.Blocks
    ctx: AppContext
    url: str
    guard: object | None = None

    def close(self) -> None:
        self.demo.close()
        if self.guard is not None:
            self.guard.uninstall()


class RefuseRemoteFiles:
    """ASGI middleware: Gradio's `/file=https://...` route would fetch any public URL for a visitor."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            from urllib.parse import unquote

            path = unquote(scope.get("path", ""))
            _, sep, rest = path.partition("/file=")
            if sep and rest.lower().lstrip("/").startswith(("http:", "https:", "//")):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("bender ui fetches no remote files", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve(config: UIConfig, host: str = "127.0.0.1", port: int | None = None, auth: tuple[str, str] | None = None,
          share: bool = False, block: bool = False, quiet: bool = True, guard_network: bool = True) -> Server:
    """Build and launch the UI. Loopback by default; no share link unless asked; no telemetry.

    With `guard_network` (and no share link) the process refuses outbound connections to anything
    but loopback (see `bender.ui.netguard`). `block=True` serves until Ctrl-C.
    """
    from starlette.middleware import Middleware

    from bender.ui.netguard import NetGuard

    guard = None
    if guard_network and not share:
        # uvicorn would pick uvloop when installed, whose connections bypass Python's socket module
        # (and so the guard): keep the standard event loop.
        sys.modules.setdefault("uvloop", None)
        guard = NetGuard(enforce=True).install()
    demo, ctx = build_app(config)
    config.exports_dir.mkdir(parents=True, exist_ok=True)
    _, url, share_url = demo.launch(
        server_name=host, server_port=port, share=share, auth=auth, prevent_thread_lock=True, quiet=quiet,
        show_error=True, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
        max_file_size=config.max_upload_bytes, allowed_paths=[str(config.exports_dir)],
        app_kwargs={"middleware": [Middleware(RefuseRemoteFiles)]}, theme=gr.themes.Default(), css=CSS,
        footer_links=["api", "settings"])
    server = Server(demo, ctx, share_url or url, guard)
    if block:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return server

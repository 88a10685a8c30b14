"""The model picker above the tabs: catalogue dropdown, refresh, upload, the model's description."""

from __future__ import annotations

import os

import gradio as gr

from bender.ui.context import AppContext, user_errors


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
        return gr.update(choices=choices, value=key if key in keys else self.ctx.library.default_key())

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

"""What every tab's handlers share: the config, the model catalogue and the render queue."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass, field

from bender.errors import BenderError
from bender.ui.batcher import RenderQueue
from bender.ui.config import UIConfig
from bender.ui.library import ModelLibrary
from bender.ui.pictures import Painter, Picture


@dataclass
class AppContext:
    config: UIConfig
    library: ModelLibrary
    painter: Painter
    queue: RenderQueue = field(default_factory=RenderQueue)

    @classmethod
    def from_config(cls, config: UIConfig) -> AppContext:
        library = ModelLibrary(config.models, config.models_dir, config.device, config.uploads_dir,
                               config.max_upload_bytes, config.cached_models)
        return cls(config, library, Painter(library), RenderQueue(config.max_batch))

    def paint(self, *pictures: Picture) -> list:
        """Check pictures here (a bad one fails alone), then render them on the shared worker, batched."""
        checked = [self.painter.check(p) for p in pictures]
        return self.queue.submit_many(self.painter.render, [(p.group(), p) for p in checked])

    def render_event(self) -> dict:
        """Event options for handlers that render: one concurrency group sized for batching."""
        return {"concurrency_id": "render", "concurrency_limit": self.config.max_batch}


def user_errors(fn: Callable) -> Callable:
    """Turn a BenderError (the user's input is wrong) into a Gradio toast instead of a server error.

    Gradio renders toast text as HTML, and messages may quote what a visitor typed: escaped.
    """
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BenderError as e:
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None

    return wrapper

"""Running the UI: `serve()` launches the page safely (loopback, no share link, no telemetry, no
outbound connections, only its own files served); `Server` is the handle to stop it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bender.ui.app import CSS, build_app, gr
from bender.ui.config import UIConfig
from bender.ui.context import AppContext


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
            if "uvloop" in sys.modules and sys.modules["uvloop"] is None:
                del sys.modules["uvloop"]  # the block serve() put in place


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
          share: bool = False, quiet: bool = True, guard_network: bool = True) -> Server:
    """Build and launch the UI in background threads; returns once it answers.

    Loopback by default; no share link unless asked; no telemetry. With `guard_network` (and no
    share link) the process refuses outbound connections to anything but loopback
    (`bender.ui.netguard`).
    """
    from starlette.middleware import Middleware

    from bender.ui.netguard import NetGuard

    guard = None
    if guard_network and not share:
        # uvicorn would pick uvloop when installed, whose connections bypass Python's socket module
        # (and so the guard): keep the standard event loop.
        sys.modules.setdefault("uvloop", None)
        guard = NetGuard(enforce=True).install()
    try:
        demo, ctx = build_app(config)
        config.exports_dir.mkdir(parents=True, exist_ok=True)
        _, url, share_url = demo.launch(
            server_name=host, server_port=port, share=share, auth=auth, prevent_thread_lock=True, quiet=quiet,
            show_error=True, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
            max_file_size=config.max_upload_bytes, allowed_paths=[str(config.exports_dir)],
            app_kwargs={"middleware": [Middleware(RefuseRemoteFiles)]}, theme=gr.themes.Default(), css=CSS,
            footer_links=["api", "settings"])
    except BaseException:
        if guard is not None:
            guard.uninstall()
        raise
    return Server(demo, ctx, share_url or url, guard)

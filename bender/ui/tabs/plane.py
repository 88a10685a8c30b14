"""Plane: a 2-D slice of W (origin + two axes), drawn as a grid map; click to go there, record a path.

The plane itself comes from a walk script (`bender.ui.walks.plane_script`) through `Walk`, so a path
recorded here and exported as a script renders the very same latents. The map is an N x N grid of
thumbnails covering [cu - e, cu + e] x [cv - e, cv + e]; u grows to the right, v upwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from bender.errors import BenderError
from bender.latent.planes import Plane, grid_coords
from bender.latent.walk import Walk
from bender.render.images import make_grid
from bender.ui.context import AppContext, user_errors
from bender.ui.pictures import Picture, Weights, with_metadata
from bender.ui.walks import AXES, PlaneAxes, model_ref, plane_script

THUMB_MAX = 128  # map thumbnails are at most this many pixels
MAP_PIXELS = 480  # smaller maps are enlarged to at least this width


@dataclass
class PlaneState:
    """One visitor's plane: its definition, view, the last map drawn, the current point and path."""

    model: str = ""
    axes: PlaneAxes | None = None
    class_idx: int | None = None
    plane: Plane | None = None
    center: tuple[float, float] = (0.0, 0.0)
    extent: float = 1.0
    cells: int = 5
    thumb: int = 0
    psi: float = 1.0
    base: Image.Image | None = None
    point: tuple[float, float] | None = None
    path: list[tuple[float, float]] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        (cu, cv), e = self.center, self.extent
        return cu - e, cu + e, cv - e, cv + e

    def uv_at(self, x: float, y: float) -> tuple[float, float]:
        """Map pixel (x, y) -> plane (u, v); cell centres are exactly the grid's coordinates."""
        u0, u1, v0, v1 = self.bounds()
        n, t = self.cells, self.thumb
        step_u = (u1 - u0) / (n - 1) if n > 1 else 0.0
        step_v = (v1 - v0) / (n - 1) if n > 1 else 0.0
        col, row = x / t - 0.5, y / t - 0.5
        return u0 + col * step_u if n > 1 else (u0 + u1) / 2, v1 - row * step_v if n > 1 else (v0 + v1) / 2

    def xy_of(self, u: float, v: float) -> tuple[float, float]:
        u0, u1, v0, v1 = self.bounds()
        n, t = self.cells, self.thumb
        col = (u - u0) / (u1 - u0) * (n - 1) if n > 1 else 0.0
        row = (v1 - v) / (v1 - v0) * (n - 1) if n > 1 else 0.0
        return (col + 0.5) * t, (row + 0.5) * t

    def info(self) -> str:
        lines = []
        if self.axes is not None:
            (cu, cv), e = self.center, self.extent
            lines.append(f"{self.axes.describe()}; view u {cu - e:+.2f}…{cu + e:+.2f}, v {cv - e:+.2f}…{cv + e:+.2f}")
        if self.point is not None:
            lines.append(f"point (u, v) = ({self.point[0]:+.3f}, {self.point[1]:+.3f})")
        if self.path:
            lines.append(f"path: {len(self.path)} points")
        return "\n\n".join(lines)


class PlaneTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    # -- building and drawing --------------------------------------------------------------------

    def _plane(self, state: PlaneState, model: str, axes: PlaneAxes, class_idx) -> PlaneState:
        if state.plane is not None and (state.model, state.axes, state.class_idx) == (model, axes, class_idx):
            return state
        entry = self.ctx.library.entry(model)
        walk = Walk(plane_script(model_ref(entry), axes, class_idx), device=self.ctx.library.device)
        return replace(state, model=model, axes=axes, class_idx=class_idx, plane=walk.plane, base=None, point=None,
                       path=[])

    def _picture(self, state: PlaneState, u: float, v: float, size: int | None = None) -> Picture:
        return Picture(weights=Weights(model=state.model), ws=state.plane.point(u, v), psi=state.psi,
                       class_idx=state.class_idx, size=size,
                       recipe=(("plane", state.axes.describe()), ("plane_u", f"{u:.6g}"), ("plane_v", f"{v:.6g}")))

    def _draw(self, state: PlaneState) -> Image.Image:
        """The last map with the path and current point drawn over it."""
        img = state.base.copy()
        draw = ImageDraw.Draw(img)
        r = max(2, state.thumb // 16)
        pts = [state.xy_of(u, v) for u, v in state.path]
        if len(pts) > 1:
            draw.line(pts, fill=(255, 210, 0), width=max(1, r // 2))
        for i, (x, y) in enumerate(pts):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 210, 0), outline=(0, 0, 0))
            draw.text((x + r + 1, y - r), str(i + 1), fill=(255, 255, 255))
        if state.point is not None:
            x, y = state.xy_of(*state.point)
            draw.ellipse([x - 2 * r, y - 2 * r, x + 2 * r, y + 2 * r], outline=(255, 255, 255), width=2)
            draw.ellipse([x - 2 * r - 1, y - 2 * r - 1, x + 2 * r + 1, y + 2 * r + 1], outline=(0, 0, 0), width=1)
        return with_metadata(img, {"plane": state.axes.describe(), "plane_view": state.info().split("\n")[0]})

    # -- handlers --------------------------------------------------------------------------------

    @user_errors
    def plane_map(self, model, axes, origin, u, v, center_u, center_v, extent, psi, class_idx,
                  state: PlaneState | None = None, favourites: list[Picture] | None = None):
        """Draw the N x N map of the plane for the current axes and view."""
        state = state or PlaneState(cells=self.ctx.config.plane_size)
        loaded = self.ctx.library.get(model)
        class_idx = None if not loaded.G.c_dim else (0 if class_idx in (None, "") else int(class_idx))
        if axes == "favourites":
            favs = [f for f in favourites or [] if f.weights.model == model]
            if len(favs) < 3:
                raise BenderError("'favourites' axes need 3 favourites of this model (origin, u, v): add them in "
                                  "Explore with ♥")
            origin, u, v = (f.seed for f in favs[:3])
        axes = PlaneAxes(str(axes), int(origin or 0), int(u or 0), int(v or 0))
        extent = float(extent)
        if not extent > 0:
            raise BenderError("the view's half-width (zoom) must be more than 0")
        state = self._plane(state, model, axes, class_idx)
        state = replace(state, center=(float(center_u or 0), float(center_v or 0)), extent=extent, psi=float(psi),
                        cells=self.ctx.config.plane_size)
        n = state.cells
        res = loaded.resolution
        size = min(res, THUMB_MAX)
        uv = grid_coords(n, n, state.bounds())
        ws = state.plane.points(uv)
        pictures = [Picture(weights=Weights(model=model), ws=w, psi=state.psi, class_idx=class_idx,
                            size=size if size < res else None) for w in ws]
        thumbs = [np.asarray(im) for im in self.ctx.paint(*pictures)]
        if thumbs[0].shape[0] != size:  # architectures without per-block RGB render full size
            thumbs = [np.asarray(Image.fromarray(t.squeeze()).resize((size, size), Image.LANCZOS)) for t in thumbs]
        thumbs = [t[..., None] if t.ndim == 2 else t for t in thumbs]
        grid = Image.fromarray(make_grid(np.stack(thumbs), cols=n).squeeze())
        # Shown at its own pixel size (Gradio maps clicks assuming images are never scaled up), so
        # small maps are enlarged here, by a whole factor to keep cells crisp.
        scale = max(1, -(-MAP_PIXELS // grid.width))
        if scale > 1:
            grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
        state = replace(state, thumb=size * scale, base=grid)
        return self._draw(state), state, state.info()

    @user_errors
    def plane_goto(self, u, v, record, state: PlaneState | None):
        """Go to (u, v): the point's picture, large; with `record`, also add it to the path."""
        if state is None or state.plane is None:
            raise BenderError("draw the plane's map first")
        u, v = float(u), float(v)
        state = replace(state, point=(u, v), path=[*state.path, (u, v)] if record else list(state.path))
        image = self.ctx.paint(self._picture(state, u, v))[0]
        return image, self._draw(state), state, state.info()

    def plane_click(self, record, state: PlaneState | None, evt: gr.SelectData):
        """A click on the map: its pixel -> (u, v) -> `plane_goto`."""
        if state is None or state.plane is None:
            raise gr.Error("draw the plane's map first")
        x, y = evt.index
        return self.plane_goto(*state.uv_at(float(x), float(y)), record, state)

    @staticmethod
    def zoom(factor: float, center_u, center_v, extent):
        return center_u, center_v, float(extent) * factor

    @staticmethod
    def pan(du: float, dv: float, center_u, center_v, extent):
        e = float(extent)
        return float(center_u) + du * e, float(center_v) + dv * e, e

    @staticmethod
    def center_on_point(state: PlaneState | None, center_u, center_v):
        if state is None or state.point is None:
            return center_u, center_v
        return state.point

    @user_errors
    def clear_path(self, state: PlaneState | None):
        if state is None or state.base is None:
            return None, state, ""
        state = replace(state, path=[])
        return self._draw(state), state, state.info()

    # -- layout ----------------------------------------------------------------------------------

    def build(self, model: gr.Dropdown, class_idx: gr.Number, favourites: gr.State) -> gr.State:
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                axes = gr.Radio(list(AXES), value="seeds", label="Axes from", elem_id="plane-axes")
                with gr.Row():
                    origin = gr.Number(label="Origin seed", value=0, precision=0, minimum=0, elem_id="plane-origin")
                    u = gr.Number(label="u: seed / direction", value=1, precision=0, minimum=0, elem_id="plane-u")
                    v = gr.Number(label="v: seed / direction", value=2, precision=0, minimum=0, elem_id="plane-v")
                gr.Markdown("*seeds*: u and v are seeds (the point (1, 0) is the u seed's picture); "
                            "*favourites*: the first three favourites' seeds; *SeFa / PCA*: direction numbers "
                            "(0 = strongest), one standard deviation per unit.")
                psi = gr.Slider(-1.0, 2.0, value=0.7, step=0.01, label="ψ", elem_id="plane-psi")
                with gr.Row():
                    center_u = gr.Number(label="centre u", value=0.0, elem_id="plane-cu")
                    center_v = gr.Number(label="centre v", value=0.0, elem_id="plane-cv")
                    extent = gr.Number(label="half-width", value=1.0, minimum=1e-6, elem_id="plane-extent")
                with gr.Row():
                    zin = gr.Button("Zoom in", size="sm", elem_id="plane-zoom-in")
                    zout = gr.Button("Zoom out", size="sm", elem_id="plane-zoom-out")
                    centre = gr.Button("Centre on point", size="sm", elem_id="plane-centre")
                with gr.Row():
                    left = gr.Button("←", size="sm", elem_id="plane-left")
                    right = gr.Button("→", size="sm", elem_id="plane-right")
                    up = gr.Button("↑", size="sm", elem_id="plane-up")
                    down = gr.Button("↓", size="sm", elem_id="plane-down")
                draw = gr.Button("Draw map", variant="primary", elem_id="plane-draw")
                record = gr.Checkbox(label="Record path (each click adds a point)", value=False,
                                     elem_id="plane-record")
                clear = gr.Button("Clear path", size="sm", elem_id="plane-clear-path")
                info = gr.Markdown(elem_id="plane-info")
            with gr.Column(scale=2):
                with gr.Row():
                    grid = gr.Image(label="Map (click to go there)", format="png", type="pil", interactive=False,
                                    height=480, elem_id="plane-map", buttons=["download"])
                    point = gr.Image(label="Point", format="png", type="pil", interactive=False, height=480,
                                     elem_id="plane-point", buttons=["download", "fullscreen"])
        map_inputs = [model, axes, origin, u, v, center_u, center_v, extent, psi, class_idx, state, favourites]
        gr.on([draw.click, axes.change, psi.release, center_u.change, center_v.change, extent.change],
              self.plane_map, map_inputs, [grid, state, info], api_name="plane_map", trigger_mode="always_last",
              **self.ctx.render_event())
        grid.select(self.plane_click, [record, state], [point, grid, state, info], api_name="plane_click",
                    **self.ctx.render_event())
        gu, gv = gr.Number(visible=False), gr.Number(visible=False)
        goto = gr.Button(visible=False)
        goto.click(self.plane_goto, [gu, gv, record, state], [point, grid, state, info], api_name="plane_goto",
                   **self.ctx.render_event())
        view = [center_u, center_v, extent]
        zin.click(lambda a, b, c: self.zoom(0.5, a, b, c), view, view, api_name="plane_zoom_in", queue=False)
        zout.click(lambda a, b, c: self.zoom(2.0, a, b, c), view, view, api_name="plane_zoom_out", queue=False)
        for button, (du, dv), name in ((left, (-0.5, 0), "left"), (right, (0.5, 0), "right"), (up, (0, 0.5), "up"),
                                       (down, (0, -0.5), "down")):
            button.click(lambda a, b, c, du=du, dv=dv: self.pan(du, dv, a, b, c), view, view,
                         api_name=f"plane_pan_{name}", queue=False)
        centre.click(self.center_on_point, [state, center_u, center_v], [center_u, center_v],
                     api_name="plane_centre", queue=False)
        clear.click(self.clear_path, state, [grid, state, info], api_name="plane_clear_path", queue=False)
        return state

"""Explore: seed, ψ with cutoff, noise mode, class, style mixing; one large picture; favourites."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import gradio as gr
from PIL import Image

from bender.ui.context import AppContext, user_errors
from bender.ui.pictures import Picture, Weights

MAX_SEED = 2**32 - 1


@dataclass
class ExploreControls:
    """The widgets other tabs read: the Explore settings are the session's 'current picture'."""

    seed: gr.Number
    psi: gr.Slider
    cutoff: gr.Slider
    noise: gr.Radio
    class_idx: gr.Number
    mix: gr.Checkbox
    mix_seed: gr.Number
    mix_layers: gr.Textbox
    image: gr.Image
    favourites: gr.State
    gallery: gr.Gallery

    def inputs(self) -> list:
        return [self.seed, self.psi, self.cutoff, self.noise, self.class_idx, self.mix, self.mix_seed,
                self.mix_layers]


def make_picture(model: str, seed, psi, cutoff, noise, class_idx, mix=False, mix_seed=None, mix_layers="8-",
                 weights: Weights | None = None) -> Picture:
    """Widget values -> a Picture (cutoff 0 means 'all layers'; no class for unconditional models)."""
    return Picture(weights=weights or Weights(model=model), seed=int(seed or 0), psi=float(psi),
                   cutoff=int(cutoff) if cutoff else None, noise_mode=str(noise),
                   class_idx=None if class_idx in (None, "") else int(class_idx),
                   mix_seed=int(mix_seed or 0) if mix else None, mix_layers=str(mix_layers or "8-"))


def fit_class(ctx: AppContext, p: Picture) -> Picture:
    """Drop a leftover class number when the model is unconditional."""
    if p.class_idx is not None and not ctx.library.get(p.weights.model).G.c_dim:
        return replace(p, class_idx=None)
    return p


def caption(p: Picture) -> str:
    text = f"seed {p.seed} · ψ {p.psi:g}"
    if p.cutoff:
        text += f" (first {p.cutoff})"
    if p.class_idx is not None:
        text += f" · class {p.class_idx}"
    if p.mix_seed is not None:
        text += f" · mix {p.mix_seed}@{p.mix_layers}"
    return text


class ExploreTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    # -- handlers --------------------------------------------------------------------------------

    def picture(self, model, *values) -> Picture:
        return fit_class(self.ctx, make_picture(model, *values))

    @user_errors
    def explore(self, model, seed, psi, cutoff, noise, class_idx, mix, mix_seed, mix_layers) -> Image.Image:
        """The large picture for the current settings (a PNG carrying its recipe)."""
        return self.ctx.paint(self.picture(model, seed, psi, cutoff, noise, class_idx, mix, mix_seed, mix_layers))[0]

    @staticmethod
    def random_seed() -> int:
        return random.randrange(0, MAX_SEED + 1)

    @user_errors
    def add_favourite(self, favourites: list[Picture], model, *values):
        """Keep the current picture as a keyframe (the gallery shows them in order)."""
        p = self.ctx.painter.check(self.picture(model, *values))
        favourites = [*favourites, p]
        return favourites, self.gallery_items(favourites)

    def gallery_items(self, favourites: list[Picture]) -> list[tuple[Image.Image, str]]:
        return list(zip(self.ctx.paint(*favourites), map(caption, favourites)))

    @staticmethod
    def clear_favourites():
        return [], []

    @user_errors
    def remove_favourite(self, favourites: list[Picture], index):
        index = -1 if index is None else int(index)
        favourites = [f for i, f in enumerate(favourites) if i != index]
        return favourites, self.gallery_items(favourites)

    @staticmethod
    def pick_favourite(favourites: list[Picture], evt: gr.SelectData):
        """Clicking a favourite puts its settings back into the controls."""
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(favourites or []):
            return (gr.update(),) * 10
        p = favourites[evt.index]
        return (p.weights.model, p.seed, p.psi, p.cutoff or 0, p.noise_mode,
                gr.update(value=p.class_idx) if p.class_idx is not None else gr.update(),
                p.mix_seed is not None, p.mix_seed or 0, p.mix_layers, evt.index)

    # -- layout ----------------------------------------------------------------------------------

    def build(self, model: gr.Dropdown) -> ExploreControls:
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                with gr.Row():
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED,
                                     elem_id="seed", scale=3)
                    rand = gr.Button("🎲 Random", elem_id="random-seed", scale=1, min_width=60)
                psi = gr.Slider(-1.0, 2.0, value=1.0, step=0.01, label="ψ (truncation)", elem_id="psi")
                cutoff = gr.Slider(0, 32, value=0, step=1, label="ψ cutoff: truncate only the first N layers (0 = all)",
                                   elem_id="cutoff")
                noise = gr.Radio(["const", "random", "none"], value="const", label="Noise", elem_id="noise")
                class_idx = gr.Number(value=None, precision=0, minimum=0, label="Class", visible=False,
                                      elem_id="class")
                with gr.Accordion("Style mixing", open=False):
                    mix = gr.Checkbox(label="Mix in another seed's styles", value=False, elem_id="mix")
                    mix_seed = gr.Number(label="Mix seed", value=1, precision=0, minimum=0, maximum=MAX_SEED,
                                         elem_id="mix-seed")
                    mix_layers = gr.Textbox(label="Layers taken from the mix seed (ws range: 0-3 coarse, 8- fine)",
                                            value="8-", elem_id="mix-layers")
                fav = gr.Button("♥ Add to favourites", elem_id="add-favourite")
            with gr.Column(scale=2):
                image = gr.Image(label="Picture", format="png", type="pil", height=512, interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="explore-image")
        gallery = gr.Gallery(label="Favourites (keyframes; click one to go back to it)", columns=8, height=220,
                             allow_preview=False, fit_columns=False, object_fit="contain", elem_id="favourites",
                             format="png", interactive=False)
        with gr.Row():
            selected = gr.Number(value=-1, visible=False, precision=0)
            remove = gr.Button("Remove selected favourite", size="sm", elem_id="remove-favourite")
            clear = gr.Button("Clear favourites", size="sm", elem_id="clear-favourites")
        favourites = gr.State([])
        c = ExploreControls(seed, psi, cutoff, noise, class_idx, mix, mix_seed, mix_layers, image, favourites,
                            gallery)

        inputs = [model, *c.inputs()]
        gr.on([seed.change, psi.change, cutoff.change, noise.change, class_idx.change, mix.change, mix_seed.change,
               mix_layers.submit], self.explore, inputs, image, api_name="explore", trigger_mode="always_last",
              show_progress="hidden", **self.ctx.render_event())
        rand.click(self.random_seed, None, seed, api_name="random_seed", queue=False)
        fav.click(self.add_favourite, [favourites, *inputs], [favourites, gallery], api_name="add_favourite",
                  **self.ctx.render_event())
        clear.click(self.clear_favourites, None, [favourites, gallery], api_name="clear_favourites", queue=False)
        remove.click(self.remove_favourite, [favourites, selected], [favourites, gallery], api_name="remove_favourite",
                     **self.ctx.render_event())
        gallery.select(self.pick_favourite, favourites,
                       [model, seed, psi, cutoff, noise, class_idx, mix, mix_seed, mix_layers, selected],
                       api_name="pick_favourite", queue=False)
        return c

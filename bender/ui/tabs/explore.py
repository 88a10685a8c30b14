"""Explore: seed, ψ with cutoff, noise mode, class; one large picture; favourites as keyframes."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import gradio as gr
from PIL import Image

from bender.ui.context import AppContext, user_errors
from bender.ui.stills import Still, render_stills

MAX_SEED = 2**32 - 1


@dataclass
class ExploreControls:
    """The widgets other tabs read (the Explore settings are the session's 'current picture')."""

    seed: gr.Number
    psi: gr.Slider
    cutoff: gr.Slider
    noise: gr.Radio
    class_idx: gr.Number
    image: gr.Image
    favourites: gr.State
    gallery: gr.Gallery

    def inputs(self) -> list:
        return [self.seed, self.psi, self.cutoff, self.noise, self.class_idx]


def make_still(model: str, seed, psi, cutoff, noise, class_idx) -> Still:
    """Widget values -> a Still (cutoff 0 means 'all layers'; class is unused for unconditional models)."""
    return Still(model=model, seed=int(seed or 0), psi=float(psi), cutoff=int(cutoff) if cutoff else None,
                 noise_mode=str(noise), class_idx=None if class_idx in (None, "") else int(class_idx))


class ExploreTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    # -- handlers --------------------------------------------------------------------------------

    def checked(self, still: Still) -> Still:
        loaded = self.ctx.library.get(still.model)
        if not loaded.G.c_dim and still.class_idx is not None:
            still = replace(still, class_idx=None)
        return still.check(loaded)

    def render(self, *stills: Still) -> list[Image.Image]:
        """Pictures for stills, through the shared render queue (batched with other visitors')."""
        stills = [self.checked(s) for s in stills]
        return self.ctx.queue.submit_many(self._render_batch, [(s.group(), s) for s in stills])

    def _render_batch(self, group: tuple, stills: list[Still]) -> list[Image.Image]:
        return render_stills(self.ctx.library, group, stills)

    @user_errors
    def explore(self, model, seed, psi, cutoff, noise, class_idx) -> Image.Image:
        """The large picture for the current settings (PNG carrying its recipe)."""
        return self.render(make_still(model, seed, psi, cutoff, noise, class_idx))[0]

    @staticmethod
    def random_seed() -> int:
        return random.randrange(0, MAX_SEED + 1)

    @user_errors
    def add_favourite(self, favourites: list[Still], model, seed, psi, cutoff, noise, class_idx):
        """Keep the current picture as a keyframe (the gallery shows them in order)."""
        still = self.checked(make_still(model, seed, psi, cutoff, noise, class_idx))
        favourites = [*favourites, still]
        return favourites, self.gallery_items(favourites)

    def gallery_items(self, favourites: list[Still]) -> list[tuple[Image.Image, str]]:
        return list(zip(self.render(*favourites), map(caption, favourites)))

    @staticmethod
    def clear_favourites():
        return [], []

    @user_errors
    def remove_favourite(self, favourites: list[Still], index):
        index = int(index)
        favourites = [f for i, f in enumerate(favourites) if i != index]
        return favourites, self.gallery_items(favourites)

    @staticmethod
    def pick_favourite(favourites: list[Still], evt: gr.SelectData):
        """Clicking a favourite puts its settings back into the controls."""
        s = favourites[evt.index]
        return (s.model, s.seed, s.psi, s.cutoff or 0, s.noise_mode,
                gr.update(value=s.class_idx) if s.class_idx is not None else gr.update(), evt.index)

    # -- layout ----------------------------------------------------------------------------------

    def build(self, model: gr.Dropdown) -> ExploreControls:
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
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
                fav = gr.Button("♥ Add to favourites", elem_id="add-favourite")
            with gr.Column(scale=2):
                image = gr.Image(label="Picture", format="png", type="pil", height=512, interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="explore-image")
        with gr.Row():
            gallery = gr.Gallery(label="Favourites (keyframes; click one to go back to it)", columns=8, height=180,
                                 allow_preview=False, elem_id="favourites", format="png")
        with gr.Row():
            selected = gr.Number(value=-1, visible=False, precision=0)
            remove = gr.Button("Remove selected favourite", size="sm", elem_id="remove-favourite")
            clear = gr.Button("Clear favourites", size="sm", elem_id="clear-favourites")
        favourites = gr.State([])
        controls = ExploreControls(seed, psi, cutoff, noise, class_idx, image, favourites, gallery)

        render_inputs = [model, *controls.inputs()]
        gr.on([seed.change, psi.change, cutoff.change, noise.change, class_idx.change], self.explore,
              render_inputs, image, api_name="explore", trigger_mode="always_last", show_progress="hidden",
              concurrency_id="render", concurrency_limit=self.ctx.config.max_batch)
        rand.click(self.random_seed, None, seed, api_name="random_seed", queue=False)
        fav.click(self.add_favourite, [favourites, *render_inputs], [favourites, gallery], api_name="add_favourite",
                  concurrency_id="render")
        clear.click(self.clear_favourites, None, [favourites, gallery], api_name="clear_favourites", queue=False)
        remove.click(self.remove_favourite, [favourites, selected], [favourites, gallery], api_name="remove_favourite",
                     concurrency_id="render")
        gallery.select(self.pick_favourite, favourites, [model, seed, psi, cutoff, noise, class_idx, selected],
                       api_name="pick_favourite", queue=False)
        return controls


def caption(s: Still) -> str:
    text = f"seed {s.seed} · ψ {s.psi:g}"
    if s.cutoff:
        text += f" (first {s.cutoff})"
    if s.class_idx is not None:
        text += f" · class {s.class_idx}"
    return text

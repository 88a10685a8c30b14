"""Bend: blend model A (the picked model) toward model B by α in [-1, 2], with a per-resolution
profile, and bend the network itself (an op on one layer's feature maps). Live: every change
re-renders the Explore tab's current picture through `bender.latent.blend` / `bender.latent.bend`."""

from __future__ import annotations

import gradio as gr

from bender.cli.common import parse_int_list
from bender.errors import BenderError
from bender.latent.bend import OPS, Bend, bendable_layers, make_op
from bender.ui.context import AppContext, user_errors
from bender.ui.pictures import Weights, bend_key
from bender.ui.tabs.explore import ExploreControls, fit_class, make_picture
from bender.ui.walks import BendSettings, model_ref

RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
NO_MODEL_B = "(none: bends only)"


def parse_params(text: str | None) -> dict:
    """'dx=0.25 dy=0, wrap=false' -> {'dx': 0.25, 'dy': 0, 'wrap': False} (types checked by make_op)."""
    out: dict = {}
    for part in str(text or "").replace(",", " ").split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise BenderError(f"op parameter '{part}': write name=value, e.g. dx=0.25")
        low = value.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
            continue
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def op_help(op: str) -> str:
    import dataclasses

    cls = OPS.get(op)
    if cls is None:
        return ""
    params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls)) or "no parameters"
    return f"**{op}**: {(cls.__doc__ or '').strip()} Parameters: {params}"


def make_bend(layer, op, params, amount, fraction, channels) -> Bend:
    chosen = parse_int_list(channels) if str(channels or "").strip() else None
    frac = None if chosen is not None or fraction is None or float(fraction) >= 1 else float(fraction)
    if frac is not None and frac <= 0:
        raise BenderError("channel share must be more than 0 (1 = all channels)")
    return Bend(layer=str(layer), op=make_op(str(op), **parse_params(params)), amount=float(amount), channels=chosen,
                channel_fraction=frac)


class BendTab:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def settings(self, model, model_b, alpha, res_weights, layer, op, params, amount, fraction, channels, apply,
                 kept: list[Bend]) -> tuple[Weights, BendSettings]:
        loaded = self.ctx.library.get(model)
        b_key = None if model_b in (None, "", NO_MODEL_B) else str(model_b)
        per_res = tuple((r, float(w)) for r, w in zip(RESOLUTIONS, res_weights)
                        if r <= loaded.resolution and w is not None and float(w) != 1.0)
        bends = list(kept or [])
        if apply:
            bends.append(make_bend(layer, op, params, amount, fraction, channels))
        names = [b.name for b in bends]
        for i, b in enumerate(bends):  # a kept bend and the edited one may share op@layer
            if names.count(b.name) > 1:
                b.name = f"{b.name}#{i + 1}"
        weights = Weights(model=model, model_b=b_key, alpha=float(alpha) if b_key else 0.0,
                          per_resolution=per_res if b_key else (), bends=tuple(bend_key(b) for b in bends))
        settings = BendSettings(model_b=model_ref(self.ctx.library.entry(b_key)) if b_key else None,
                                alpha=float(alpha), per_resolution=dict(per_res), bends=bends)
        return weights, settings

    @user_errors
    def bend_image(self, model, model_b, alpha, r4, r8, r16, r32, r64, r128, r256, r512, r1024, layer, op, params,
                   amount, fraction, channels, apply, kept, seed, psi, cutoff, noise, class_idx, mix, mix_seed,
                   mix_layers):
        """The current Explore picture with model B blended in by α and the bends applied."""
        res_weights = (r4, r8, r16, r32, r64, r128, r256, r512, r1024)
        weights, settings = self.settings(model, model_b, alpha, res_weights, layer, op, params, amount, fraction,
                                          channels, apply, kept)
        picture = fit_class(self.ctx, make_picture(model, seed, psi, cutoff, noise, class_idx, mix, mix_seed,
                                                   mix_layers, weights=weights))
        return self.ctx.paint(picture)[0], settings

    @user_errors
    def keep_bend(self, kept: list[Bend], model, layer, op, params, amount, fraction, channels):
        bend = make_bend(layer, op, params, amount, fraction, channels)
        from bender.latent.bend import BendSet

        BendSet([bend]).validate(self.ctx.library.get(model).G)
        kept = [*(kept or []), bend]
        return kept, describe(kept), False

    @staticmethod
    def clear_bends():
        return [], describe([])

    @user_errors
    def bend_layout(self, model, model_b):
        """Fit the tab to the picked model: model B choices, resolutions, layers."""
        loaded = self.ctx.library.get(model)
        layers = bendable_layers(loaded.G)
        choices = [(NO_MODEL_B, NO_MODEL_B), *[(label, key) for label, key in self.ctx.library.choices()
                                                if key != model]]
        keep = model_b if model_b in [k for _, k in choices] else NO_MODEL_B
        sliders = [gr.update(visible=r <= loaded.resolution) for r in RESOLUTIONS]
        default_layer = next((name for name in layers if name.endswith(".conv1")), layers[0])
        return (gr.update(choices=choices, value=keep), gr.update(choices=layers, value=default_layer), *sliders)

    def build(self, model, explore: ExploreControls) -> gr.State:
        kept = gr.State([])
        settings_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                # custom values allowed: the choices follow the picked model; handlers check every key
                model_b = gr.Dropdown(choices=[(NO_MODEL_B, NO_MODEL_B), *self.ctx.library.choices()],
                                      value=NO_MODEL_B, label="Model B (blend toward it)", elem_id="bend-model-b",
                                      allow_custom_value=True)
                alpha = gr.Slider(-1.0, 2.0, value=0.0, step=0.01, label="α (0 = A, 1 = B, beyond = extrapolate)",
                                  elem_id="bend-alpha")
                with gr.Accordion("Per-resolution profile (share of α at each block)", open=False):
                    res = [gr.Slider(0.0, 2.0, value=1.0, step=0.05, label=f"{r}×{r}", elem_id=f"bend-res-{r}")
                           for r in RESOLUTIONS]
                gr.Markdown("**Network bending**: an op on one layer's feature maps")
                apply = gr.Checkbox(label="Apply this bend", value=False, elem_id="bend-apply")
                layer = gr.Dropdown(choices=[], label="Layer", elem_id="bend-layer", allow_custom_value=True)
                op = gr.Dropdown(list(OPS), value="rotate", label="Op", elem_id="bend-op")
                op_doc = gr.Markdown(op_help("rotate"))
                params = gr.Textbox(label="Op parameters (name=value; blank = defaults)", value="",
                                    elem_id="bend-params")
                amount = gr.Slider(-2.0, 2.0, value=1.0, step=0.01, label="Amount", elem_id="bend-amount")
                fraction = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Share of channels (1 = all)",
                                     elem_id="bend-fraction")
                channels = gr.Textbox(label="…or these channels (e.g. 0-7,12)", value="", elem_id="bend-channels")
                with gr.Row():
                    keep = gr.Button("Keep this bend", size="sm", elem_id="bend-keep")
                    clear = gr.Button("Clear kept bends", size="sm", elem_id="bend-clear")
                kept_info = gr.Markdown(describe([]), elem_id="bend-kept")
            with gr.Column(scale=2):
                image = gr.Image(label="Bent picture", format="png", type="pil", height=512, interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="bend-image")
        inputs = [model, model_b, alpha, *res, layer, op, params, amount, fraction, channels, apply, kept,
                  *explore.inputs()]
        gr.on([model_b.change, alpha.change, *[r.release for r in res], layer.change, op.change, params.submit,
               amount.change, fraction.release, channels.submit, apply.change, kept.change],
              self.bend_image, inputs, [image, settings_state], api_name="bend_image", trigger_mode="always_last",
              show_progress="hidden", **self.ctx.render_event())
        op.change(op_help, op, op_doc, queue=False, api_name=False)
        keep.click(self.keep_bend, [kept, model, layer, op, params, amount, fraction, channels],
                   [kept, kept_info, apply], api_name="keep_bend", queue=False)
        clear.click(self.clear_bends, None, [kept, kept_info], api_name="clear_bends", queue=False)
        model.change(self.bend_layout, [model, model_b], [model_b, layer, *res], api_name="bend_layout",
                     queue=False)
        self.image, self.inputs, self.layout_outputs = image, inputs, [model_b, layer, *res]
        self.model_b = model_b
        self.settings_state = settings_state
        return settings_state


def describe(kept: list[Bend]) -> str:
    if not kept:
        return "*no kept bends*"
    return "Kept bends: " + "; ".join(f"{b.name} ×{b.amount:g}" for b in kept)

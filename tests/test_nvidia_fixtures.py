"""Every NVIDIA fixture network loads without executing code and reproduces NVIDIA's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bender.errors import BenderError
from bender.io import load

SG2_CASES = ["sg2ada-res32-fp32", "sg2ada-res64-fp16-cond", "sg2ada-res32-orig-skipD", "sg3-stylegan2-res32"]


@pytest.fixture(scope="module", params=SG2_CASES)
def case(request, fixtures_dir):
    name = request.param
    model = load(fixtures_dir / "networks" / f"{name}.pkl")
    ref = dict(np.load(fixtures_dir / "networks" / f"{name}.npz"))
    side = json.loads((fixtures_dir / "networks" / f"{name}.json").read_text())
    return name, model, ref, side


def close(out: torch.Tensor, ref: np.ndarray, what: str) -> None:
    # The fixture README's suggested check for a re-implementation in fp32.
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max())),
                               err_msg=what)


def test_state_dicts_match_nvidia_names_shapes_and_order(case):
    _, model, _, side = case
    for net in ("G", "D", "G_ema"):
        expected = [(n, s, d) for n, s, d in side["networks"][net]["state_dict"]]
        ours = [(n, list(t.shape), str(t.dtype).replace("torch.", "")) for n, t in
                getattr(model, net).state_dict().items()]
        assert ours == expected


def test_derived_attributes_match_what_nvidia_constructors_stored(case):
    _, model, _, side = case
    for key, net in (("modules_G_ema", model.G_ema), ("modules_D", model.D)):
        modules = dict(net.named_modules())
        for entry in side[key]:
            path = "" if entry["path"] == "<root>" else entry["path"]
            module = modules[path]
            for attr in ("weight_gain", "act_gain", "conv_clamp", "use_fp16", "up", "down", "num_ws",
                         "num_conv", "num_torgb", "bias_gain", "group_size", "resolution", "in_channels",
                         "architecture", "is_last", "cmap_dim", "first_layer_idx", "num_layers", "padding"):
                if attr in entry["attributes"] and hasattr(module, attr):
                    want = entry["attributes"][attr][1]
                    got = getattr(module, attr)
                    if isinstance(want, float):
                        assert got == pytest.approx(want, rel=1e-12), (path, attr)
                    else:
                        assert got == want, (path, attr, got, want)


def test_mapping_matches_reference(case):
    _, model, ref, _ = case
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        close(model.G_ema.mapping(z, c), ref["ws"], "ws")
        close(model.G_ema.mapping(z, c, truncation_psi=0.5), ref["ws_psi05"], "ws_psi05")


def test_images_match_reference(case):
    _, model, ref, _ = case
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        const = model.G_ema(z, c, noise_mode="const", force_fp32=True)
        close(const, ref["img_const"], "img_const")
        close(model.G_ema(z, c, truncation_psi=0.5, noise_mode="const", force_fp32=True), ref["img_const_psi05"],
              "img_const_psi05")
        close(model.G_ema(z, c, noise_mode="none", force_fp32=True), ref["img_none"], "img_none")
        close(model.G(z, c, noise_mode="const", force_fp32=True), ref["g_img_const"], "g_img_const")
        # synthesis alone from the reference ws
        close(model.G_ema.synthesis(torch.from_numpy(ref["ws"]), noise_mode="const"), ref["img_const"], "synthesis")
        # The native (fp16) reference: our CPU path is fp32, within the README's fp16 tolerance.
        np.testing.assert_allclose(model.G_ema(z, c, noise_mode="const").numpy(), ref["img_native"], atol=0.05)


def test_discriminator_matches_reference(case):
    _, model, ref, _ = case
    img, c = torch.from_numpy(ref["img_const"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        logits = model.D(img, c, force_fp32=True)
    close(logits, ref["d_logits"], "d_logits")
    np.testing.assert_allclose(logits.numpy(), ref["d_logits_native"], atol=0.01)


def test_the_mixups_the_tolerances_must_catch_are_caught(case):
    """Sanity: the reference fields are far apart, so our checks can tell them apart."""
    _, model, ref, _ = case
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = model.G_ema(z, c, noise_mode="none").numpy()
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(img, ref["img_const"], rtol=1e-5, atol=1e-5 * np.abs(ref["img_const"]).max())


def test_augment_pipe_p_is_read(fixtures_dir):
    model = load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")
    ref = np.load(fixtures_dir / "networks" / "sg2ada-res32-fp32.npz")
    assert model.augment_p == float(ref["augment_p"])
    assert model.training_set_kwargs["resolution"] == 32
    assert model.lineage.source_format == "nvidia-pickle"


def test_stylegan3_generator_is_refused_clearly(fixtures_dir):
    with pytest.raises(BenderError, match="StyleGAN3"):
        load(fixtures_dir / "networks" / "sg3-stylegan3t-res32.pkl")

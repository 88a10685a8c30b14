"""Walk scripts -> frames -> files, end to end on real (tiny) models."""

from __future__ import annotations

import copy
import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from bender.errors import BenderError
from bender.io import Model, load, save_model
from bender.latent import paths
from bender.latent import script as S
from bender.latent.noise import make_noise, noise_inputs
from bender.latent.seeds import zs_from_seeds
from bender.latent.spaces import save_ws, seeds_to_ws
from bender.latent.walk import Walk
from bender.nets import Generator, GeneratorConfig
from bender.nets.config import MappingConfig, SynthesisConfig
from bender.render import video
from bender.render.frames import render_frames, synthesize
from bender.render.images import to_uint8
from bender.render.script import render_script, sidecar_path
from bender.render.timeline import render_timeline, timeline_strip


@pytest.fixture(scope="module")
def pkl(fixtures_dir):
    return str(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")


def script(pkl, text: str) -> S.WalkScript:
    return S.loads(f"model: {pkl}\n" + text)


def frame_hashes(walk_script: S.WalkScript, **kw) -> list[str]:
    return [hashlib.sha256(f.tobytes()).hexdigest() for f in render_frames(Walk(walk_script), **kw)]


RICH = """
loop: true
frames: 3
psi: 0.7
noise: random
seed: 5
interpolation: cubic
easing: sine
batch: 4
bends: [{name: spin, layer: synthesis.b16.conv1, op: rotate, degrees: 60, amount: 0}]
keyframes:
  - seed: 1
  - {seed: 2, psi: 0.4, noise_strength: 0.3, bends: {spin: 1}}
  - {seed: 3, frames: 4}
"""


def test_script_frames_are_bit_identical_across_runs(pkl):
    first = frame_hashes(script(pkl, RICH))
    second = frame_hashes(script(pkl, RICH))
    assert len(first) == 10
    assert first == second
    assert len(set(first)) == 10  # every frame differs (animated, random noise)
    changed = frame_hashes(script(pkl, RICH.replace("seed: 5", "seed: 6")))
    assert changed != first  # the seed drives the random noise


def test_frames_match_the_generator(pkl):
    s = script(pkl, "space: z\npsi: 0.5\nbatch: 1\nkeyframes: [4, 9]\nframes: 2")
    frames = list(render_frames(Walk(s)))
    assert len(frames) == 3
    G = load(pkl).G_ema
    for frame, seed in ((frames[0], 4), (frames[2], 9)):
        with torch.no_grad():
            ref = to_uint8(G(zs_from_seeds([seed], G.z_dim), None, truncation_psi=0.5, noise_mode="const"))[0]
        assert np.abs(frame.astype(int) - ref.astype(int)).max() <= 1
        assert np.mean(frame != ref) < 0.01


@pytest.mark.parametrize("space", ["z", "w"])
def test_walk_frames_are_host_tensors_equal_to_a_fresh_slerp(pkl, space):
    """Frames interpolate on the host through one cached Arc per segment (the renderer copies each
    batch to the device at once); each must equal slerp of its segment's keyframes, wrap-around
    segment of a loop included."""
    walk = Walk(script(pkl, f"space: {space}\nloop: true\nframes: 3\nkeyframes: [1, 2, 3]"))
    center = walk.w_avg if space == "w" else None
    for i in range(walk.num_frames):
        st = walk.frame(i)
        pos = walk.schedule.position(i)
        k = walk.keys.shape[0]
        ref = paths.slerp(walk.keys[pos.segment % k], walk.keys[(pos.segment + 1) % k], pos.eased, center)
        assert st.latent.device.type == "cpu" and st.latent.dtype == torch.float32
        assert torch.equal(st.latent, ref)


def test_default_const_noise_takes_the_networks_own_buffers(pkl):
    """At the default strength 1 the renderer skips per-image copies of the const noise: the same
    numbers, so the same pixels as the per-image path that animated strengths take."""
    G = load(pkl).G_ema
    ws = seeds_to_ws(G, [1, 2, 3], None, "cpu")
    with torch.no_grad():
        own = synthesize(G, ws, "const")
        noise = make_noise(G, [0, 1, 2], "const", [1.0, 1.0, 1.0])
        with noise_inputs(G, noise):
            per_image = synthesize(G, ws, "const")
    assert torch.equal(own, per_image)


def test_looping_walk_frame_count_and_closure(pkl):
    walk = Walk(script(pkl, "loop: true\nframes: 5\nkeyframes: [1, 2, 3]\ninterpolation: slerp"))
    assert walk.num_frames == 15
    f0 = walk.frame(0).latent
    last = walk.frame(14).latent
    assert not torch.equal(f0, last)
    # one step past the end is frame 0 again: the schedule wraps instead of repeating it
    pos = walk.schedule.position(15)
    assert (pos.segment, pos.u) == (0, 0.0)
    with pytest.raises(IndexError):
        walk.frame(15)


def test_render_script_writes_video_sidecar_and_metadata(pkl, tmp_path):
    s = script(pkl, RICH)
    result = render_script(s, tmp_path / "walk.mp4")
    assert result.video.frames == 10
    meta = video.probe(tmp_path / "walk.mp4")
    assert meta["frames"] == 10 and meta["fps"] == pytest.approx(24)
    tags = video.read_metadata(tmp_path / "walk.mp4")
    assert tags["bender_script_sha256"] == s.sha256() == result.script_sha256
    side = sidecar_path(tmp_path / "walk.mp4")
    assert side == tmp_path / "walk.mp4.yaml" and side.exists()
    again = S.load(side)
    assert again.sha256() == s.sha256()
    # replaying the written script gives the same frames, bit for bit
    replay = render_script(again, tmp_path / "replay")
    assert replay.video.frames_sha256 == result.video.frames_sha256
    embedded = S.loads(tags["bender_script"])
    assert embedded.sha256() == s.sha256()


def test_grid_and_style_mixing_tiles(pkl):
    s = script(pkl, "keyframes: [{seeds: [1, 2, 3, 4, 5, 6], mix: {seeds: [7, 7, 7, 8, 8, 8], layers: 0-3}}]\ncols: 3")
    walk = Walk(s)
    assert walk.num_frames == 1 and walk.tiles == 6
    (frame,) = render_frames(walk)
    assert frame.shape == (64, 96, 3)
    ws = walk.frame(0).latent
    assert torch.equal(ws[0, :4], ws[1, :4]) and not torch.equal(ws[0, :4], ws[3, :4])
    assert torch.allclose(ws[0, 4:], seeds_to_ws(walk.G, [1])[0, 4:], atol=1e-6)


def test_plane_map_centre_is_the_origin(pkl):
    points = "[[-1, 1], [0, 1], [1, 1], [-1, 0], [0, 0], [1, 0], [-1, -1], [0, -1], [1, -1]]"
    s = script(pkl, f"plane: {{seeds: [1, 2, 3]}}\nkeyframes: [{{points: {points}}}]\nbatch: 9")
    (frame,) = render_frames(Walk(s))
    assert frame.shape == (96, 96, 3)
    at_origin = script(pkl, f"plane: {{seeds: [1, 2, 3]}}\nkeyframes: [{{points: {[[0, 0]] * 9}}}]\nbatch: 9")
    (origin,) = render_frames(Walk(at_origin))
    assert np.array_equal(frame[32:64, 32:64], origin[32:64, 32:64])
    assert not np.array_equal(frame[:32, :32], origin[:32, :32])
    (seed1,) = render_frames(Walk(script(pkl, "keyframes: [1]")))  # the origin is seed 1's w
    assert np.abs(seed1.astype(int) - origin[32:64, 32:64].astype(int)).max() <= 1


def test_saved_w_and_direction_keyframes(pkl, tmp_path):
    G = load(pkl).G_ema
    save_ws(tmp_path / "w.npy", seeds_to_ws(G, [12])[0])
    (tmp_path / "walk.yaml").write_text(
        f"model: {pkl}\ndirections: {{d: {{kind: pca, index: 0, samples: 500}}}}\n"
        "keyframes: [{w: w.npy}, {seed: 12, directions: {d: 1.5}}]\nframes: 2\n")
    walk = Walk(S.load(tmp_path / "walk.yaml"))
    start, end = walk.frame(0).latent, walk.frame(2).latent
    assert torch.equal(start, seeds_to_ws(G, [12]))
    offset = (end - start)[0]
    assert torch.allclose(offset, offset[:1].expand_as(offset), atol=1e-5)  # a W direction: same on every layer
    assert float(offset[0].norm()) > 0


def _copy_model(model, seed=None):
    out = Model(G_ema=copy.deepcopy(model.G_ema), lineage=dataclasses.replace(model.lineage))
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, t in out.G_ema.state_dict().items():
                if t.is_floating_point() and "resample_filter" not in name:
                    t.add_(torch.randn(t.shape, generator=g) * 0.3)
    return out


def test_blend_walk_endpoints_equal_each_model(pkl, tmp_path):
    a = load(pkl)
    b_path = save_model(_copy_model(a, seed=3), tmp_path / "b.safetensors")
    base = "keyframes: [{seeds: [1, 2]}]\npsi: 0.8\n"
    frames_a = frame_hashes(script(pkl, base))
    frames_b = frame_hashes(S.loads(f"model: {b_path}\n" + base))
    blend = S.loads(f"model: {pkl}\nmodel_b: {b_path}\n" + base.replace("{seeds: [1, 2]}", "{seeds: [1, 2], alpha: 0}"))
    for alpha, expected in ((0.0, frames_a), (1.0, frames_b)):
        blend.keyframes[0].alpha = alpha
        assert frame_hashes(blend) == expected
    blend.keyframes[0].alpha = 0.5
    assert frame_hashes(blend) not in (frames_a, frames_b)


def test_timeline_render_hits_every_snapshot(pkl, tmp_path):
    a = load(pkl)
    run = tmp_path / "run"
    snaps = []
    for i, kimg in enumerate((0.0, 2.0, 4.0)):
        m = _copy_model(a, seed=20 + i if i else None)
        snaps.append(save_model(m, run / "checkpoints" / f"snapshot-{kimg:010.3f}.safetensors"))
    result = render_timeline(run, seeds=[1, 2], frames_per_snapshot=2, psi=0.7)
    assert result.video.path == run / "timeline.mp4"
    assert video.probe(result.video.path)["frames"] == 5
    walk = Walk(S.load(result.script_path))
    frames = list(render_frames(walk))
    for k, snap in enumerate(snaps):
        ref = S.WalkScript(model=str(snap), space="z", psi=0.7, keyframes=[S.Keyframe(seeds=[1, 2])])
        (expected,) = render_frames(Walk(ref))
        assert np.array_equal(frames[2 * k], expected), f"frame {2 * k} should be snapshot {k}"
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[2])

    # The still version: a column per snapshot, each column that snapshot's keyframe, stacked.
    strip = np.asarray(Image.open(timeline_strip(run, seeds=[1, 2], psi=0.7, pad=2)))
    r = a.g_config.img_resolution
    assert strip.shape[:2] == (2 * r, 3 * r + 2 * 2)
    for k, snap in enumerate(snaps):
        ref = S.WalkScript(model=str(snap), space="z", psi=0.7, cols=1, keyframes=[S.Keyframe(seeds=[1, 2])])
        (expected,) = render_frames(Walk(ref))
        assert np.array_equal(strip[:, k * (r + 2): k * (r + 2) + r], expected), f"column {k}"


def test_loops_are_seeded_and_seamless(pkl):
    s = script(pkl, "path: {kind: circle, frames: 6, seed: 2, radius: 0.7, tiles: 2}")
    walk = Walk(s)
    assert walk.num_frames == 6 and walk.tiles == 2
    z0 = walk.frame(0).latent
    assert torch.equal(Walk(s).frame(0).latent, z0)
    assert not torch.equal(Walk(script(pkl, "path: {kind: circle, frames: 6, seed: 3}")).frame(0).latent, z0[:1])
    steps = [float((walk.frame((i + 1) % 6).latent - walk.frame(i).latent).norm()) for i in range(6)]
    assert max(steps) / min(steps) < 1.15  # even steps all the way round, including last -> first
    noise = Walk(script(pkl, "path: {kind: noise-loop, frames: 8, seed: 1}"))
    assert len(list(render_frames(noise))) == 8


def _tiny_128(tmp_path):
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=128,
                          mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=512, channel_max=16))
    torch.manual_seed(0)
    return save_model(Model(G_ema=Generator(cfg).eval()), tmp_path / "g128.safetensors")


def test_preview_stops_early_and_is_smaller(tmp_path):
    path = _tiny_128(tmp_path)
    s = S.loads(f"model: {path}\nkeyframes: [1, 2]\nframes: 2\nsize: 96")
    full = list(render_frames(Walk(s)))
    preview = list(render_frames(Walk(s), preview=True))
    assert full[0].shape == (96, 96, 3)
    assert preview[0].shape == (48, 48, 3) and len(preview) == len(full)


def test_render_part_of_a_walk_matches_the_whole(pkl):
    s = script(pkl, "keyframes: [1, 2, 3]\nframes: 4\nbatch: 3\nnoise: random")
    whole = list(render_frames(Walk(s)))
    part = list(render_frames(Walk(s), start=4, stop=7))
    assert all(np.array_equal(a, b) for a, b in zip(part, whole[4:7])) and len(part) == 3


@pytest.mark.parametrize("name", ["walk.yaml", "bend.yaml"])
def test_examples_render(pkl, tmp_path, name):
    from pathlib import Path

    example = S.load(Path(__file__).resolve().parents[1] / "examples" / name)
    example.model = pkl
    example.frames = 2
    for k in example.keyframes:
        k.frames = None
    if "directions" in dataclasses.asdict(example):
        for d in example.directions.values():
            d.samples = 256
    result = render_script(example, tmp_path / "out.webm", preview=True)
    expected = 2 * len(example.keyframes) if example.loop else 2 * (len(example.keyframes) - 1) + 1
    assert video.probe(result.video.path)["frames"] == expected == result.video.frames


def test_bad_bend_layer_for_this_model(pkl):
    with pytest.raises(BenderError, match="no layer 'synthesis.b64.conv1'"):
        Walk(script(pkl, "bends: [{layer: synthesis.b64.conv1, op: ablate}]\nkeyframes: [1]"))


def test_prefetching_matches_inline_and_stops_cleanly(pkl):
    s = script(pkl, "keyframes: [1, 2]\nframes: 6\nbatch: 2")
    walk = Walk(s)
    inline = list(render_frames(walk, prefetch=0))
    threaded = list(render_frames(walk, prefetch=2))
    assert len(inline) == 7 and all(np.array_equal(a, b) for a, b in zip(inline, threaded))
    gen = render_frames(walk)
    next(gen)
    gen.close()  # the consumer gives up: the worker thread must stop, not hang


def test_errors_in_the_worker_reach_the_caller(pkl, monkeypatch):
    walk = Walk(script(pkl, "keyframes: [1, 2]\nframes: 4\nbatch: 1"))
    import bender.render.frames as frames_mod

    real = frames_mod.launch_batch
    calls = []

    def failing(w, batch, preview=False):
        calls.append(batch.frames[0])
        if len(calls) == 3:
            raise RuntimeError("out of memory (simulated)")
        return real(w, batch, preview)

    monkeypatch.setattr(frames_mod, "launch_batch", failing)
    for prefetch in (2, 0):  # the worker thread, and inline
        calls.clear()
        got = []
        with pytest.raises(RuntimeError, match="simulated"):
            for f in render_frames(walk, prefetch=prefetch):
                got.append(f)
        assert len(got) == 2  # the batch queued before the failing one is still delivered


def test_conditional_model_needs_a_class(fixtures_dir):
    cond = str(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl")
    with pytest.raises(BenderError, match="conditional"):
        Walk(S.loads(f"model: {cond}\nkeyframes: [1]"))
    a = list(render_frames(Walk(S.loads(f"model: {cond}\nclass: 1\nkeyframes: [1]"))))
    b = list(render_frames(Walk(S.loads(f"model: {cond}\nclass: 3\nkeyframes: [1]"))))
    assert a[0].shape == (64, 64, 3) and not np.array_equal(a[0], b[0])

"""Every UI event handler, called through a live server on loopback with gradio_client (or, for
click events that carry coordinates, through Gradio's queue the way the browser calls them)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from bender.io import load
from bender.latent.generate import images_for_seeds
from bender.ui.config import UIConfig
from tests.ui_support import client, fixture_pkl, make_run, raw_event, running_ui, save_pair

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixtures_dir):
    root = tmp_path_factory.mktemp("ui")
    models = root / "models"
    save_pair(fixtures_dir, models)
    make_run(fixtures_dir, models / "rocks-run", kimgs=(0.0, 4.0, 8.0))
    config = UIConfig(models=[str(fixture_pkl(fixtures_dir)), str(fixture_pkl(fixtures_dir, "sg2ada-res64-fp16-cond"))],
                      models_dir=models, device="cpu", work_dir=root / "work", max_upload_mb=2)
    with running_ui(config) as srv:
        yield srv
    assert srv.guard.attempts == [], f"the UI tried to reach the network: {srv.guard.attempts}"


def key_of(server, label: str) -> str:
    return dict(server.ctx.library.choices())[label]


ENDPOINTS = {"/model_info", "/explore", "/random_seed", "/add_favourite", "/clear_favourites", "/remove_favourite",
             "/pick_favourite", "/refresh_models", "/upload_model", "/plane_map", "/plane_click", "/plane_goto",
             "/plane_zoom_in", "/plane_zoom_out", "/plane_pan_left", "/plane_pan_right", "/plane_pan_up",
             "/plane_pan_down", "/plane_centre", "/plane_clear_path", "/bend_image", "/keep_bend", "/clear_bends",
             "/bend_layout", "/interpolate", "/export_script", "/render_video", "/timeline_image", "/timeline_play",
             "/timeline_refresh"}


def test_every_handler_has_an_api_name(server):
    """Each endpoint below has a test in this file (the names are the contract with scripts and tests)."""
    api = client(server).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(api) == ENDPOINTS


def test_model_info_describes_the_model_and_shows_classes_only_when_conditional(server):
    c = client(server)
    text, classes, cutoff = c.predict(key_of(server, "sg2ada-res64-fp16-cond.pkl"), api_name="/model_info")
    assert "64×64 RGB, conditional, 5 classes" in text and "sha256" in text
    assert classes["visible"] is True and classes["maximum"] == 4 and cutoff["maximum"] == 10
    text, classes, _ = c.predict(key_of(server, "rocks-run @ 8 kimg"), api_name="/model_info")
    assert "8 kimg" in text and classes["visible"] is False
    with pytest.raises(AppError, match="not in the list of choices"):
        c.predict("/etc/passwd", api_name="/model_info")


def test_explore_renders_the_same_picture_as_the_library_with_its_recipe(server, fixtures_dir):
    pkl = fixture_pkl(fixtures_dir, "sg2ada-res64-fp16-cond")
    path = client(server).predict(key_of(server, "sg2ada-res64-fp16-cond.pkl"), 42, 0.7, 4, "const", 3,
                                  False, 0, "8-", api_name="/explore")
    with Image.open(path) as im:
        meta, pixels = dict(im.text), np.asarray(im.convert("RGB"))
    G = load(pkl).eval().G_ema
    expect = images_for_seeds(G, [42], 0.7, 4, "const", 3)[0]
    assert np.array_equal(pixels, expect)
    assert meta["seed"] == "42" and meta["truncation_psi"] == "0.7" and meta["truncation_cutoff"] == "4"
    assert meta["class"] == "3" and meta["noise_mode"] == "const"
    assert meta["model"] == "sg2ada-res64-fp16-cond.pkl" and meta["model_sha256"] == load(pkl).lineage.source_sha256


def test_explore_bad_input_is_a_one_line_message(server):
    c = client(server)
    cond = key_of(server, "sg2ada-res64-fp16-cond.pkl")
    with pytest.raises(AppError, match="out of range: this model has classes 0..4"):
        c.predict(cond, 1, 1.0, 0, "const", 7, False, 0, "8-", api_name="/explore")
    with pytest.raises(AppError, match="conditional: pick a class"):
        c.predict(cond, 1, 1.0, 0, "const", None, False, 0, "8-", api_name="/explore")
    with pytest.raises(AppError):
        c.predict(cond, 1, 1.0, 0, "sideways", 0, False, 0, "8-", api_name="/explore")


def test_random_seed_is_a_valid_seed(server):
    seeds = {client(server).predict(api_name="/random_seed") for _ in range(3)}
    assert all(isinstance(s, int | float) and 0 <= s < 2**32 for s in seeds) and len(seeds) > 1


def test_favourites_collect_keyframes_per_session(server):
    c = client(server)
    key = key_of(server, "sg2ada-res32-fp32.pkl")
    c.predict(key, 1, 0.5, 0, "const", None, False, 0, "8-", api_name="/add_favourite")
    gallery = c.predict(key, 2, 0.8, 2, "const", None, False, 0, "8-", api_name="/add_favourite")
    assert [g["caption"] for g in gallery] == ["seed 1 · ψ 0.5", "seed 2 · ψ 0.8 (first 2)"]
    # another visitor has their own favourites
    assert len(client(server).predict(key, 9, 1.0, 0, "const", None, False, 0, "8-", api_name="/add_favourite")) == 1
    # clicking a favourite restores its settings (a select event: sent with its event data)
    out = raw_event(server, "pick_favourite", [None], event_data={"index": 1, "value": None},
                    session_hash=c.session_hash)
    assert out[:5] == [key, 2, 0.8, 2, "const"]
    gallery = c.predict(1, api_name="/remove_favourite")
    assert [g["caption"] for g in gallery] == ["seed 1 · ψ 0.5"]
    assert c.predict(api_name="/clear_favourites") == []


def test_refresh_and_upload_extend_the_picker(server, fixtures_dir, tmp_path):
    from gradio_client import handle_file

    c = client(server)
    models_dir = server.ctx.config.models_dir
    (models_dir / "new.safetensors").write_bytes((models_dir / "original.safetensors").read_bytes())
    update = c.predict(None, api_name="/refresh_models")
    assert update["value"] == key_of(server, "sg2ada-res32-fp32.pkl")  # nothing picked yet: the model named first
    assert "new.safetensors" in [label for label, _ in update["choices"]]

    update = c.predict(handle_file(str(fixture_pkl(fixtures_dir, "sg2ada-res32-orig-skipD"))),
                       api_name="/upload_model")
    picked = update["value"]
    assert picked == key_of(server, "upload: sg2ada-res32-orig-skipD.pkl")
    text, _, _ = c.predict(picked, api_name="/model_info")
    assert "32×32" in text and "(orig)" in text
    with pytest.raises(AppError, match="hostile|not allowed"):
        c.predict(handle_file(str(fixtures_dir / "hostile" / "hostile-exec.pkl")), api_name="/upload_model")
    # over --max-upload-mb: gradio_client refuses before sending, and the server refuses it too
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * (3 * 2**20))
    with pytest.raises(ValueError, match="maximum file size"):
        c.predict(handle_file(str(big)), api_name="/upload_model")
    with big.open("rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.safetensors", f)}, timeout=60)
    assert r.status_code == 413


# -- shared helpers for the tabs below ----------------------------------------------------------

NO_MIX = (False, 0, "8-")
ONES = [1.0] * 9


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def explore_png(c, key, seed, psi=0.7):
    return c.predict(key, seed, psi, 0, "const", None, *NO_MIX, api_name="/explore")


# -- Plane ----------------------------------------------------------------------------------------


def test_plane_map_click_path_and_view(server):
    c = client(server)
    key = key_of(server, "sg2ada-res32-fp32.pkl")
    grid_png, info = c.predict(key, "seeds", 0, 1, 2, 0, 0, 1.0, 0.7, None, api_name="/plane_map")
    grid = pixels(grid_png)
    assert grid.shape == (5 * 96, 5 * 96, 3) and "plane of seeds 0, 1, 2" in info  # 32² cells shown 3x
    grid = grid[::3, ::3]
    # (u, v) = (0, 0) is the origin seed, (1, 0) the u seed (right edge, middle row), (0, 1) the v seed (top)
    for (row, col), seed in (((2, 2), 0), ((2, 4), 1), ((0, 2), 2)):
        cell = grid[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32]
        assert np.abs(cell - pixels(explore_png(c, key, seed))).mean() < 0.5, (row, col, seed)

    # a click (the browser's select event, with the pixel it hit) goes to that point of the plane
    out = raw_event(server, "plane_click", [True, None], event_data={"index": [432, 240], "value": None},
                    session_hash=c.session_hash)
    point_url, map_after, _, info = out
    assert "point (u, v) = (+1.000, +0.000)" in info and "path: 1 points" in info
    got = np.asarray(Image.open(_fetch(point_url["url"])).convert("RGB")).astype(int)
    assert np.abs(got - pixels(explore_png(c, key, 1))).mean() < 0.5
    # recording: two more points via the API twin of the click
    c.predict(0.0, 1.0, True, api_name="/plane_goto")
    point_png, map_png, info = c.predict(-0.5, 0.25, False, api_name="/plane_goto")
    assert "path: 2 points" in info and "(-0.500, +0.250)" in info
    with Image.open(point_png) as im:
        assert im.text["plane_u"] == "-0.5" and im.text["plane"] == "plane of seeds 0, 1, 2"
    assert not np.array_equal(pixels(map_png)[::3, ::3], grid)  # path and point drawn over the map
    _, info = c.predict(api_name="/plane_clear_path")
    assert "path" not in info

    # zoom and pan move the view; centre jumps to the current point
    assert c.predict(0.5, -0.5, 1.0, api_name="/plane_zoom_in") == (0.5, -0.5, 0.5)
    assert c.predict(0.0, 0.0, 0.5, api_name="/plane_zoom_out") == (0.0, 0.0, 1.0)
    assert c.predict(0.0, 0.0, 1.0, api_name="/plane_pan_left") == (-0.5, 0.0, 1.0)
    assert c.predict(0.0, 0.0, 1.0, api_name="/plane_pan_right") == (0.5, 0.0, 1.0)
    assert c.predict(0.0, 0.0, 2.0, api_name="/plane_pan_up") == (0.0, 1.0, 2.0)
    assert c.predict(0.0, 0.0, 2.0, api_name="/plane_pan_down") == (0.0, -1.0, 2.0)
    assert c.predict(0.0, 0.0, api_name="/plane_centre") == (-0.5, 0.25)
    # a zoomed view still maps cell centres to grid coordinates
    zoomed, info = c.predict(key, "seeds", 0, 1, 2, 1.0, 0.0, 0.5, 0.7, None, api_name="/plane_map")
    assert "view u +0.50…+1.50" in info
    centre = pixels(zoomed)[::3, ::3][2 * 32:3 * 32, 2 * 32:3 * 32]
    assert np.abs(centre - pixels(explore_png(c, key, 1))).mean() < 0.5


def _fetch(url: str):
    import io

    return io.BytesIO(httpx.get(url, timeout=30).content)


def test_plane_axes_from_directions_and_favourites(server):
    c = client(server)
    key = key_of(server, "sg2ada-res32-fp32.pkl")
    maps = {}
    for axes in ("SeFa", "PCA"):
        png, info = c.predict(key, axes, 5, 0, 1, 0, 0, 2.0, 0.7, None, api_name="/plane_map")
        maps[axes] = pixels(png)[::3, ::3]
        assert f"{axes} directions 0 and 1" in info
        # the centre is the origin seed whatever the axes
        assert np.abs(maps[axes][64:96, 64:96] - pixels(explore_png(c, key, 5))).mean() < 0.5
    assert not np.array_equal(maps["SeFa"], maps["PCA"])
    with pytest.raises(AppError, match="need 3 favourites"):
        c.predict(key, "favourites", 0, 0, 0, 0, 0, 1.0, 0.7, None, api_name="/plane_map")
    for seed in (3, 4, 5):
        c.predict(key, seed, 0.7, 0, "const", None, *NO_MIX, api_name="/add_favourite")
    _, info = c.predict(key, "favourites", 0, 0, 0, 0, 0, 1.0, 0.7, None, api_name="/plane_map")
    assert "plane of seeds 3, 4, 5" in info
    with pytest.raises(AppError, match="draw the plane"):
        client(server).predict(0.1, 0.1, False, api_name="/plane_goto")


# -- Bend -----------------------------------------------------------------------------------------


def bend(c, key, model_b, alpha, apply=False, layer="synthesis.b16.conv1", op="rotate", params="", amount=1.0,
         fraction=1.0, channels="", res=ONES, seed=7):
    return c.predict(key, model_b, alpha, *res, layer, op, params, amount, fraction, channels, apply, seed, 0.7, 0,
                     "const", None, *NO_MIX, api_name="/bend_image")


def test_bend_alpha_blends_toward_model_b(server):
    c = client(server)
    a, b = key_of(server, "original.safetensors"), key_of(server, "tuned.safetensors")
    choices, layer = c.predict(a, "(none: bends only)", api_name="/bend_layout")[:2]
    assert b in [k for _, k in choices["choices"]] and a not in [k for _, k in choices["choices"]]
    assert layer["value"] == "synthesis.b4.conv1" and "synthesis.b32.torgb" in [k for _, k in layer["choices"]]
    at0, at1, half = (pixels(bend(c, a, b, x)) for x in (0.0, 1.0, 0.5))
    assert np.array_equal(at0, pixels(explore_png(c, a, 7)))  # α = 0: model A exactly
    assert np.array_equal(at1, pixels(explore_png(c, b, 7)))  # α = 1: model B exactly
    assert not np.array_equal(half, at0) and not np.array_equal(half, at1)
    over = pixels(bend(c, a, b, 2.0))
    assert not np.array_equal(over, at1)  # beyond B
    # per-resolution profile: only the 32x32 block moves toward B
    fine_only = bend(c, a, b, 1.0, res=[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    with Image.open(fine_only) as im:
        assert im.text["alpha"] == "1.0" and '"4": 0.0' in im.text["alpha_per_resolution"]
        assert im.text["model_b"] == "tuned.safetensors"
    assert not np.array_equal(pixels(fine_only), at1) and not np.array_equal(pixels(fine_only), at0)
    with pytest.raises(AppError, match="different architecture"):
        bend(c, a, key_of(server, "sg2ada-res64-fp16-cond.pkl"), 0.5)


def test_network_bends_apply_keep_and_clear(server):
    c = client(server)
    a = key_of(server, "original.safetensors")
    plain = pixels(bend(c, a, "(none: bends only)", 0.0))
    rotated = bend(c, a, "(none: bends only)", 0.0, apply=True, op="rotate", params="degrees=90")
    assert not np.array_equal(pixels(rotated), plain)
    with Image.open(rotated) as im:
        assert '"op": "rotate"' in im.text["bends"] and '"degrees": 90.0' in im.text["bends"]
    zero = pixels(bend(c, a, "(none: bends only)", 0.0, apply=True, amount=0.0))
    assert np.array_equal(zero, plain)  # amount 0 leaves the features untouched
    some = pixels(bend(c, a, "(none: bends only)", 0.0, apply=True, op="ablate", channels="0-3"))
    assert not np.array_equal(some, plain)
    with pytest.raises(AppError, match="has no parameter dx"):
        bend(c, a, "(none: bends only)", 0.0, apply=True, op="rotate", params="dx=1")
    with pytest.raises(AppError, match="name=value"):
        bend(c, a, "(none: bends only)", 0.0, apply=True, params="degrees")
    info, apply = c.predict(a, "synthesis.b8.conv1", "invert", "", 1.0, 1.0, "", api_name="/keep_bend")
    assert "invert@synthesis.b8.conv1" in info and apply is False
    kept_img = pixels(bend(c, a, "(none: bends only)", 0.0))  # kept bends apply with the editor off
    assert not np.array_equal(kept_img, plain)
    assert "no kept bends" in c.predict(api_name="/clear_bends")
    assert np.array_equal(pixels(bend(c, a, "(none: bends only)", 0.0)), plain)


# -- Interpolate and export -----------------------------------------------------------------------


WALK = ("favourites", 4, "linear", "slerp", False, 12, False)


def test_interpolate_favourites_strip_and_preview(server):
    from bender.render.video import decode_frames

    c = client(server)
    key = key_of(server, "original.safetensors")
    with pytest.raises(AppError, match="at least 2 keyframes"):
        c.predict(key, *WALK, 6, api_name="/interpolate")
    for seed in (1, 2, 3):
        c.predict(key, seed, 0.7, 0, "const", None, *NO_MIX, api_name="/add_favourite")
    strip, video, info = c.predict(key, *WALK, 5, api_name="/interpolate")
    assert "3 keyframes, 9 frames at 12 fps" in info
    assert [s["caption"] for s in strip] == [f"frame {i}/9" for i in (1, 3, 5, 7, 9)]
    frames = decode_frames(video["video"] if isinstance(video, dict) else video)
    assert len(frames) == 9 and frames[0].shape == (32, 32, 3)
    # the strip holds exact frames: its first is the first keyframe
    assert np.array_equal(pixels(strip[0]["image"]), pixels(explore_png(c, key, 1)))
    # loop and easing change the walk
    _, _, info = c.predict(key, "favourites", 4, "ease-in-out", "lerp", True, 12, False, 4, api_name="/interpolate")
    assert "12 frames" in info


def test_interpolate_a_recorded_plane_path(server):
    c = client(server)
    key = key_of(server, "sg2ada-res32-fp32.pkl")
    with pytest.raises(AppError, match="draw a plane"):
        c.predict(key, "plane path", 4, "linear", "lerp", False, 12, False, 4, api_name="/interpolate")
    c.predict(key, "seeds", 0, 1, 2, 0, 0, 1.0, 0.7, None, api_name="/plane_map")
    with pytest.raises(AppError, match="record a path"):
        c.predict(key, "plane path", 4, "linear", "lerp", False, 12, False, 4, api_name="/interpolate")
    for u, v in ((0, 0), (1, 0), (0, 1)):
        c.predict(u, v, True, api_name="/plane_goto")
    strip, _, info = c.predict(key, "plane path", 4, "linear", "lerp", False, 12, False, 3, api_name="/interpolate")
    assert "3 keyframes, 9 frames" in info and len(strip) == 3
    assert np.abs(pixels(strip[1]["image"]) - pixels(explore_png(c, key, 1))).max() <= 1  # (1, 0) is seed 1


def test_export_script_reproduces_the_page_and_video_carries_it(server, tmp_path):
    from bender.latent import script as walk_script
    from bender.latent.walk import Walk
    from bender.render.frames import render_frames
    from bender.render.video import decode_frames, read_metadata

    c = client(server)
    a, b = key_of(server, "original.safetensors"), key_of(server, "tuned.safetensors")
    c.predict(a, 11, 0.6, 0, "const", None, True, 5, "4-", api_name="/add_favourite")
    c.predict(a, 12, 0.9, 0, "const", None, *NO_MIX, api_name="/add_favourite")
    # the bend tab's state: blend toward B at α 0.5 with a blur bend
    bend(c, a, b, 0.5, apply=True, layer="synthesis.b16.conv1", op="blur", params="sigma=1.5", seed=11)
    page = bend(c, a, b, 0.5, apply=True, layer="synthesis.b16.conv1", op="blur", params="sigma=1.5", seed=11)
    walk = ("favourites", 3, "linear", "slerp", False, 12, True)  # include the bend
    yaml_path = c.predict(a, *walk, None, api_name="/export_script")
    script = walk_script.load(yaml_path)
    assert script.model_b and script.alpha == 0.5 and script.bends[0]["op"] == "blur"
    assert [k.seed for k in script.keyframes] == [11, 12] and script.keyframes[0].mix.layers == "4-7"
    # frame 0 of the script, rendered by the library, is what the Bend tab showed for that favourite
    frame0 = next(render_frames(Walk(script)))
    page_px = pixels(page)
    mixed = pixels(c.predict(a, b, 0.5, *ONES, "synthesis.b16.conv1", "blur", "sigma=1.5", 1.0, 1.0, "", True,
                             11, 0.6, 0, "const", None, True, 5, "4-", api_name="/bend_image"))
    assert np.abs(frame0.astype(int) - mixed).max() <= 1 and not np.array_equal(page_px, mixed)

    video, download, summary = c.predict(a, *walk, 48, "mp4 (H.264)", api_name="/render_video")
    path = video["video"] if isinstance(video, dict) else video
    assert "4 frames 48×48" in summary and Path(download).suffix == ".mp4"
    same_walk_48px = walk_script.load(c.predict(a, *walk, 48, api_name="/export_script"))
    assert read_metadata(path)["bender_script_sha256"] == same_walk_48px.sha256() != script.sha256()
    assert len(decode_frames(path)) == 4
    _, gif, _ = c.predict(a, *walk, 0, "gif", api_name="/render_video")
    assert Path(gif).suffix == ".gif"
    with pytest.raises(AppError, match="size must be between 8 and 4096"):
        c.predict(a, *walk, 3, "gif", api_name="/render_video")


# -- Timeline -------------------------------------------------------------------------------------


def test_timeline_scrubs_snapshots_and_plays(server):
    from bender.render.video import decode_frames

    c = client(server)
    run = c.predict(None, api_name="/timeline_refresh")["value"]
    assert run == server.ctx.library.runs()[0].key
    first, info = c.predict(run, 0.0, "0-3", 0.7, api_name="/timeline_image")
    assert info.startswith("t = 0.000: snapshot 1 of 3, 0 kimg")
    grid = pixels(first)
    assert grid.shape == (65, 65, 3)  # 2 x 2 seeds, 1 pixel apart
    snap0 = key_of(server, "rocks-run @ 0 kimg")
    assert np.array_equal(grid[:32, 33:], pixels(explore_png(c, snap0, 1)))
    last, info = c.predict(run, 1.0, "0-3", 0.7, api_name="/timeline_image")
    assert "snapshot 3 of 3, 8 kimg" in info
    assert np.array_equal(pixels(last)[:32, :32], pixels(explore_png(c, key_of(server, "rocks-run @ 8 kimg"), 0)))
    mid, info = c.predict(run, 0.75, "0-3", 0.7, api_name="/timeline_image")
    assert "between snapshots 2 and 3" in info and "6 kimg" in info
    with Image.open(mid) as im:
        assert im.text["timeline_t"] == "0.75" and im.text["seeds"] == "0,1,2,3"
    with pytest.raises(AppError, match="at most 16"):
        c.predict(run, 0.5, "0-20", 0.7, api_name="/timeline_image")
    video, info = c.predict(run, "0-1", 0.7, api_name="/timeline_play")
    frames = decode_frames(video["video"] if isinstance(video, dict) else video)
    assert len(frames) == 25 and frames[0].shape == (32, 64, 3) and "25 frames" in info


# -- Safety ---------------------------------------------------------------------------------------


def test_serves_only_files_it_produced(server, fixtures_dir):
    """Its own pictures yes; model files, system files and remote URLs no."""
    c = client(server)
    png = explore_png(c, key_of(server, "sg2ada-res32-fp32.pkl"), 3)
    base = server.url + "gradio_api/file="
    assert httpx.get(base + png, timeout=30).status_code == 200
    model_file = server.ctx.config.models_dir / "original.safetensors"
    for path in (str(model_file), str(fixture_pkl(fixtures_dir)), "/etc/passwd", "../../etc/passwd",
                 str(server.ctx.config.uploads_dir)):
        assert httpx.get(base + path, timeout=30).status_code in (403, 404), path
    for url in ("https://example.com/x.png", "http://192.0.2.1/", "http%3A//example.com/", "//example.com/a"):
        assert httpx.get(base + url, timeout=30).status_code == 403, url
    config = httpx.get(server.url + "config", timeout=30).json()
    assert config["analytics_enabled"] is False and not config.get("share_url")


def test_a_server_without_models_explains_what_to_do(tmp_path, monkeypatch):
    import bender.ui.library

    monkeypatch.setattr(bender.ui.library, "default_model_path", lambda: tmp_path / "not-installed.safetensors")
    with running_ui(UIConfig(models=[], device="cpu", work_dir=tmp_path / "work")) as empty:
        c = client(empty)
        with pytest.raises(AppError, match="pick a model first .*upload one"):
            c.predict(None, api_name="/model_info")
        assert c.predict(None, api_name="/refresh_models")["choices"] == []
        assert empty.guard.attempts == []

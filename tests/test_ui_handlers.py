"""Every UI event handler, called through a live server on loopback with gradio_client (or, for
click events that carry coordinates, through Gradio's queue the way the browser calls them)."""

from __future__ import annotations

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


def test_every_handler_has_an_api_name(server):
    api = client(server).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/model_info", "/explore", "/random_seed", "/add_favourite", "/clear_favourites", "/remove_favourite",
            "/pick_favourite", "/refresh_models", "/upload_model"} <= set(api)


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
                                  api_name="/explore")
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
        c.predict(cond, 1, 1.0, 0, "const", 7, api_name="/explore")
    with pytest.raises(AppError, match="conditional: pick a class"):
        c.predict(cond, 1, 1.0, 0, "const", None, api_name="/explore")
    with pytest.raises(AppError):
        c.predict(cond, 1, 1.0, 0, "sideways", 0, api_name="/explore")


def test_random_seed_is_a_valid_seed(server):
    seeds = {client(server).predict(api_name="/random_seed") for _ in range(3)}
    assert all(isinstance(s, int | float) and 0 <= s < 2**32 for s in seeds) and len(seeds) > 1


def test_favourites_collect_keyframes_per_session(server):
    c = client(server)
    key = key_of(server, "sg2ada-res32-fp32.pkl")
    c.predict(key, 1, 0.5, 0, "const", None, api_name="/add_favourite")
    gallery = c.predict(key, 2, 0.8, 2, "const", None, api_name="/add_favourite")
    assert [g["caption"] for g in gallery] == ["seed 1 · ψ 0.5", "seed 2 · ψ 0.8 (first 2)"]
    # another visitor has their own favourites
    assert len(client(server).predict(key, 9, 1.0, 0, "const", None, api_name="/add_favourite")) == 1
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
    assert update["value"] == key_of(server, "sg2ada-res32-fp32.pkl")  # nothing picked yet: the first model
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

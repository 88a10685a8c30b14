"""End-to-end in headless Chromium (Debian's, driven by Playwright): what an artist clicks, and
what the page then shows. Few tests, each walking through a whole story, because every page load
costs seconds on a 2-core machine."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from bender.io import load
from bender.latent.generate import images_for_seeds
from bender.ui.config import UIConfig
from tests.ui_support import BROWSER_ARGS, fixture_pkl, require_chromium, running_ui, save_pair

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def chromium_path():
    return require_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixtures_dir):
    root = tmp_path_factory.mktemp("ui-browser")
    original, tuned = save_pair(fixtures_dir, root / "models")
    config = UIConfig(models=[str(fixture_pkl(fixtures_dir)), str(original), str(tuned)], device="cpu",
                      work_dir=root / "work")
    with running_ui(config) as srv:
        yield srv
    assert srv.guard.attempts == [], f"the UI tried to reach the network: {srv.guard.attempts}"


@pytest.fixture()
def page(chromium_path, server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=BROWSER_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url)
        yield page
        outside = [u for u in requests if not u.startswith(server.url) and not u.startswith(("data:", "blob:"))]
        assert outside == [], f"the page fetched from outside the server: {outside}"
        browser.close()


def image_src(page, selector: str) -> str:
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


def wait_for_new_image(page, selector: str, old_src: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel + ' img'); return i && i.src && i.src !== old; }",
        arg=[selector, old_src])
    return image_src(page, selector)


def fetch_png(page, url: str) -> Image.Image:
    return Image.open(io.BytesIO(page.request.get(url).body()))


def wait_for_png(page, selector: str, ok, old_src: str = "", timeout: float = 60.0) -> Image.Image:
    """The picture `selector` shows once it is new and `ok(png)` holds (live updates may come in steps)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        src = image_src(page, selector)
        if src and src != old_src:
            png = fetch_png(page, src)
            if ok(png):
                return png
        page.wait_for_timeout(200)
    raise AssertionError(f"{selector} never showed the expected picture")


def test_explore_change_seed_favourite_and_download_png(page, server, fixtures_dir, tmp_path):
    G = load(fixture_pkl(fixtures_dir)).eval().G_ema
    page.wait_for_selector("#explore-image img")
    assert "32×32 RGB, unconditional" in page.inner_text("#model-info")
    first = image_src(page, "#explore-image")
    assert np.array_equal(np.asarray(fetch_png(page, first).convert("RGB")), images_for_seeds(G, [0])[0])

    # type a seed: the picture becomes that seed's
    page.fill("#seed input", "1234")
    page.keyboard.press("Enter")
    src = wait_for_new_image(page, "#explore-image", first)
    assert np.array_equal(np.asarray(fetch_png(page, src).convert("RGB")), images_for_seeds(G, [1234])[0])

    # the random button picks another seed and the picture follows
    page.click("#random-seed")
    src2 = wait_for_new_image(page, "#explore-image", src)
    seed = int(page.input_value("#seed input"))
    assert seed != 1234
    assert np.array_equal(np.asarray(fetch_png(page, src2).convert("RGB")), images_for_seeds(G, [seed])[0])

    # favourite it: a thumbnail with its caption appears
    page.click("#add-favourite")
    page.wait_for_selector("#favourites img")
    assert re.search(rf"seed {seed} · ψ 1", page.inner_text("#favourites"))

    # download: a PNG that carries its recipe
    with page.expect_download() as info:
        page.click("#explore-image [data-testid='download-link'] button")
    path = tmp_path / "download.png"
    info.value.save_as(path)
    with Image.open(path) as im:
        meta = dict(im.text)
    assert meta["seed"] == str(seed) and meta["model"] == "sg2ada-res32-fp32.pkl" and meta["truncation_psi"] == "1.0"


def pick(page, elem_id: str, label: str) -> None:
    """Choose `label` in a Gradio dropdown."""
    page.click(f"#{elem_id} input")
    page.locator("ul[role=listbox] li[role=option]", has_text=label).first.click()


def set_slider(page, elem_id: str, value: float) -> None:
    """Move a Gradio slider the way a drag ends: the range input gets the value, then is released."""
    rng = page.locator(f"#{elem_id} input[type=range]")
    rng.fill(str(value))
    rng.dispatch_event("pointerup")
    rng.dispatch_event("mouseup")


def test_plane_click_bend_slider_and_video_export(page, server, fixtures_dir, tmp_path):
    from bender.render.video import decode_frames, read_metadata

    lib = server.ctx.library
    keys = {label: key for label, key in lib.choices()}
    painter_check = lib.get(keys["tuned.safetensors"]).G

    # pick the 'original' model; collect two favourites for the walk
    page.wait_for_selector("#explore-image img")
    pick(page, "model", "original.safetensors")
    page.wait_for_function("() => document.querySelector('#model-info').innerText.includes('original.safetensors')")
    src = image_src(page, "#explore-image")
    page.fill("#seed input", "1")
    page.keyboard.press("Enter")
    src = wait_for_new_image(page, "#explore-image", src)
    page.click("#add-favourite")
    page.wait_for_function("() => document.querySelectorAll('#favourites img').length >= 1")
    page.fill("#seed input", "2")
    page.keyboard.press("Enter")
    wait_for_new_image(page, "#explore-image", src)
    page.click("#add-favourite")
    page.wait_for_function("() => document.querySelectorAll('#favourites img').length >= 2")

    # Plane: draw the map of seeds 0, 1, 2 and click the cell of (u, v) = (1, 0): seed 1's picture
    page.get_by_role("tab", name="Plane").click()
    page.click("#plane-draw")
    page.wait_for_selector("#plane-map img")
    page.wait_for_function("() => document.querySelector('#plane-info').innerText.includes('plane of seeds 0, 1, 2')")
    page.locator("#plane-map img").scroll_into_view_if_needed()
    # the picture's on-screen rectangle (the map is shown at its own size, centred in its frame)
    x, y, w, h = page.evaluate("""() => { const i = document.querySelector('#plane-map img');
        const r = i.getBoundingClientRect(); const s = Math.min(r.width / i.naturalWidth,
        r.height / i.naturalHeight, 1); const w = i.naturalWidth * s, h = i.naturalHeight * s;
        return [r.left + (r.width - w) / 2, r.top + (r.height - h) / 2, w, h]; }""")
    page.mouse.click(x + w * 4.5 / 5, y + h * 2.5 / 5)
    page.wait_for_selector("#plane-point img")
    page.wait_for_function("() => document.querySelector('#plane-info').innerText.includes('point (u, v)')")
    info = page.inner_text("#plane-info")
    u, v = (float(x) for x in re.search(r"\(u, v\) = \(([-+.\d]+), ([-+.\d]+)\)", info).groups())
    assert abs(u - 1.0) < 0.1 and abs(v) < 0.1  # where the click landed, to within a few pixels
    point = fetch_png(page, image_src(page, "#plane-point"))
    assert point.text["plane"] == "plane of seeds 0, 1, 2"

    # Bend: model B = the fine-tune, α slider to 1: the picture becomes model B's
    page.get_by_role("tab", name="Bend").click()
    page.wait_for_selector("#bend-image img")
    before = image_src(page, "#bend-image")
    pick(page, "bend-model-b", "tuned.safetensors")
    set_slider(page, "bend-alpha", 1)
    bent = wait_for_png(page, "#bend-image", lambda im: im.text.get("alpha") == "1.0", before)
    assert bent.text["model_b"] == "tuned.safetensors"
    expect = images_for_seeds(painter_check, [2], 1.0)[0]
    assert np.array_equal(np.asarray(bent.convert("RGB")), expect)

    # Export: render the favourites walk and download the video
    page.get_by_role("tab", name="Interpolate").click()
    page.fill("#walk-frames input[type=number]", "3")
    page.keyboard.press("Enter")
    page.get_by_role("tab", name="Export").click()
    page.click("#export-render")
    page.wait_for_function("() => document.querySelector('#export-summary').innerText.includes('script sha256')",
                           timeout=120_000)
    assert "4 frames 32×32" in page.inner_text("#export-summary")
    page.wait_for_selector("#export-video video")
    with page.expect_download() as info:
        page.locator("#export-file a[download]").first.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".mp4" and len(decode_frames(path)) == 4
    assert read_metadata(path)["bender_script_sha256"]

"""End-to-end in headless Chromium (Debian's, driven by Playwright): what an artist clicks, and
what the page then shows. Few tests, each walking through a whole story, because every page load
costs seconds on a 2-core machine."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from bender.io import load
from bender.latent.generate import images_for_seeds
from bender.ui.config import UIConfig
from tests.ui_support import BROWSER_ARGS, fixture_pkl, require_chromium, running_ui

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def chromium_path():
    return require_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixtures_dir):
    root = tmp_path_factory.mktemp("ui-browser")
    config = UIConfig(models=[str(fixture_pkl(fixtures_dir))], device="cpu", work_dir=root / "work")
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

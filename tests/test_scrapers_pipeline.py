"""`bender scrape` end to end: fake APIs and image hosts on 127.0.0.1, real files, real manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from scrape_fakes import (
    FakeServer,
    Reply,
    bomb_png,
    commons_page,
    json_reply,
    make_image,
    openverse_api,
    openverse_result,
    reencode,
    serve_image,
)

from bender.cli import main
from scrapers.download import FetchConfig
from scrapers.manifest import ManifestWriter, load_manifest
from scrapers.pipeline import ScrapeConfig, scrape


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def run_cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(main, ["scrape", *args], env=env, catch_exceptions=False)
    return result


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def setup_world(server: FakeServer) -> dict:
    """Openverse + Commons answering with images on the loopback host, with every kind of trouble."""
    img = {i: make_image(i, 96) for i in range(12)}
    urls = {i: serve_image(server, f"/img/{i}.jpg", img[i]) for i in range(8)}
    urls["dup_exact"] = serve_image(server, "/img/copy-of-0.jpg", img[0])  # same bytes as 0
    urls["dup_near"] = serve_image(server, "/img/near-1.jpg", reencode(img[1], 80))  # near copy of 1
    urls["html"] = serve_image(server, "/img/html.jpg", b"<html><body>Error 404</body></html>")
    urls["bomb"] = serve_image(server, "/img/bomb.png", bomb_png())
    urls["truncated"] = serve_image(server, "/img/trunc.jpg", img[8][: len(img[8]) // 2])
    urls["small"] = serve_image(server, "/img/small.jpg", make_image(9, 40))
    urls["gone"] = server.base + "/img/missing.jpg"
    urls["meta"] = "http://169.254.169.254/latest/meta-data/iam"
    server.route("/img/to-private.jpg", Reply(302, b"", headers={"Location": "http://10.0.0.7/x.jpg"}))
    urls["redirect"] = server.base + "/img/to-private.jpg"
    ov = [openverse_result(i, urls[i]) for i in range(4)]
    ov += [
        openverse_result(10 + n, urls[k]) for n, k in enumerate(["dup_exact", "html", "bomb", "meta", "gone"])
    ]
    ov.append(openverse_result(30, urls[7], license="by-nc"))  # filtered by the server
    openverse_api(server, ov)
    nc = commons_page(7, urls[7])  # a licence the user did not ask for: filtered by us
    nc["imageinfo"][0]["extmetadata"]["LicenseShortName"]["value"] = "CC BY-NC 4.0"
    nc["imageinfo"][0]["extmetadata"]["LicenseUrl"]["value"] = (
        "https://creativecommons.org/licenses/by-nc/4.0"
    )
    pages = [commons_page(i, urls[i]) for i in (4, 5, 6)] + [nc]
    pages += [
        commons_page(20 + n, urls[k]) for n, k in enumerate(["dup_near", "truncated", "small", "redirect"])
    ]
    server.route("/w/api.php", json_reply({"batchcomplete": True, "query": {"pages": pages}}))
    return img


def base_args(server: FakeServer, out: Path) -> list[str]:
    return [
        "rocks",
        "--provider",
        "openverse,wikimedia",
        "--out",
        str(out),
        "--allow-host",
        server.allow,
        "--api-base",
        f"openverse={server.base}/v1",
        "--api-base",
        f"wikimedia={server.base}/w/api.php",
        "--retries",
        "2",
        "--min-size",
        "64",
        "-q",
    ]


def test_scrape_end_to_end_and_resume(server, tmp_path):
    img = setup_world(server)
    out = tmp_path / "set"
    result = run_cli(*base_args(server, out))
    assert result.exit_code == 0, result.output
    recs = load_manifest(out / "manifest.jsonl")
    by_url = {r["image_url"]: r for r in recs.values()}
    kept = [r for r in recs.values() if r["status"] == "kept"]
    assert len(kept) == 7  # images 0-6
    for r in kept:
        data = (out / r["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"] and r["path"] == f"images/{r['sha256']}.jpg"
        assert r["width"] == r["height"] in (80, 96) and len(r["phash"]) == 16 and r["reason"] is None
        assert r["license"] and r["attribution"] and r["landing_url"] and r["fetched_at"].endswith("Z")
        assert r["query"] == "rocks" and r["provider"] in ("openverse", "wikimedia")
    kept_shas = {r["sha256"] for r in kept}
    assert {hashlib.sha256(img[i]).hexdigest() for i in (0, 2, 3, 4, 5, 6)} <= kept_shas
    assert len(list((out / "images").iterdir())) == 7

    def status(path):
        return next(r for u, r in by_url.items() if u.endswith(path) or u == path)

    # Workers run in parallel, so which copy wins is a race; exactly one of each pair is kept and
    # the other names it.
    for a, b in (("/img/0.jpg", "/img/copy-of-0.jpg"), ("/img/1.jpg", "/img/near-1.jpg")):
        pair = sorted((status(a), status(b)), key=lambda r: r["status"])
        assert [r["status"] for r in pair] == ["duplicate", "kept"]
        assert pair[0]["reason"] == f"duplicate of {pair[1]['sha256']}"
    assert status("/img/1.jpg")["provider"] != status("/img/near-1.jpg")["provider"]  # across providers
    assert status("/img/html.jpg")["reason"] == "not an image"
    assert status("/img/bomb.png")["reason"] == "bomb"
    assert status("/img/trunc.jpg")["reason"] == "corrupt image"
    assert status("/img/small.jpg")["reason"] == "too small"
    assert status("/img/missing.jpg")["reason"] == "http 404"
    assert status("http://169.254.169.254/latest/meta-data/iam")["reason"] == "private address"
    assert status("/img/to-private.jpg")["reason"] == "private address"
    assert status("/img/7.jpg")["reason"] == "license by-nc"
    assert server.hits["/img/7.jpg"] == 0  # rejected on licence before any download
    assert "kept 7, duplicate 2, rejected 8" in result.output

    # Rerun: everything is decided, so no image is fetched again and the manifest does not grow.
    before = dict(server.hits)
    n_lines = len(lines(out / "manifest.jsonl"))
    result = run_cli(*base_args(server, out))
    assert result.exit_code == 0, result.output
    assert "17 skipped as done" in result.output
    assert {k: v for k, v in server.hits.items() if k.startswith("/img/")} == {
        k: v for k, v in before.items() if k.startswith("/img/")
    }
    assert len(lines(out / "manifest.jsonl")) == n_lines


def test_limit_counts_kept_images_and_grows_on_rerun(server, tmp_path):
    imgs = [serve_image(server, f"/img/{i}.jpg", make_image(100 + i, 64)) for i in range(30)]
    openverse_api(server, [openverse_result(i, u) for i, u in enumerate(imgs)])
    out = tmp_path / "set"
    args = [
        "rocks",
        "-p",
        "openverse",
        "--out",
        str(out),
        "--allow-host",
        server.allow,
        "--api-base",
        f"{server.base}/v1",
        "-q",
    ]
    assert run_cli(*args, "--limit", "5").exit_code == 0
    recs = load_manifest(out / "manifest.jsonl")
    assert sum(r["status"] == "kept" for r in recs.values()) == 5 and len(recs) == 5
    result = run_cli(*args, "--limit", "12")
    assert "kept 7," in result.output
    recs = load_manifest(out / "manifest.jsonl")
    assert sum(r["status"] == "kept" for r in recs.values()) == 12
    assert all(server.hits[f"/img/{i}.jpg"] <= 1 for i in range(30))


def test_transient_failures_are_retried_on_the_next_run(server, tmp_path):
    data = make_image(7, 64)
    state = {"fail": True}
    server.route(
        "/img/a.jpg",
        lambda req: Reply(503, b"busy") if state["fail"] else Reply(200, data, content_type="image/jpeg"),
    )
    openverse_api(server, [openverse_result(0, server.base + "/img/a.jpg")])
    out = tmp_path / "set"
    cfg = dict(
        queries=["rocks"],
        out=out,
        providers=["openverse"],
        allow_hosts=[server.allow],
        api_bases={"openverse": f"{server.base}/v1"},
        cache_api=False,
        fetch=FetchConfig(max_attempts=2, backoff_base=0.01),
    )
    s = scrape(ScrapeConfig(**cfg), warn=lambda m: None)
    assert s.rejected == {"http 503": 1}
    state["fail"] = False
    s = scrape(
        ScrapeConfig(**{**cfg, "fetch": FetchConfig(max_attempts=2, backoff_base=0.01)}), warn=lambda m: None
    )
    assert s.kept == 1
    assert [r["status"] for r in lines(out / "manifest.jsonl")] == ["rejected", "kept"]


def test_noai_header_is_respected_unless_told_otherwise(server, tmp_path):
    server.route(
        "/img/a.jpg",
        Reply(200, make_image(3), content_type="image/jpeg", headers={"X-Robots-Tag": "noai, noimageai"}),
    )
    openverse_api(server, [openverse_result(0, server.base + "/img/a.jpg")])
    args = ["rocks", "-p", "openverse", "--allow-host", server.allow, "--api-base", f"{server.base}/v1", "-q"]
    assert "rejected 1 (noai 1)" in run_cli(*args, "--out", str(tmp_path / "a")).output
    assert "kept 1" in run_cli(*args, "--out", str(tmp_path / "b"), "--ignore-noai").output


def test_folder_provider_with_messy_images(fixtures_dir, tmp_path):
    src = fixtures_dir / "images-messy"
    out = tmp_path / "set"
    result = run_cli(str(src), "-p", "folder", "--out", str(out), "--limit", "100", "-q")
    assert result.exit_code == 0, result.output
    recs = load_manifest(out / "manifest.jsonl")
    by_name = {r["provider_id"].split("/")[-1]: r for r in recs.values()}
    assert by_name["bomb.png"]["reason"] == "bomb"
    assert by_name["truncated.jpg"]["reason"] == "corrupt image"
    assert (
        by_name["fake.jpg"]["reason"] == "not an image" and by_name["notes.txt"]["reason"] == "not an image"
    )
    assert by_name["empty.png"]["reason"] == "not an image"
    assert by_name["landscape-rgb.jpg"]["status"] == "kept"
    orient = by_name["exif-orientation-6.jpg"]
    assert orient["status"] == "kept" and (orient["width"], orient["height"]) == (120, 168)
    # palette.png, photo.webp and cmyk.jpg are the same photo: one is kept, two are duplicates
    coffee = [by_name[n]["status"] for n in ("cmyk.jpg", "palette.png", "photo.webp")]
    assert sorted(coffee) == ["duplicate", "duplicate", "kept"]
    for r in recs.values():
        if r["status"] == "kept":
            assert (out / r["path"]).is_file()


def test_urls_provider_txt_and_csv(server, tmp_path):
    a = serve_image(server, "/img/a.png", make_image(1, 64, fmt="PNG"))
    b = serve_image(server, "/img/b.jpg", make_image(2, 64))
    (tmp_path / "list.txt").write_text(f"# my picks\n{a}\n\n{b}\n")
    (tmp_path / "list.csv").write_text(
        "url,license,creator,title\n"
        f"{b},CC BY-SA 4.0,Ann,Bark\n"
        f"{serve_image(server, '/img/c.jpg', make_image(3, 64))},cc0,Bo,Stone\n"
    )
    out = tmp_path / "set"
    args = ["-p", "urls", "--out", str(out), "--allow-host", server.allow, "-q"]
    result = run_cli(str(tmp_path / "list.txt"), str(tmp_path / "list.csv"), *args)
    assert result.exit_code == 0, result.output
    recs = {r["image_url"].rsplit("/", 1)[1]: r for r in load_manifest(out / "manifest.jsonl").values()}
    # b.jpg is listed twice: decided once (first listing wins), never superseded by a "duplicate"
    assert sorted(recs) == ["a.png", "b.jpg", "c.jpg"]
    assert all(r["status"] == "kept" for r in recs.values())
    assert recs["a.png"]["path"].endswith(".png") and recs["b.jpg"]["query"].endswith("list.txt")
    assert server.hits["/img/b.jpg"] == 1
    c = recs["c.jpg"]
    assert (c["license"], c["license_version"], c["creator"], c["title"]) == ("cc0", "1.0", "Bo", "Stone")
    assert c["license_url"] == "https://creativecommons.org/publicdomain/zero/1.0/"


def test_no_network_is_one_clear_line(tmp_path):
    # A closed port on loopback: connection refused, like an unreachable API.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    result = run_cli(
        "rocks",
        "-p",
        "openverse",
        "--out",
        str(tmp_path / "o"),
        "--allow-host",
        f"127.0.0.1:{port}",
        "--api-base",
        f"http://127.0.0.1:{port}/v1",
        "--retries",
        "1",
        "-q",
    )
    assert result.exit_code == 1
    out = result.output.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("Error: openverse: cannot reach the API")
    assert "Traceback" not in result.output


def test_private_api_base_needs_allow_host(server, tmp_path):
    openverse_api(server, [])
    result = run_cli(
        "rocks", "-p", "openverse", "--out", str(tmp_path / "o"), "--api-base", f"{server.base}/v1", "-q"
    )
    assert result.exit_code == 1 and "--allow-host" in result.output
    assert server.hits["/v1/images/"] == 0


def test_opt_in_providers_need_accept_terms_and_a_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BENDER_PEXELS_KEY", "KEY")
    result = run_cli("rocks", "-p", "pexels", "--out", str(tmp_path / "o"), "-q")
    assert result.exit_code == 1 and "--accept-terms" in result.output and "datasets" in result.output
    monkeypatch.delenv("BENDER_PEXELS_KEY")
    result = run_cli("rocks", "-p", "pexels", "--accept-terms", "--out", str(tmp_path / "o"), "-q")
    assert result.exit_code == 1 and "BENDER_PEXELS_KEY" in result.output
    result = run_cli("rocks", "-p", "google", "--out", str(tmp_path / "o"), "-q")
    assert result.exit_code == 1 and "unknown provider" in result.output


def test_env_api_base_and_label_from_query(server, tmp_path):
    openverse_api(server, [openverse_result(0, serve_image(server, "/img/a.jpg", make_image(1)))])
    env = {"BENDER_OPENVERSE_API_BASE": f"{server.base}/v1"}
    result = run_cli(
        "tree bark",
        "-p",
        "openverse",
        "--out",
        str(tmp_path / "o"),
        "--allow-host",
        server.allow,
        "--label-from-query",
        "-q",
        env=env,
    )
    assert result.exit_code == 0, result.output
    rec = next(iter(load_manifest(tmp_path / "o" / "manifest.jsonl").values()))
    assert rec["label"] == "tree bark" and rec["status"] == "kept"


def test_manifest_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as w:
        w.append({"id": "a", "status": "kept"})
        w.append({"id": "b", "status": "rejected"})
    with open(path, "ab") as f:
        f.write(b'{"id": "c", "stat')  # power cut mid-write
    with pytest.warns(UserWarning, match="damaged"):
        assert set(load_manifest(path)) == {"a", "b"}
    with ManifestWriter(path) as w:
        w.append({"id": "d", "status": "kept"})
    with pytest.warns(UserWarning):
        recs = load_manifest(path)
    assert set(recs) == {"a", "b", "d"}
    with ManifestWriter(path) as w:
        w.append({"id": "a", "status": "duplicate"})  # a later record supersedes
    with pytest.warns(UserWarning):
        assert load_manifest(path)["a"]["status"] == "duplicate"


def test_deleted_image_file_is_fetched_again(server, tmp_path):
    openverse_api(server, [openverse_result(0, serve_image(server, "/img/a.jpg", make_image(1)))])
    args = [
        "rocks",
        "-p",
        "openverse",
        "--out",
        str(tmp_path / "o"),
        "--allow-host",
        server.allow,
        "--api-base",
        f"{server.base}/v1",
        "-q",
    ]
    run_cli(*args)
    shutil.rmtree(tmp_path / "o" / "images")
    os.makedirs(tmp_path / "o" / "images")
    assert "kept 1" in run_cli(*args).output
    assert server.hits["/img/a.jpg"] == 2


def test_per_host_concurrency_limit(server, tmp_path):
    import threading
    import time

    state = {"now": 0, "max": 0}
    lock = threading.Lock()
    images = {i: make_image(300 + i) for i in range(12)}

    def slow(req):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return Reply(200, images[int(req.path.rsplit("/", 1)[1][:-4])], content_type="image/jpeg")

    for i in images:
        server.route(f"/img/{i}.jpg", slow)
    openverse_api(server, [openverse_result(i, f"{server.base}/img/{i}.jpg") for i in images])
    cfg = ScrapeConfig(queries=["rocks"], out=tmp_path / "o", providers=["openverse"], workers=8, per_host=2,
                       allow_hosts=[server.allow], api_bases={"openverse": f"{server.base}/v1"})
    assert scrape(cfg, warn=lambda m: None).kept == 12
    assert state["max"] == 2


def test_dns_failure_is_one_clear_error(tmp_path):
    from bender.errors import BenderError
    from scrapers.safety import DNSFailure

    def no_dns(host, port):
        raise DNSFailure(f"cannot resolve {host}: Name or service not known")

    cfg = ScrapeConfig(queries=["rocks"], out=tmp_path / "o", resolve=no_dns)
    with pytest.raises(BenderError, match="cannot resolve api.openverse.org.*check your network"):
        scrape(cfg, warn=lambda m: None)

"""Each provider against a loopback server that speaks its API's request and response formats."""

from __future__ import annotations

import time

import pytest
from scrape_fakes import (
    FakeServer,
    Reply,
    commons_page,
    flickr_licenses,
    flickr_photo,
    json_reply,
    openverse_api,
    openverse_result,
)

from bender.errors import BenderError
from scrapers.api import ApiClient, ApiError
from scrapers.download import FetchConfig, GuardedClient
from scrapers.providers import PROVIDERS, SearchOptions
from scrapers.quota import quota_wait, reset_at
from scrapers.safety import SafetyPolicy


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def make(server: FakeServer, name: str, key: str | None = "KEY", base_path: str = "", **api_kw):
    client = GuardedClient(
        FetchConfig(backoff_base=0.01, backoff_cap=0.05, max_attempts=3),
        SafetyPolicy.from_strings([server.allow]),
    )
    api = ApiClient(client, name, **api_kw)
    return PROVIDERS[name](api, server.base + base_path, key)


def collect(provider, query="rocks", **opts):
    return [c for page in provider.pages(query, SearchOptions(**opts)) for c in page]


# -- Openverse ---------------------------------------------------------------------------------


def test_openverse_pages_fields_and_licence_filter(server):
    results = [openverse_result(i, f"https://img{i % 3}.example.org/{i}.jpg") for i in range(45)]
    results[3]["width"] = None
    results[4]["license"] = "by-nc"
    openverse_api(server, results)
    got = collect(make(server, "openverse", key=None, base_path="/v1"))
    assert len(got) == 44  # the by-nc one is filtered by the server
    calls = server.calls("/v1/images/")
    assert [c.params["page"] for c in calls] == ["1", "2", "3"]
    first = calls[0].params
    assert first["q"] == "rocks" and first["page_size"] == "20"
    assert set(first["license"].split(",")) == {"cc0", "pdm", "by", "by-sa"}
    assert "Authorization" not in calls[0].headers
    c = got[0]
    assert c.id == "openverse:4bc43a04-ef46-4544-a0c1-000000000000"
    assert (c.license, c.license_version) == ("cc0", "1.0")
    assert c.license_url == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert c.landing_url == "https://stocksnap.io/photo/ROCK0" and c.creator == "Creator 0"
    assert c.attribution.startswith('"Rock 0"') and (c.width, c.height) == (640, 480)
    assert got[3].width is None


def test_openverse_token_and_bigger_pages(server):
    openverse_api(server, [openverse_result(i, f"https://x.example.org/{i}.jpg") for i in range(5)])
    collect(make(server, "openverse", key="TOKEN", base_path="/v1"))
    call = server.calls("/v1/images/")[0]
    assert call.headers["Authorization"] == "Bearer TOKEN" and call.params["page_size"] == "100"


def test_openverse_429_with_scoped_headers_is_retried(server):
    state = {"n": 0}
    rows = [openverse_result(0, "https://x.example.org/0.jpg")]

    def handler(req):
        state["n"] += 1
        if state["n"] == 1:
            return json_reply(
                {"detail": "Request was throttled. Expected available in 1 second."},
                429,
                {
                    "Retry-After": "1",
                    "X-RateLimit-Limit-anon_burst": "5/hour",
                    "X-RateLimit-Available-anon_burst": "0",
                },
            )
        return json_reply({"result_count": 1, "page_count": 1, "page_size": 20, "page": 1, "results": rows})

    server.route("/v1/images/", handler)
    assert len(collect(make(server, "openverse", key=None, base_path="/v1"))) == 1
    assert state["n"] == 2


def test_openverse_400_error_body_is_reported(server):
    server.route(
        "/v1/images/",
        json_reply(
            {
                "error": "InputError",
                "detail": "Invalid input given for fields. 'license' -> License 'PDMNBCG' does not exist.",
                "fields": ["license"],
            },
            400,
        ),
    )
    with pytest.raises(ApiError, match="PDMNBCG") as e:
        collect(make(server, "openverse", key=None, base_path="/v1"))
    assert not e.value.fatal and server.hits["/v1/images/"] == 1


def test_openverse_quota_used_up_stops_the_provider(server):
    rows = [openverse_result(i, f"https://x.example.org/{i}.jpg") for i in range(40)]
    openverse_api(
        server,
        rows,
        headers={"X-RateLimit-Limit-anon_burst": "5/hour", "X-RateLimit-Available-anon_burst": "0"},
    )
    pages = make(server, "openverse", key=None, base_path="/v1", max_wait=5).pages("rocks", SearchOptions())
    assert len(next(pages)) == 20
    with pytest.raises(ApiError, match="rate limit used up") as e:
        next(pages)
    assert e.value.fatal and server.hits["/v1/images/"] == 1


# -- Wikimedia Commons -------------------------------------------------------------------------


def commons_handler(server):
    p = [commons_page(i, f"https://upload.wikimedia.org/t/{i}.jpg") for i in range(1, 6)]
    p[1] = commons_page(2, "https://upload.wikimedia.org/t/2.jpg", artist="plain", license_url=False)
    p[2] = commons_page(3, "https://upload.wikimedia.org/t/3.jpg", artist=None)
    big = commons_page(6, "https://upload.wikimedia.org/orig/6.jpg", width=5514, height=3102)
    big["imageinfo"][0].update(
        thumburl="https://upload.wikimedia.org/thumb/6.jpg/1280px-6.jpg", thumbwidth=1280, thumbheight=720
    )

    def handler(req):
        q = req.params
        assert q["action"] == "query" and q["generator"] == "search" and q["gsrnamespace"] == "6"
        assert q["formatversion"] == "2" and q["gsrsearch"].endswith("filetype:bitmap")
        assert q["iiurlwidth"] in {"1280", "1920", "3840"}
        if "gsroffset" not in q and "iicontinue" not in q:
            # batch 1, first half: page 2 comes before page 1 (not in rank order); image info for
            # page 1 is still to come through iicontinue, so no batchcomplete.
            p1 = dict(p[0])
            p1.pop("imageinfo")
            return json_reply(
                {
                    "continue": {"iicontinue": "Tree_1.jpg|20240101", "continue": "gsroffset||"},
                    "query": {"pages": [p[1], p1]},
                }
            )
        if q.get("iicontinue"):
            return json_reply(
                {
                    "batchcomplete": True,
                    "continue": {"gsroffset": 2, "continue": "gsroffset||"},
                    "query": {
                        "pages": [
                            {
                                "pageid": p[0]["pageid"],
                                "ns": 6,
                                "index": 1,
                                "title": p[0]["title"],
                                "imageinfo": p[0]["imageinfo"],
                            },
                            {"pageid": p[1]["pageid"], "ns": 6, "index": 2, "title": p[1]["title"]},
                        ]
                    },
                }
            )
        assert q["gsroffset"] == "2" and q["continue"] == "gsroffset||"
        return json_reply({"batchcomplete": True, "query": {"pages": [p[2], p[3], p[4], big]}})

    server.route("/w/api.php", handler)


def test_wikimedia_continuation_merging_and_fields(server):
    commons_handler(server)
    got = collect(make(server, "wikimedia", key=None, base_path="/w/api.php"))
    assert [c.provider_id for c in got] == [str(81754000 + i) for i in (1, 2, 3, 4, 5, 6)]
    assert server.hits["/w/api.php"] == 3
    c1, c2, c3 = got[:3]
    assert (c1.license, c1.license_version) == ("by-sa", "4.0")
    assert c1.creator == "Painter 1" and c1.license_url == "https://creativecommons.org/licenses/by-sa/4.0"
    assert c1.landing_url == "https://commons.wikimedia.org/wiki/File:Tree_1.jpg" and c1.title == "Tree_1.jpg"
    assert c2.creator == "Plain Painter 2"
    assert c2.license_url == "https://creativecommons.org/licenses/by-sa/4.0/"  # built: LicenseUrl missing
    assert c3.creator == "Own work"  # no Artist: falls back to Credit
    assert "Painter 1" in c1.attribution and "CC BY-SA 4.0" in c1.attribution
    assert got[5].image_url.endswith("1280px-6.jpg") and (got[5].width, got[5].height) == (1280, 720)


def test_wikimedia_error_in_http_200(server):
    server.route(
        "/w/api.php",
        json_reply(
            {
                "error": {
                    "code": "badvalue",
                    "info": 'Unrecognized value for parameter "gsrwhat".',
                    "docref": "See https://commons.wikimedia.org/w/api.php for API usage.",
                },
                "servedby": "mw-api-ext.eqiad.main-7f9c",
            },
            headers={"MediaWiki-API-Error": "badvalue"},
        ),
    )
    with pytest.raises(ApiError, match="Unrecognized value"):
        collect(make(server, "wikimedia", key=None, base_path="/w/api.php"))
    assert server.hits["/w/api.php"] == 1


def test_wikimedia_maxlag_is_retried_and_edge_429_is_not(server):
    state = {"n": 0}

    def handler(req):
        state["n"] += 1
        if state["n"] == 1:
            return json_reply(
                {"error": {"code": "maxlag", "info": "Waiting for a database server: 6 seconds lagged."}},
                headers={"MediaWiki-API-Error": "maxlag", "Retry-After": "0", "X-Database-Lag": "6"},
            )
        return json_reply(
            {
                "batchcomplete": True,
                "query": {"pages": [commons_page(1, "https://upload.wikimedia.org/t/1.jpg")]},
            }
        )

    server.route("/w/api.php", handler)
    assert len(collect(make(server, "wikimedia", key=None, base_path="/w/api.php"))) == 1
    assert state["n"] == 2
    server.route(
        "/w/api.php",
        Reply(429, b"Use thumbnail steps listed on https://w.wiki/GHai", content_type="text/plain"),
    )
    server.hits.clear()
    with pytest.raises(ApiError, match="thumbnail"):
        collect(make(server, "wikimedia", key=None, base_path="/w/api.php"))
    assert server.hits["/w/api.php"] == 1


# -- Flickr ------------------------------------------------------------------------------------


def flickr_handler(server, photos, per_page_pages=2):
    def handler(req):
        q = req.params
        assert q["api_key"] == "KEY" and q["format"] == "json" and q["nojsoncallback"] == "1"
        if q["method"] == "flickr.photos.licenses.getInfo":
            return json_reply(flickr_licenses())
        assert q["method"] == "flickr.photos.search" and q["text"] == "bark"
        wanted = set(q["license"].split(","))
        page = int(q["page"])
        rows = [p for p in photos if p["license"] in wanted]
        half = -(-len(rows) // per_page_pages)
        chunk = rows[(page - 1) * half : page * half]
        # pages/total as strings, as some real responses have them
        return json_reply(
            {
                "photos": {
                    "page": page,
                    "pages": str(per_page_pages),
                    "perpage": half,
                    "total": str(len(rows)),
                    "photo": chunk,
                },
                "stat": "ok",
            }
        )

    server.route("/services/rest/", handler)


def test_flickr_licences_sizes_and_pages(server):
    photos = [
        flickr_photo(i, f"https://live.staticflickr.com/65535/{i}_b.jpg", license=lic)
        for i, lic in enumerate(["4", "5", "2", "9", "0", "12", "10"])
    ]
    photos.append(flickr_photo(7, "https://live.staticflickr.com/65535/7_m.jpg", sizes="m"))
    photos.append(flickr_photo(8, "https://live.staticflickr.com/65535/8.jpg", sizes=""))  # no url_* at all
    flickr_handler(server, photos)
    got = collect(make(server, "flickr", base_path="/services/rest"), query="bark")
    search = [c for c in server.calls("/services/rest/") if c.params["method"] == "flickr.photos.search"]
    assert set(search[0].params["license"].split(",")) == {"4", "5", "7", "8", "9", "10", "11", "12"}
    assert len(search) == 2
    ids = {c.provider_id for c in got}
    assert ids == {str(49514824000 + i) for i in (0, 1, 3, 5, 6, 7)}
    by = next(c for c in got if c.provider_id == "49514824000")
    assert (by.license, by.license_version, by.license_url) == (
        "by",
        "2.0",
        "https://creativecommons.org/licenses/by/2.0/",
    )
    assert by.landing_url == "https://www.flickr.com/photos/71925530@N03/49514824000"
    assert by.creator == "Owner 0" and (by.width, by.height) == (1024, 683)
    assert {c.license for c in got} >= {"cc0", "by-sa", "pdm"}


def test_flickr_errors_in_http_200(server):
    state = {"n": 0}

    def handler(req):
        if req.params["method"] == "flickr.photos.licenses.getInfo":
            state["n"] += 1
            if state["n"] == 1:
                return json_reply({"stat": "fail", "code": 105, "message": "Service currently unavailable"})
            return json_reply(
                {"stat": "fail", "code": 100, "message": "Invalid API Key (Key has invalid format)"}
            )
        raise AssertionError("search must not run")

    server.route("/services/rest/", handler)
    with pytest.raises(ApiError, match="Invalid API Key"):
        collect(make(server, "flickr", base_path="/services/rest"), query="bark")
    assert state["n"] == 2  # 105 retried once, 100 not retried


def test_flickr_needs_a_key(monkeypatch):
    monkeypatch.delenv("BENDER_FLICKR_KEY", raising=False)
    with pytest.raises(BenderError, match="BENDER_FLICKR_KEY"):
        PROVIDERS["flickr"].key_from_env()


# -- opt-in providers ------------------------------------------------------------------------


def test_unsplash(server):
    def handler(req):
        assert req.headers["Authorization"] == "Client-ID KEY" and req.headers["Accept-Version"] == "v1"
        page = int(req.params["page"])
        assert req.params["per_page"] == "30"
        r = {
            "id": f"Dwu85P9SOI{page}",
            "width": 5616,
            "height": 3744,
            "description": None,
            "alt_description": "man on a rock",
            "urls": {"raw": f"https://images.unsplash.com/photo-{page}?ixid=Mnw", "full": "x", "thumb": "t"},
            "links": {
                "html": f"https://unsplash.com/photos/{page}",
                "download_location": f"{server.base}/photos/{page}/download?ixid=Mnw",
            },
            "user": {"name": "Brian Aguirre", "links": {"html": "https://unsplash.com/@brianaguirre"}},
        }
        premium = dict(r, id="plus", premium=True)
        return json_reply({"total": 3, "total_pages": 2, "results": [r, premium]})

    server.route("/search/photos", handler)
    server.route("/photos/1/download", json_reply({"url": "https://images.unsplash.com/photo-1"}))
    p = make(server, "unsplash")
    got = collect(p)
    assert [c.provider_id for c in got] == ["Dwu85P9SOI1", "Dwu85P9SOI2"]
    c = got[0]
    assert c.license == "unsplash" and c.creator == "Brian Aguirre" and c.title == "man on a rock"
    assert c.image_url == "https://images.unsplash.com/photo-1?ixid=Mnw&w=1024&fm=jpg&q=90"
    assert (c.width, c.height) == (1024, 683)
    p.kept(c)
    assert server.hits["/photos/1/download"] == 1
    assert server.calls("/photos/1/download")[0].headers["Authorization"] == "Client-ID KEY"


def test_pexels_and_its_header_less_429(server):
    reset = int(time.time()) + 2  # a UNIX time 1-2 s ahead
    state = {"n": 0}

    def handler(req):
        state["n"] += 1
        assert req.headers["Authorization"] == "KEY"  # raw key, no Bearer
        page = int(req.params["page"])
        if state["n"] == 2:
            return json_reply({"error": "Rate limit exceeded"}, 429)  # no headers at all on a 429
        photo = {
            "id": 1619317 + page,
            "width": 3200,
            "height": 2125,
            "url": f"https://www.pexels.com/photo/{page}/",
            "photographer": "James Wheeler",
            "photographer_url": "https://www.pexels.com/@souvenirpixels",
            "photographer_id": "558609",
            "avg_color": "#5C575E",
            "src": {"original": f"https://images.pexels.com/photos/{page}/p.jpeg"},
            "alt": "Red canoes",
        }
        body = {"total_results": 2, "page": page, "per_page": 80, "photos": [photo]}
        if page == 1:
            body["next_page"] = (
                f"https://api.pexels.com/v1/search/?page=2&per_page=80&query={req.params['query']}"
            )
        return json_reply(
            body,
            headers={
                "X-Ratelimit-Limit": "20000",
                "X-Ratelimit-Remaining": "19999",
                "X-Ratelimit-Reset": str(reset),
            },
        )

    server.route("/v1/search", handler)
    t0 = time.monotonic()
    got = collect(make(server, "pexels", base_path="/v1"))
    assert [c.provider_id for c in got] == ["1619318", "1619319"]
    assert got[0].license == "pexels" and "Pexels" in got[0].attribution
    assert state["n"] == 3 and time.monotonic() - t0 >= 0.9  # waited for the remembered reset


def test_pixabay_pages_from_total_hits_and_plain_text_errors(server):
    def handler(req):
        assert req.params["key"] == "KEY" and req.params["per_page"] == "200"
        assert req.params["min_width"] == "512"
        page = int(req.params["page"])
        hits = [
            {
                "id": 195893 + page * 1000 + i,
                "pageURL": f"https://pixabay.com/en/x-{i}/",
                "type": "photo",
                "tags": "blossom, bloom",
                "largeImageURL": f"https://pixabay.com/get/{page}_{i}_1280.jpg",
                "imageWidth": 4000,
                "imageHeight": 2250,
                "user_id": 48777,
                "user": "Josch13",
            }
            for i in range(200 if page == 1 else 50)
        ]
        return json_reply(
            {"total": 4692, "totalHits": 250, "hits": hits},
            headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99", "X-RateLimit-Reset": "60"},
        )

    server.route("/api/", handler)
    got = collect(make(server, "pixabay", base_path="/api"), min_size=512)
    assert len(got) == 250 and server.hits["/api/"] == 2
    c = got[0]
    assert (c.width, c.height) == (1280, 720) and c.creator_url == "https://pixabay.com/users/Josch13-48777/"
    server.route("/api/", Reply(400, b'[ERROR 400] "page" is out of valid range.', content_type="text/plain"))
    with pytest.raises(ApiError, match="out of valid range"):
        collect(make(server, "pixabay", base_path="/api"))


def test_brave(server):
    def handler(req):
        assert req.headers["X-Subscription-Token"] == "KEY" and req.params["count"] == "200"
        return json_reply(
            {
                "type": "images",
                "query": {"original": "mountain"},
                "results": [
                    {
                        "type": "image_result",
                        "title": "Mountain",
                        "url": "https://example.com/page",
                        "source": "example.com",
                        "thumbnail": {"src": "https://imgs.search.brave.com/Zk3q"},
                        "properties": {
                            "url": "https://example.com/images/m.jpg",
                            "width": 1920,
                            "height": 1080,
                        },
                    },
                    {
                        "type": "image_result",
                        "title": "No size",
                        "url": "https://example.net/p",
                        "source": "example.net",
                        "properties": {"url": "https://example.net/i.jpg"},
                    },
                ],
            },
            headers={
                "X-RateLimit-Limit": "1, 15000",
                "X-RateLimit-Policy": "1;w=1, 15000;w=2592000",
                "X-RateLimit-Remaining": "1, 1000",
                "X-RateLimit-Reset": "1, 1419704",
            },
        )

    server.route("/res/v1/images/search", handler)
    got = collect(make(server, "brave", base_path="/res/v1"))
    assert [c.image_url for c in got] == ["https://example.com/images/m.jpg", "https://example.net/i.jpg"]
    assert (
        got[0].license is None and got[1].width is None and got[0].landing_url == "https://example.com/page"
    )
    server.route(
        "/res/v1/images/search",
        json_reply(
            {
                "type": "ErrorResponse",
                "error": {
                    "id": "x",
                    "status": 401,
                    "code": "SUBSCRIPTION_TOKEN_INVALID",
                    "detail": "The provided subscription token is invalid.",
                    "meta": {},
                },
                "time": 1730000000,
            },
            401,
        ),
    )
    with pytest.raises(ApiError, match="subscription token is invalid") as e:
        collect(make(server, "brave", base_path="/res/v1"))
    assert e.value.fatal


def test_serpapi(server):
    def handler(req):
        assert req.params["engine"] == "google_images" and req.params["api_key"] == "KEY"
        ijn = int(req.params["ijn"])
        if ijn == 2:
            return json_reply({"search_metadata": {"status": "Success"}})  # no images_results: done
        return json_reply(
            {
                "search_metadata": {"status": "Success"},
                "images_results": [
                    {
                        "position": 1,
                        "title": f"Anime {ijn}",
                        "link": "https://www.ign.com/a",
                        "original": f"https://assets.example.com/{ijn}.jpg",
                        "original_width": 1280,
                        "original_height": 720,
                    }
                ],
                "serpapi_pagination": {"current": ijn, "next": "https://serpapi.com/search.json?ijn=x"},
            }
        )

    server.route("/search.json", handler)
    got = collect(make(server, "serpapi"))
    assert [c.image_url for c in got] == [
        "https://assets.example.com/0.jpg",
        "https://assets.example.com/1.jpg",
    ]
    assert server.hits["/search.json"] == 3
    server.route(
        "/search.json", json_reply({"error": "Invalid API key. Your API key should be here: ..."}, 401)
    )
    with pytest.raises(ApiError, match="Invalid API key"):
        collect(make(server, "serpapi"))


# -- quota header shapes ------------------------------------------------------------------------


def test_quota_header_shapes():
    now = 1_700_000_000.0
    assert (
        quota_wait({"X-RateLimit-Available-anon_burst": "4", "X-RateLimit-Limit-anon_burst": "5/hour"}) == 0
    )
    assert (
        quota_wait({"X-RateLimit-Available-anon_burst": "0", "X-RateLimit-Limit-anon_burst": "5/hour"}) == 720
    )
    assert quota_wait({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(int(now) + 30)}, now) == 30
    assert quota_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"}, now) == 42
    assert quota_wait({"X-RateLimit-Remaining": "0, 1000", "X-RateLimit-Reset": "1, 1419704"}, now) == 1
    assert quota_wait({"X-RateLimit-Remaining": "5, 0", "X-RateLimit-Reset": "1, 1419704"}, now) == 1419704
    assert quota_wait({"Content-Type": "application/json"}) is None
    assert reset_at({"X-RateLimit-Remaining": "1, 1000", "X-RateLimit-Reset": "1, 1419704"}, now) == now + 1


def test_api_cache_avoids_repeat_requests(server, tmp_path):
    openverse_api(server, [openverse_result(i, f"https://x.example.org/{i}.jpg") for i in range(3)])
    for _ in range(2):
        collect(make(server, "openverse", key=None, base_path="/v1", cache_dir=tmp_path))
    assert server.hits["/v1/images/"] == 1

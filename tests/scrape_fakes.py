"""Loopback HTTP servers that mimic the image-search APIs, plus fault injection, for scraper tests.

Response shapes follow /work/shared/docs/image-search-apis.md (field names, nesting, types,
pagination and error conventions); values are made up. Shapes the reference marks *unverified*
(Unsplash/Brave/SerpApi errors, Pixabay's out-of-range text) are "shape from docs, unverified".

Everything binds to 127.0.0.1 only; tests reach it through `--allow-host 127.0.0.1:<port>`.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    delay: float = 0.0  # before the status line
    trickle: float = 0.0  # seconds between 1-byte writes of the body
    declared_length: int | None = None  # send this Content-Length (a lie, for truncation tests)
    chunked: bool = False  # no Content-Length: stream with chunked encoding
    reset: bool = False  # close the socket without answering


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


Handler = Callable[[Request], Reply]


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 routing exact paths to handlers; counts hits per path."""

    def __init__(self, tls: tuple[str, str] | None = None):
        self.routes: dict[str, Handler] = {}
        self.hits: Counter = Counter()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                req = Request(
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k: v for k, v in self.headers.items()},
                )
                with server._lock:
                    server.hits[parts.path] += 1
                    server.requests.append(req)
                handler = server.routes.get(parts.path)
                reply = (
                    handler(req)
                    if handler
                    else Reply(404, b'{"detail": "Not found."}', content_type="application/json")
                )
                server._send(self, reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # resets are on purpose
        if tls is not None:  # (certfile, keyfile)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.allow = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, path: str, handler: Handler | Reply) -> None:
        self.routes[path] = handler if callable(handler) else (lambda req, r=handler: r)

    def calls(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, r: Reply) -> None:
        if r.delay:
            time.sleep(r.delay)
        if r.reset:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.connection.close()
            h.close_connection = True
            return
        h.send_response(r.status)
        h.send_header("Content-Type", r.content_type)
        for k, v in r.headers.items():
            h.send_header(k, v)
        if r.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header(
                "Content-Length", str(r.declared_length if r.declared_length is not None else len(r.body))
            )
        if r.declared_length is not None:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        try:
            if r.chunked:
                for i in range(0, len(r.body), 65536):
                    piece = r.body[i : i + 65536]
                    h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                h.wfile.write(b"0\r\n\r\n")
            elif r.trickle:
                for i in range(len(r.body)):
                    h.wfile.write(r.body[i : i + 1])
                    h.wfile.flush()
                    time.sleep(r.trickle)
            else:
                h.wfile.write(r.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True


# -- images ----------------------------------------------------------------------------------------


def make_image(seed: int, size: int | tuple[int, int] = 64, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """A distinct, natural-ish picture per seed (smooth random blobs), encoded as `fmt`."""
    w, h = (size, size) if isinstance(size, int) else size
    rng = np.random.RandomState(seed)
    small = Image.fromarray((rng.rand(6, 6, 3) * 255).astype(np.uint8))
    img = small.resize((w, h), Image.BICUBIC)
    noise = rng.rand(h, w, 3) * 24 - 12
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def reencode(data: bytes, size: int, quality: int = 70) -> bytes:
    """The same picture at another size and quality: a near-duplicate."""
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def bomb_png(width: int = 9000, height: int = 9000) -> bytes:
    """A tiny PNG that claims width x height pixels (a decompression bomb when decoded)."""
    img = Image.new("1", (width, height))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def serve_image(server: FakeServer, path: str, data: bytes, **kw) -> str:
    server.route(path, Reply(200, data, content_type="image/jpeg", **kw))
    return server.base + path


# -- provider APIs -------------------------------------------------------------------------------


def json_reply(obj, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode(), headers=headers or {}, content_type="application/json")


def openverse_result(i: int, url: str, license: str = "cc0", width=640, height=480) -> dict:
    version = "1.0" if license == "cc0" else "4.0"
    lurl = (
        "https://creativecommons.org/publicdomain/zero/1.0/"
        if license == "cc0"
        else f"https://creativecommons.org/licenses/{license}/4.0/"
    )
    return {
        "id": f"4bc43a04-ef46-4544-a0c1-{i:012d}",
        "title": f"Rock {i}",
        "indexed_on": "2022-08-27T17:39:48Z",
        "foreign_landing_url": f"https://stocksnap.io/photo/ROCK{i}",
        "url": url,
        "creator": f"Creator {i}",
        "creator_url": f"https://example.org/c{i}",
        "license": license,
        "license_version": version,
        "license_url": lurl,
        "provider": "stocksnap",
        "source": "stocksnap",
        "category": "photograph",
        "filesize": 50000,
        "filetype": "jpg",
        "tags": [{"accuracy": None, "name": "rock", "unstable__provider": "stocksnap"}],
        "attribution": f'"Rock {i}" by Creator {i} is marked with CC0 1.0.',
        "fields_matched": ["title"],
        "mature": False,
        "height": height,
        "width": width,
        "thumbnail": f"https://api.openverse.org/v1/images/{i}/thumb/",
        "detail_url": f"https://api.openverse.org/v1/images/{i}/",
        "related_url": f"https://api.openverse.org/v1/images/{i}/related/",
        "unstable__sensitivity": [],
    }


def openverse_api(
    server: FakeServer, results: list[dict], page_size: int = 20, headers: dict | None = None
) -> None:
    """`/v1/images/`: page-number pagination, `page_count` capped at 20, license filter honoured."""

    def handler(req: Request) -> Reply:
        if (
            req.params.get("page_size")
            and int(req.params["page_size"]) > 20
            and "Authorization" not in req.headers
        ):
            return json_reply({"detail": "Authentication credentials were not provided."}, 401)
        for bad in ("li", "lt", "pagesize", "provider"):
            if bad in req.params:
                return json_reply(
                    {"error": "InputError", "detail": f"'{bad}' is deprecated", "fields": [bad]}, 400
                )
        rows = results
        if req.params.get("license"):
            allowed = set(req.params["license"].split(","))
            rows = [r for r in rows if r["license"] in allowed]
        size = int(req.params.get("page_size", 20))
        page = int(req.params.get("page", 1))
        count = min(20, max(1, -(-len(rows) // size)))
        if page > count:
            return json_reply({"detail": "Invalid page."}, 400)
        chunk = rows[(page - 1) * size : page * size]
        return json_reply(
            {
                "result_count": len(rows),
                "page_count": count,
                "page_size": size,
                "page": page,
                "results": chunk,
            },
            headers=headers
            or {"X-RateLimit-Limit-anon_burst": "5/hour", "X-RateLimit-Available-anon_burst": "4"},
        )

    server.route("/v1/images/", handler)


def commons_page(i: int, url: str, *, artist="html", license_url=True, width=1024, height=768) -> dict:
    meta = {
        "License": {"hidden": "", "source": "commons-templates", "value": "cc-by-sa-4.0"},
        "LicenseShortName": {"hidden": "", "source": "commons-desc-page", "value": "CC BY-SA 4.0"},
        "AttributionRequired": {"hidden": "", "source": "commons-desc-page", "value": "true"},
        "Credit": {
            "hidden": "",
            "source": "commons-desc-page",
            "value": '<span class="int-own-work" lang="en">Own work</span>',
        },
        "Restrictions": {"hidden": "", "source": "commons-desc-page", "value": ""},
    }
    if license_url:
        meta["LicenseUrl"] = {
            "hidden": "",
            "source": "commons-desc-page",
            "value": "https://creativecommons.org/licenses/by-sa/4.0",
        }
    if artist == "html":
        meta["Artist"] = {
            "source": "commons-desc-page",
            "value": f'<a href="//commons.wikimedia.org/wiki/User:P{i}" title="User:P{i}">Painter {i}</a>',
        }
    elif artist == "plain":
        meta["Artist"] = {"source": "commons-desc-page", "value": f"Plain Painter {i}"}
    name = f"Tree_{i}.jpg"
    return {
        "pageid": 81754000 + i,
        "ns": 6,
        "index": i,
        "imagerepository": "local",
        "title": f"File:{name}",
        "imageinfo": [
            {
                "url": url,
                "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{name}",
                "descriptionshorturl": f"https://commons.wikimedia.org/w/index.php?curid={i}",
                "size": 50000,
                "width": width,
                "height": height,
                "mime": "image/jpeg",
                "mediatype": "BITMAP",
                "extmetadata": meta,
            }
        ],
    }


def flickr_licenses() -> dict:
    names = [
        (0, "All Rights Reserved", ""),
        (
            1,
            "Attribution-NonCommercial-ShareAlike License",
            "https://creativecommons.org/licenses/by-nc-sa/2.0/",
        ),
        (2, "Attribution-NonCommercial License", "https://creativecommons.org/licenses/by-nc/2.0/"),
        (4, "Attribution License", "https://creativecommons.org/licenses/by/2.0/"),
        (5, "Attribution-ShareAlike License", "https://creativecommons.org/licenses/by-sa/2.0/"),
        (7, "No known copyright restrictions", "https://www.flickr.com/commons/usage/"),
        (8, "United States Government Work", "http://www.usa.gov/copyright.shtml"),
        (9, "Public Domain Dedication (CC0)", "https://creativecommons.org/publicdomain/zero/1.0/"),
        (10, "Public Domain Mark", "https://creativecommons.org/publicdomain/mark/1.0/"),
        (11, "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
        (12, "CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/"),
    ]
    return {"licenses": {"license": [{"id": i, "name": n, "url": u} for i, n, u in names]}, "stat": "ok"}


def flickr_photo(i: int, url: str, license: str = "4", sizes: str = "l") -> dict:
    p = {
        "id": str(49514824000 + i),
        "owner": f"7192553{i}@N03",
        "secret": "35d1b4f8db",
        "server": "65535",
        "farm": 66,
        "title": f"Bark {i}",
        "ispublic": 1,
        "isfriend": 0,
        "isfamily": 0,
        "license": license,
        "ownername": f"Owner {i}",
        "o_width": "6000",
        "o_height": "4000",
        "views": "70",
        "content_type": "0",
    }
    for s in sizes:
        p[f"url_{s}"] = url
        p[f"width_{s}"], p[f"height_{s}"] = 1024, 683
    return p

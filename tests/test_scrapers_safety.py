"""The SSRF guard and the guarded client, against real HTTP servers on 127.0.0.1.

A tripwire (`no_outside_connections`) fails any test that would open a socket to a non-loopback
address, so a broken guard shows up as a failed test, never as traffic to 10.x or 169.254.169.254.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from scrape_fakes import FakeServer, Reply, make_image

from bender.errors import BenderError
from scrapers.download import FetchConfig, FetchError, GuardedClient, parse_retry_after, user_agent
from scrapers.images import head_check
from scrapers.safety import BlockedURL, SafetyPolicy, check_url, is_public_address, parse_allow_host


@pytest.fixture(autouse=True)
def no_outside_connections(monkeypatch):
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
            raise AssertionError(f"test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def client_for(server: FakeServer, **kw) -> GuardedClient:
    cfg = FetchConfig(backoff_base=0.01, backoff_cap=0.05, read_timeout=kw.pop("read_timeout", 5.0), **kw)
    return GuardedClient(cfg, SafetyPolicy.from_strings([server.allow]))


@pytest.mark.parametrize(
    "address,public",
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a00:1", False),
        ("64:ff9b::808:808", True),
        ("2002:a00:1::1", False),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo whose client maps to 10.0.0.1
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public


def fixed(addresses):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "url,reason",
    [
        ("file:///etc/passwd", "bad scheme"),
        ("ftp://example.org/a.jpg", "bad scheme"),
        ("gopher://example.org/", "bad scheme"),
        ("http://user:pw@example.org/a.jpg", "userinfo in url"),
        ("http://example.org:8080/a.jpg", "port not allowed"),
        ("http:///a.jpg", "bad url"),
    ],
)
def test_check_url_refuses_bad_urls(url, reason):
    with pytest.raises(BlockedURL) as e:
        check_url(url, SafetyPolicy(), fixed(["93.184.216.34"]))
    assert e.value.reason == reason


def test_any_private_address_blocks_the_host():
    # One bad address among good ones is enough: the connection could land on it.
    with pytest.raises(BlockedURL, match="private address"):
        check_url("https://cdn.example.org/a.jpg", SafetyPolicy(), fixed(["93.184.216.34", "10.0.0.5"]))
    with pytest.raises(BlockedURL, match="private address"):
        check_url("http://localhost/a.jpg", SafetyPolicy())
    t = check_url("https://cdn.example.org/a.jpg", SafetyPolicy(), fixed(["93.184.216.34"]))
    assert (t.ip, t.host, t.port, t.host_header) == (
        "93.184.216.34",
        "cdn.example.org",
        443,
        "cdn.example.org",
    )


def test_allow_host_is_exact_host_and_port():
    policy = SafetyPolicy.from_strings(["127.0.0.1:8000", "[::1]:9000"])
    assert check_url("http://127.0.0.1:8000/x", policy).ip == "127.0.0.1"
    for url in ("http://127.0.0.1:8001/x", "http://localhost:8000/x", "http://127.0.0.2:8000/x"):
        with pytest.raises(BlockedURL):
            check_url(url, policy)
    assert check_url("http://[::1]:9000/x", policy, fixed(["::1"])).host_header == "[::1]:9000"
    assert parse_allow_host("LocalHost:80") == ("localhost", 80)
    with pytest.raises(BenderError):
        parse_allow_host("127.0.0.1")


def test_connection_is_pinned_to_the_checked_address(server):
    # "pinned.test" exists only in our resolver: the request can succeed only by connecting to the
    # address the guard checked, with the name kept for the Host header.
    server.route("/a", Reply(200, b"hello"))
    calls = []

    def resolve(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    cfg = FetchConfig(backoff_base=0.01)
    client = GuardedClient(cfg, SafetyPolicy.from_strings([f"pinned.test:{server.port}"]), resolve)
    resp = client.get(f"http://pinned.test:{server.port}/a")
    assert resp.body == b"hello"
    assert server.calls("/a")[0].headers["Host"] == f"pinned.test:{server.port}"
    assert calls == ["pinned.test"]


def test_user_agent_is_descriptive(server):
    server.route("/a", Reply(200, b"x"))
    client = GuardedClient(
        FetchConfig(user_agent=user_agent("https://example.org/me")),
        SafetyPolicy.from_strings([server.allow]),
    )
    client.get(server.base + "/a")
    ua = server.calls("/a")[0].headers["User-Agent"]
    assert ua.startswith("bender/") and "(https://example.org/me)" in ua and "requests/" in ua


@pytest.mark.parametrize(
    "location,reason",
    [
        ("http://127.0.0.1:{other}/b", "port not allowed"),  # same machine, another (unlisted) port
        ("http://10.0.0.1/b", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "private address"),
        ("http://[::ffff:169.254.169.254]/", "private address"),
        ("file:///etc/passwd", "bad scheme"),
        ("http://100.64.0.1/", "private address"),
    ],
)
def test_redirects_are_checked_on_every_hop(server, location, reason):
    with FakeServer() as other:
        server.route("/a", Reply(302, b"", headers={"Location": location.format(other=other.port)}))
        with pytest.raises(FetchError) as e:
            client_for(server).get(server.base + "/a")
        assert e.value.reason == reason
        assert other.hits["/b"] == 0


def test_redirect_chain_within_limits(server):
    server.route("/a", Reply(301, b"", headers={"Location": "/b"}))
    server.route("/b", Reply(307, b"", headers={"Location": server.base + "/c"}))
    server.route("/c", Reply(200, b"done"))
    resp = client_for(server).get(server.base + "/a")
    assert (resp.body, resp.final_url) == (b"done", server.base + "/c")
    server.route("/loop", Reply(302, b"", headers={"Location": "/loop"}))
    with pytest.raises(FetchError, match="too many redirects"):
        client_for(server, max_redirects=3).get(server.base + "/loop")
    assert server.hits["/loop"] == 4


def test_429_retry_after_is_honoured(server):
    state = {"n": 0}

    def flaky(req):
        state["n"] += 1
        if state["n"] == 1:
            return Reply(429, b"slow down", headers={"Retry-After": "1"})
        return Reply(200, b"ok")

    server.route("/a", flaky)
    t0 = time.monotonic()
    assert client_for(server).get(server.base + "/a").body == b"ok"
    assert time.monotonic() - t0 >= 1.0
    assert server.hits["/a"] == 2


def test_too_long_retry_after_gives_up(server):
    server.route("/a", Reply(429, b"", headers={"Retry-After": "3600"}))
    with pytest.raises(FetchError, match="rate limited"):
        client_for(server, max_retry_after=10).get(server.base + "/a")
    assert server.hits["/a"] == 1


def test_5xx_retried_4xx_not(server):
    state = {"n": 0}

    def flaky(req):
        state["n"] += 1
        return Reply(503, b"busy") if state["n"] < 3 else Reply(200, b"ok")

    server.route("/a", flaky)
    assert client_for(server).get(server.base + "/a").body == b"ok"
    assert server.hits["/a"] == 3
    server.route("/gone", Reply(404, b"nope"))
    with pytest.raises(FetchError, match="http 404"):
        client_for(server).get(server.base + "/gone")
    assert server.hits["/gone"] == 1
    server.route("/down", Reply(500, b"x"))
    with pytest.raises(FetchError, match="http 500"):
        client_for(server, max_attempts=3).get(server.base + "/down")
    assert server.hits["/down"] == 3


def test_timeouts_connection_resets_and_truncation(server):
    server.route("/slow", Reply(200, b"late", delay=1.5))
    with pytest.raises(FetchError) as e:
        client_for(server, read_timeout=0.3, max_attempts=2).get(server.base + "/slow")
    assert e.value.reason == "timeout" and e.value.retryable
    server.route("/reset", Reply(reset=True))
    with pytest.raises(FetchError) as e:
        client_for(server, max_attempts=2).get(server.base + "/reset")
    assert e.value.reason == "connection error"
    assert server.hits["/reset"] == 2
    server.route("/short", Reply(200, b"x" * 1000, declared_length=5000))
    with pytest.raises(FetchError) as e:
        client_for(server, max_attempts=1).get(server.base + "/short")
    assert e.value.reason == "truncated body"


def test_trickle_hits_the_total_deadline(server):
    server.route("/trickle", Reply(200, b"x" * 200, trickle=0.05))
    t0 = time.monotonic()
    with pytest.raises(FetchError, match="timeout"):
        client_for(server, deadline=0.5, max_attempts=1).get(server.base + "/trickle")
    assert time.monotonic() - t0 < 3


def test_byte_caps(server):
    server.route("/big", Reply(200, b"x" * 10_000))
    with pytest.raises(FetchError, match="too large"):
        client_for(server).get(server.base + "/big", max_bytes=5000)
    server.route("/bigchunked", Reply(200, b"x" * 300_000, chunked=True))
    with pytest.raises(FetchError, match="too large"):
        client_for(server).get(server.base + "/bigchunked", max_bytes=100_000)


def test_html_served_as_jpeg_is_refused_after_the_first_bytes(server):
    html = b"<!DOCTYPE html><html><body>" + b"captcha " * 50_000 + b"</body></html>"
    server.route("/fake.jpg", Reply(200, html, content_type="image/jpeg"))
    with pytest.raises(FetchError, match="not an image"):
        client_for(server).get(server.base + "/fake.jpg", head_check=head_check)
    server.route("/real.jpg", Reply(200, make_image(1), content_type="application/octet-stream"))
    assert (
        client_for(server).get(server.base + "/real.jpg", head_check=head_check).body[:3] == b"\xff\xd8\xff"
    )


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after(when) <= 31


def self_signed(tmp_path, name: str) -> tuple[str, str]:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_is_pinned_and_still_checks_the_certificate_name(tmp_path):
    # The client connects to 127.0.0.1 (the checked address) yet sends SNI and verifies the
    # certificate for the host name: a certificate for another name must fail.
    good = self_signed(tmp_path, "pinned.test")
    bad = self_signed(tmp_path, "other.test")
    for (cert, key), ok in ((good, True), (bad, False)):
        with FakeServer(tls=(cert, key)) as server:
            server.route("/a", Reply(200, b"secret"))
            policy = SafetyPolicy.from_strings([f"pinned.test:{server.port}"])
            cfg = FetchConfig(ca_bundle=cert, max_attempts=1)
            client = GuardedClient(cfg, policy, lambda host, port: ["127.0.0.1"])
            url = f"https://pinned.test:{server.port}/a"
            if ok:
                assert client.get(url).body == b"secret"
            else:
                with pytest.raises(FetchError, match="tls error"):
                    client.get(url)

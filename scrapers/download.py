"""The guarded HTTP client every request goes through (API pages and images alike).

It knows no provider. What it does, per request:

- checks every URL and every redirect hop with `safety.check_url` and connects to the checked
  address only (`PinnedAdapter`); redirects are followed by hand, at most `max_redirects` hops,
  http(s) only;
- caps bytes (early on `Content-Length`, then while streaming) and time (connect/read timeouts
  plus a total deadline, checked between reads, so a one-byte-a-second trickle cannot hang a worker);
- retries connection errors, timeouts, 429 and 5xx with exponential backoff and full jitter,
  waiting at least `Retry-After`; a 429 also pauses that host for every thread;
- limits concurrent connections per host (Wikimedia asks for at most 2) and sends one descriptive
  User-Agent, never a browser's.

The session comes from `requests` with connection pooling; proxies from the environment are
ignored on purpose, because a proxy would connect to an address we did not check.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

import bender
from scrapers.safety import (
    BlockedURL,
    DNSFailure,
    PinnedAdapter,
    Resolver,
    SafetyPolicy,
    Target,
    check_url,
)
from scrapers.safety import system_resolve as _system_resolve

REDIRECTS = (301, 302, 303, 307, 308)


def user_agent(contact: str | None = None) -> str:
    """`bender/<version> (<contact>) requests/<version>`, the shape Wikimedia's policy asks for.

    `contact` is a URL or e-mail address where a site operator can reach whoever runs the scrape
    (`--contact` or `BENDER_CONTACT`); without one the agent still says what it is.
    """
    who = contact or "image dataset tool; no contact given"
    return f"bender/{bender.__version__} ({who}) requests/{requests.__version__}"


@dataclass
class FetchConfig:
    """Limits and politeness settings for one client."""

    user_agent: str = field(default_factory=user_agent)
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 120.0  # seconds for one attempt, redirects and body included
    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_retry_after: float = 300.0  # a longer Retry-After gives up instead of sleeping
    per_host: int = 2
    pool_size: int = 32
    ca_bundle: str | None = None  # extra CA file for TLS checks (tests, private mirrors); None: certifi


class FetchError(Exception):
    """A request that did not produce a usable response. `reason` is short and categorical."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None,
                 detail: str = "", response: Fetched | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.detail = detail
        self.response = response


@dataclass
class Fetched:
    """A complete response: status, headers, the whole (capped) body, and where it came from."""

    url: str
    final_url: str
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes

    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def default_judge(resp: Fetched) -> FetchError | None:
    """Plain HTTP semantics: 2xx is fine, 429/5xx are worth retrying, other statuses are final."""
    if 200 <= resp.status < 300:
        return None
    retryable = resp.status == 429 or resp.status >= 500
    return FetchError(f"http {resp.status}", retryable=retryable, retry_after=resp.retry_after(),
                      response=resp)


Judge = Callable[[Fetched], "FetchError | None"]
HeadCheck = Callable[[bytes], "str | None"]
HeaderCheck = Callable[[requests.Response], "str | None"]


class GuardedClient:
    """Thread-safe guarded fetching with retries; one per run, shared by every worker."""

    def __init__(self, config: FetchConfig | None = None, policy: SafetyPolicy | None = None,
                 resolve: Resolver | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config or FetchConfig()
        self.policy = policy or SafetyPolicy()
        self.resolve = resolve or _system_resolve
        self.sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc: they would bypass the pinning
        if self.config.ca_bundle:
            self.session.verify = self.config.ca_bundle
        adapter = PinnedAdapter(pool_connections=self.config.pool_size,
                                pool_maxsize=self.config.pool_size, max_retries=0)
        self.session.adapters.clear()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._host_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
        self._host_not_before: dict[tuple[str, int], float] = {}

    def close(self) -> None:
        self.session.close()

    # -- one attempt, redirects included ------------------------------------------------------

    def fetch_once(self, url: str, *, headers: dict | None = None, max_bytes: int | None = None,
                   head_check: HeadCheck | None = None, header_check: HeaderCheck | None = None,
                   ) -> Fetched:
        """GET `url`, following checked redirects; the body is read whole within the caps.

        `header_check(response)` may veto on headers (e.g. `X-Robots-Tag: noai`) and
        `head_check(first_bytes)` on the first bytes (e.g. HTML instead of an image) before the rest
        of the body is read; each returns a reason string to refuse, or None.
        """
        cap = max_bytes or self.config.max_bytes
        deadline = time.monotonic() + self.config.deadline
        current = url
        for _hop in range(self.config.max_redirects + 1):
            try:
                target = check_url(current, self.policy, self.resolve)
            except DNSFailure as e:
                raise FetchError("dns failure", detail=str(e)) from None
            except BlockedURL as e:
                raise FetchError(e.reason, detail=str(e)) from None
            with self._host_slot(target):
                resp = self._send(target, headers)
                try:
                    if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                        current = urljoin(current, resp.headers["Location"].strip())
                        continue
                    if header_check is not None and 200 <= resp.status_code < 300:
                        veto = header_check(resp)
                        if veto:
                            raise FetchError(veto)
                    body = self._read_body(resp, cap, deadline,
                                           head_check if 200 <= resp.status_code < 300 else None)
                    return Fetched(url=url, final_url=current, status=resp.status_code,
                                   headers=resp.headers, body=body)
                finally:
                    resp.close()
        raise FetchError("too many redirects", detail=url)

    def _send(self, target: Target, headers: dict | None) -> requests.Response:
        req = requests.Request("GET", target.url, headers={
            "User-Agent": self.config.user_agent, "Accept-Encoding": "gzip, deflate", **(headers or {}),
            "Host": target.host_header})
        prepared = self.session.prepare_request(req)
        prepared.pinned_target = target
        try:
            return self.session.send(prepared, stream=True, allow_redirects=False, proxies={},
                                     timeout=(self.config.connect_timeout, self.config.read_timeout))
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as e:
            raise FetchError("timeout", retryable=True, detail=str(e)) from None
        except requests.exceptions.SSLError as e:
            raise FetchError("tls error", detail=str(e)) from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as e:
            raise FetchError("connection error", retryable=True, detail=str(e)) from None

    def _read_body(self, resp: requests.Response, cap: int, deadline: float,
                   head_check: HeadCheck | None) -> bytes:
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > cap:
            raise FetchError("too large", detail=f"Content-Length {length} > {cap}")
        parts: list[bytes] = []
        size = 0
        checked = head_check is None
        try:
            while True:
                # read1 returns whatever has arrived, so the deadline is checked even on a trickle.
                chunk = resp.raw.read1(256 * 1024, decode_content=True)
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
                if size > cap:
                    raise FetchError("too large", detail=f"more than {cap} bytes")
                if not checked and size >= 16:
                    checked = True
                    veto = head_check(b"".join(parts))
                    if veto:
                        raise FetchError(veto)
                if time.monotonic() > deadline:
                    raise FetchError("timeout", retryable=True, detail="total deadline passed")
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as e:
            raise FetchError("timeout", retryable=True, detail=str(e)) from None
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.IncompleteRead) as e:
            raise FetchError("truncated body", retryable=True, detail=str(e)) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise FetchError("connection error", retryable=True, detail=str(e)) from None
        body = b"".join(parts)
        if not checked and head_check is not None:
            veto = head_check(body)
            if veto:
                raise FetchError(veto)
        return body

    # -- retries ----------------------------------------------------------------------------

    def get(self, url: str, *, headers: dict | None = None, max_bytes: int | None = None,
            judge: Judge = default_judge, head_check: HeadCheck | None = None,
            header_check: HeaderCheck | None = None) -> Fetched:
        """`fetch_once` with retries: backoff with full jitter, at least `Retry-After`.

        `judge(response)` turns a complete response into an error (or None for success); API clients
        pass one that also understands errors inside HTTP 200 bodies.
        """
        attempts = max(1, self.config.max_attempts)
        for attempt in range(attempts):
            try:
                resp = self.fetch_once(url, headers=headers, max_bytes=max_bytes, head_check=head_check,
                                       header_check=header_check)
                problem = judge(resp)
                if problem is None:
                    return resp
            except FetchError as e:
                problem = e
            if not problem.retryable or attempt == attempts - 1:
                raise problem
            wait = self.backoff(attempt, problem.retry_after)
            if problem.retry_after is not None and problem.retry_after > self.config.max_retry_after:
                raise FetchError("rate limited", detail=f"Retry-After {problem.retry_after:.0f}s is "
                                 f"longer than {self.config.max_retry_after:.0f}s", response=problem.response)
            if problem.reason == "http 429":
                self._pause_host(url, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Full-jitter exponential backoff, but never shorter than the server asked for."""
        ceiling = min(self.config.backoff_cap, self.config.backoff_base * (2 ** attempt))
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    # -- per-host politeness ----------------------------------------------------------------

    def _host_key(self, target_or_url) -> tuple[str, int] | None:
        if isinstance(target_or_url, str):
            try:
                parts = urlsplit(target_or_url)
                scheme = parts.scheme.lower()
                return ((parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80))
            except ValueError:
                return None
        return (target_or_url.host, target_or_url.port)

    def _pause_host(self, url: str, seconds: float) -> None:
        key = self._host_key(url)
        if key is not None:
            with self._lock:
                self._host_not_before[key] = max(self._host_not_before.get(key, 0.0),
                                                 time.monotonic() + seconds)

    class _Slot:
        def __init__(self, client: GuardedClient, key: tuple[str, int]):
            self.client, self.key = client, key

        def __enter__(self):
            client = self.client
            with client._lock:
                sem = client._host_slots.get(self.key)
                if sem is None:
                    sem = client._host_slots[self.key] = threading.BoundedSemaphore(client.config.per_host)
            self.sem = sem
            sem.acquire()
            with client._lock:
                wait = client._host_not_before.get(self.key, 0.0) - time.monotonic()
            if wait > 0:
                client.sleep(wait)
            return self

        def __exit__(self, *exc):
            self.sem.release()

    def _host_slot(self, target) -> GuardedClient._Slot:
        return GuardedClient._Slot(self, self._host_key(target))


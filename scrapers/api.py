"""JSON API requests for providers, on top of the guarded client.

Providers differ in how they fail (errors inside HTTP 200 bodies, 429s without headers, quota in
odd header shapes), so each passes a `judge` that knows its error bodies; this module does the
rest, the same for all:

- one request in flight per provider, at least `min_interval` apart (Flickr counts per key,
  Commons asks for serial requests);
- pacing from rate-limit headers (`quota.quota_wait`): wait for the reset when quota runs out,
  and stop the provider with a clear message when that wait is longer than `max_wait`;
- on a 429 without `Retry-After`, wait until the last reset seen (Pexels sends none on 429);
- an on-disk cache of successful pages for `cache_ttl` (Pixabay requires 24 h; it also makes a
  resumed run cheap and polite);
- failures become `ApiError` with the provider's own message; `fatal` ones (network down, bad key,
  quota used up) stop that provider for the whole run.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from requests.models import PreparedRequest

from bender.fileio import atomic_write_text
from scrapers.download import Fetched, FetchError, GuardedClient, default_judge
from scrapers.quota import quota_wait, reset_at

API_MAX_BYTES = 8 * 1024 * 1024
NETWORK_REASONS = ("dns failure", "connection error", "timeout", "tls error")


class ApiError(Exception):
    """A provider request failed. `fatal`: stop this provider for the run; `network`: unreachable."""

    def __init__(self, message: str, *, fatal: bool = False, network: bool = False):
        super().__init__(message)
        self.fatal = fatal
        self.network = network


def error_message(resp: Fetched) -> str:
    """The most useful line from an error body, whatever its shape."""
    try:
        data = json.loads(resp.body)
    except (ValueError, UnicodeDecodeError):
        text = resp.body[:300].decode("utf-8", "replace").strip()
        return " ".join(text.split()) or f"HTTP {resp.status}"
    if isinstance(data, dict):
        for key in ("detail", "message", "error", "errors", "info"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("detail") or value.get("info") or value.get("message") or value.get("code")
            if isinstance(value, list):
                value = "; ".join(str(v.get("text", v)) if isinstance(v, dict) else str(v) for v in value)
            if value:
                return str(value)
    return f"HTTP {resp.status}"


class ApiClient:
    """Serial, paced, cached JSON GETs for one provider."""

    def __init__(self, client: GuardedClient, name: str, *, min_interval: float = 0.0,
                 max_wait: float = 120.0, cache_dir: str | Path | None = None, cache_ttl: float = 86400.0):
        self.client = client
        self.name = name
        self.min_interval = min_interval
        self.max_wait = max_wait
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_ttl = cache_ttl
        self.requests_sent = 0
        self._lock = threading.Lock()
        self._next_ok = 0.0  # monotonic time before which no request may start
        self._reset_at: float | None = None  # UNIX time of the last announced quota reset

    def get_json(self, url: str, params: dict | None = None, headers: dict | None = None,
                 judge: Callable[[Fetched], FetchError | None] | None = None, *, use_cache: bool = True):
        full = _with_params(url, params)
        key = hashlib.sha256(json.dumps([full, sorted((headers or {}).items())]).encode()).hexdigest()
        if use_cache:
            cached = self._cache_get(key)
            if cached is not None:
                return cached
        with self._lock:
            wait = self._next_ok - time.monotonic()
            if wait > self.max_wait:
                raise ApiError(f"{self.name}: rate limit used up; it resets in about {wait / 60:.0f} min "
                               "(rerun later: finished work is kept)", fatal=True)
            if wait > 0:
                self.client.sleep(wait)
            try:
                self.requests_sent += 1
                resp = self.client.get(full, headers=headers, max_bytes=API_MAX_BYTES,
                                       judge=self._judge(judge or default_judge))
            except FetchError as e:
                raise self._api_error(e) from None
            finally:
                self._next_ok = time.monotonic() + self.min_interval
            self._note_quota(resp)
            try:
                data = json.loads(resp.body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(f"{self.name}: the API answered with something that is not JSON") from None
        if use_cache:
            self._cache_put(key, data)
        return data

    def _judge(self, inner: Callable[[Fetched], FetchError | None]) -> Callable[[Fetched], FetchError | None]:
        def judge(resp: Fetched) -> FetchError | None:
            problem = inner(resp)
            if problem is not None and resp.status == 429 and problem.retry_after is None \
                    and self._reset_at is not None:
                problem.retry_after = max(0.0, self._reset_at - time.time())
            if problem is None:
                self._note_quota(resp)
            return problem
        return judge

    def _note_quota(self, resp: Fetched) -> None:
        at = reset_at(resp.headers)
        if at is not None:
            self._reset_at = at
        wait = quota_wait(resp.headers)
        if wait:
            self._next_ok = max(self._next_ok, time.monotonic() + wait)

    def _api_error(self, e: FetchError) -> ApiError:
        message = error_message(e.response) if e.response is not None else (e.detail or e.reason)
        if e.reason in NETWORK_REASONS:
            return ApiError(f"{self.name}: cannot reach the API ({e.detail or e.reason})", fatal=True,
                            network=True)
        if e.reason in ("private address", "port not allowed", "bad scheme", "userinfo in url"):
            return ApiError(f"{self.name}: refused to contact the API: {e} (a local mirror needs "
                            "--allow-host HOST:PORT)", fatal=True)
        fatal = e.reason in ("http 401", "http 403", "rate limited", "http 429") \
            or e.reason.startswith("http 5")
        return ApiError(f"{self.name}: {e.reason}: {message}", fatal=fatal)

    # -- cache -------------------------------------------------------------------------------

    def _cache_get(self, key: str):
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if time.time() - float(entry.get("saved", 0)) > self.cache_ttl:
            return None
        return entry.get("data")

    def _cache_put(self, key: str, data) -> None:
        if self.cache_dir is None:
            return
        atomic_write_text(self.cache_dir / f"{key}.json", json.dumps({"saved": time.time(), "data": data}))


def _with_params(url: str, params: dict | None) -> str:
    if not params:
        return url
    p = PreparedRequest()
    p.prepare_url(url, {k: v for k, v in params.items() if v is not None})
    return p.url

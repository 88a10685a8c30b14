"""Query → providers → guarded downloader → `images/` + `manifest.jsonl`, resumable and deduplicated.

The main thread asks the providers for pages (round-robin, so every provider contributes to each
query, and one API request at a time) and hands candidates to a thread pool. A worker fetches,
sniffs, decodes and hashes one image, claims it in the dedup index, writes the file atomically and
only then appends its manifest record. So at any kill -9 the manifest holds whole records whose
files exist, and a rerun skips everything already decided (kept, duplicate, or rejected for a lasting
reason; network failures are tried again).

`limit` counts kept images per query, including those kept by earlier runs; no more than
`limit - kept` downloads are in flight at once, so a run never overshoots.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from bender.errors import BenderError
from bender.fileio import atomic_write_bytes
from scrapers.api import ApiClient, ApiError
from scrapers.candidate import Candidate
from scrapers.dedup import DedupIndex
from scrapers.download import FetchConfig, FetchError, GuardedClient, user_agent
from scrapers.images import DEFAULT_MAX_PIXELS, ImageRejected, head_check, inspect_image
from scrapers.manifest import MANIFEST_NAME, ManifestWriter, is_final, load_manifest, make_record
from scrapers.providers import DEFAULT_PROVIDERS, PROVIDERS, Provider, SearchOptions
from scrapers.safety import Resolver, SafetyPolicy

IMAGES_DIR = "images"


@dataclass
class ScrapeConfig:
    """Everything one run needs; the CLI fills it from flags."""

    queries: list[str]
    out: Path
    providers: list[str] = field(default_factory=lambda: list(DEFAULT_PROVIDERS))
    limit: int = 100  # kept images per query
    licenses: frozenset[str] | None = None  # None: each provider's default
    min_size: int = 0  # shortest side, pixels
    workers: int = 8
    per_host: int = 2
    phash_distance: int = 4  # 0 turns perceptual dedup off
    api_bases: dict[str, str] = field(default_factory=dict)
    allow_hosts: list[str] = field(default_factory=list)
    contact: str | None = None
    accept_terms: bool = False
    label_from_query: bool = False
    skip_noai: bool = True
    safe_search: bool = True
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    fsync: bool = True
    cache_api: bool = True
    api_max_wait: float = 120.0
    api_min_interval: float | None = None  # None: each provider's own pacing
    fetch: FetchConfig | None = None  # timeouts, retries, backoff; None: defaults
    resolve: Resolver | None = None  # DNS resolver (tests inject one); None: the system's


@dataclass
class Summary:
    kept: int = 0
    duplicate: int = 0
    rejected: Counter = field(default_factory=Counter)
    already_done: int = 0
    provider_errors: list[str] = field(default_factory=list)
    candidates: int = 0

    def count(self, status: str, reason: str | None) -> None:
        if status == "kept":
            self.kept += 1
        elif status == "duplicate":
            self.duplicate += 1
        else:
            self.rejected[reason or "unknown"] += 1

    def line(self) -> str:
        rej = sum(self.rejected.values())
        text = f"kept {self.kept}, duplicate {self.duplicate}, rejected {rej}"
        if rej:
            text += " (" + ", ".join(f"{r} {n}" for r, n in self.rejected.most_common()) + ")"
        if self.already_done:
            text += f"; {self.already_done} skipped as done in an earlier run"
        return text


def build_providers(config: ScrapeConfig, client: GuardedClient,
                    warn: Callable[[str], None]) -> list[Provider]:
    names = [n.strip().lower() for n in config.providers if n.strip()]
    if not names:
        raise BenderError("no provider given: use --provider openverse,wikimedia (or urls, folder, ...)")
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise BenderError(f"unknown provider {unknown[0]!r}; choose from {', '.join(PROVIDERS)}")
    local = [n for n in names if PROVIDERS[n].local]
    if local and len(names) > 1:
        raise BenderError(f"'{local[0]}' reads the paths given as queries; run it on its own, "
                          "not together with search providers")
    for name in config.api_bases:
        if name not in names:
            raise BenderError(f"--api-base for {name!r}, which is not among the providers "
                              f"({', '.join(names)})")
    out = []
    for name in names:
        cls = PROVIDERS[name]
        if cls.terms_warning:
            if not config.accept_terms:
                raise BenderError(f"{name} is opt-in. {cls.terms_warning} If you have that permission, "
                                  "rerun with --accept-terms")
            warn(f"warning: {name}: {cls.terms_warning}")
        if name == "wikimedia" and not config.contact:
            warn("warning: wikimedia asks every client to give a contact in its User-Agent: "
                 "pass --contact URL-or-email (or set BENDER_CONTACT)")
        key = cls.key_from_env() if cls.key_name else None
        api = None
        if not cls.local:
            interval = cls.min_interval if config.api_min_interval is None else config.api_min_interval
            cache = config.out / ".cache" / "api" / name if config.cache_api else None
            api = ApiClient(client, name, min_interval=interval, max_wait=config.api_max_wait,
                            cache_dir=cache)
        base = config.api_bases.get(name) or os.environ.get(cls.base_env()) or None
        out.append(cls(api, base, key))
    return out


class Scraper:
    """One run. `run()` returns the summary; `progress(status, summary)` is called per candidate."""

    def __init__(self, config: ScrapeConfig, progress: Callable[[str, Summary], None] | None = None,
                 warn: Callable[[str], None] = print):
        if config.limit < 1:
            raise BenderError("--limit must be at least 1")
        self.config = config
        self.progress = progress
        self.warn = warn
        self.out = Path(config.out)
        self.summary = Summary()
        self._lock = threading.Lock()

    # -- setup --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        cfg = self.config
        (self.out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        for tmp in (self.out / IMAGES_DIR).glob(".*.tmp*"):  # temp files of a killed run
            tmp.unlink(missing_ok=True)
        self.records = load_manifest(self.out / MANIFEST_NAME)
        self.index = DedupIndex(cfg.phash_distance)
        self.kept_per_query: Counter = Counter()
        for rec in self.records.values():
            if rec.get("status") == "kept" and rec.get("sha256"):
                if rec.get("path") and not (self.out / rec["path"]).exists():
                    continue  # the file was deleted by hand: let a rerun fetch it again
                self.index.add(rec["sha256"], rec.get("phash"))
                self.kept_per_query[rec.get("query")] += 1
        self.done = {i for i, rec in self.records.items() if is_final(rec)
                     and not (rec.get("status") == "kept" and rec.get("path")
                              and not (self.out / rec["path"]).exists())}
        base = cfg.fetch or FetchConfig()
        fetch = dataclasses.replace(base, user_agent=user_agent(cfg.contact), per_host=cfg.per_host,
                                    max_bytes=cfg.max_bytes, pool_size=max(base.pool_size, cfg.workers * 2))
        self.client = GuardedClient(fetch, SafetyPolicy.from_strings(cfg.allow_hosts), cfg.resolve)
        self.providers = build_providers(cfg, self.client, self.warn)
        self.options = SearchOptions(licenses=cfg.licenses, min_size=cfg.min_size,
                                     safe_search=cfg.safe_search)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> Summary:
        self._prepare()
        self.disabled: set[str] = set()
        self.network_errors = 0
        self.network_messages: set[str] = set()
        self.seen: set[str] = set()
        try:
            with ManifestWriter(self.out / MANIFEST_NAME, fsync=self.config.fsync) as self.writer:
                self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="scrape")
                try:
                    for query in self.config.queries:
                        self._run_query(query)
                except BaseException:
                    # Ctrl-C or an error: drop queued work, let running downloads record themselves
                    # (each is bounded by the download deadline) while the manifest is still open.
                    self.pool.shutdown(wait=True, cancel_futures=True)
                    raise
                self.pool.shutdown(wait=True)
        finally:
            self.client.close()
        s = self.summary
        if s.provider_errors and not s.candidates and not s.already_done:
            first = s.provider_errors[0]
            n_more = len(s.provider_errors) - 1
            more = f" (and {n_more} more provider errors)" if n_more else ""
            hint = " -- check your network connection, or point --api-base at a reachable mirror" \
                if self.network_errors == len(s.provider_errors) else ""
            raise BenderError(first + more + hint)
        for message in s.provider_errors:
            if message in self.network_messages:
                self.warn(f"warning: {message}")
        return s

    def _run_query(self, query: str) -> None:
        limit = self.config.limit
        kept = self.kept_per_query[query]
        rr = deque((p, p.pages(query, self.options)) for p in self.providers if p.name not in self.disabled)
        pending: deque[tuple[Provider, Candidate]] = deque()
        inflight: dict = {}
        seen = self.seen  # run-wide: an image found by two queries is decided once
        queue_cap = self.config.workers * 4  # enough to keep workers busy; pages are read lazily
        while True:
            while kept + len(inflight) < limit and len(inflight) < queue_cap:
                if not pending:
                    if not rr:
                        break
                    provider, pages = rr.popleft()
                    if provider.name in self.disabled:
                        continue
                    try:
                        page = next(pages)
                    except StopIteration:
                        continue
                    except ApiError as e:
                        self._provider_failed(provider, e)
                        continue
                    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a malformed page
                        self._provider_failed(provider, ApiError(
                            f"{provider.name}: unexpected response ({type(e).__name__}: {e})", fatal=True))
                        continue
                    rr.append((provider, pages))
                    pending.extend((provider, c) for c in page)
                    continue
                provider, c = pending.popleft()
                if c.id in seen:
                    continue
                seen.add(c.id)
                self.summary.candidates += 1
                if c.id in self.done:
                    self.summary.already_done += 1
                    continue
                if self.config.label_from_query and c.label is None:
                    c.label = query
                reason = self._prefilter(provider, c)
                if reason:
                    self._finish(make_record(c, "rejected", reason))
                    continue
                inflight[self.pool.submit(self._process, provider, c)] = c
            if not inflight:
                break
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for f in finished:
                del inflight[f]
                if f.result() == "kept":
                    kept += 1
        self.kept_per_query[query] = kept

    def _provider_failed(self, provider: Provider, e: ApiError) -> None:
        message = str(e)
        self.summary.provider_errors.append(message)
        if e.network:
            self.network_errors += 1
            self.network_messages.add(message)
        if e.fatal:
            self.disabled.add(provider.name)
        if not e.network:  # unreachable APIs are reported once, at the end (see `run`)
            self.warn(f"warning: {message}" + ("; skipping it for the rest of this run" if e.fatal else ""))

    def _prefilter(self, provider: Provider, c: Candidate) -> str | None:
        """Reasons to reject without downloading: licence, and size when the provider knows it."""
        wanted = provider.licenses_for(self.options)
        if wanted is not None and (c.license or "unknown") not in wanted:
            return f"license {c.license or 'unknown'}"
        m = self.config.min_size
        if m and c.width and c.height and min(c.width, c.height) < m:
            return "too small"
        if not c.image_url and not c.local_path:
            return "no image url"
        return None

    def _process(self, provider: Provider, c: Candidate) -> str:
        """Worker: fetch → check → dedup → write file → append record. Never raises."""
        try:
            return self._process_inner(provider, c)
        except Exception as e:  # a bug must cost one image, not the run
            return self._finish(make_record(c, "rejected", f"error {type(e).__name__}"))

    def _process_inner(self, provider: Provider, c: Candidate) -> str:
        cfg = self.config
        final_url = c.image_url
        try:
            if c.local_path:
                data = _read_local(c.local_path, cfg.max_bytes)
            else:
                resp = self.client.get(c.image_url, headers={"Accept": "image/*"}, head_check=head_check,
                                       header_check=_noai if cfg.skip_noai else None)
                data, final_url = resp.body, resp.final_url
            info = inspect_image(data, cfg.max_pixels)
        except (FetchError, ImageRejected) as e:
            return self._finish(make_record(c, "rejected", e.reason, final_url=final_url))
        except OSError as e:
            return self._finish(make_record(c, "rejected", f"unreadable ({e.strerror or e})"))
        sha = hashlib.sha256(data).hexdigest()
        measured = {"final_url": final_url, "width": info.width, "height": info.height, "sha256": sha,
                    "phash": info.phash}
        if cfg.min_size and min(info.width, info.height) < cfg.min_size:
            return self._finish(make_record(c, "rejected", "too small", **measured))
        dup = self.index.claim(sha, info.phash)
        if dup is not None:
            return self._finish(make_record(c, "duplicate", f"duplicate of {dup}", **measured))
        rel = f"{IMAGES_DIR}/{sha}.{info.ext}"
        try:
            target = self.out / rel
            if not target.exists():
                atomic_write_bytes(target, data)
        except OSError:
            self.index.release(sha)
            return self._finish(make_record(c, "rejected", "write failed", **measured))
        status = self._finish(make_record(c, "kept", None, path=rel, **measured))
        try:
            provider.kept(c)
        except Exception as e:  # a failed courtesy ping must not lose the image
            self.warn(f"warning: {provider.name}: could not report the download: {e}")
        return status

    def _finish(self, record: dict) -> str:
        self.writer.append(record)
        with self._lock:
            self.summary.count(record["status"], record["reason"])
            if self.progress is not None:
                self.progress(record["status"], self.summary)
        return record["status"]


def _noai(resp) -> str | None:
    tag = resp.headers.get("X-Robots-Tag", "").lower()
    return "noai" if "noai" in tag or "noimageai" in tag else None


def _read_local(path: str, cap: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise ImageRejected("too large")
    return data


def scrape(config: ScrapeConfig, progress: Callable[[str, Summary], None] | None = None,
           warn: Callable[[str], None] = print) -> Summary:
    """Run one scrape into `config.out`; see `ScrapeConfig`. Safe to rerun: it resumes."""
    return Scraper(config, progress, warn).run()

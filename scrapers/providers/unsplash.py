"""Unsplash (`GET /search/photos`), opt-in: its API terms restrict ML/AI use of the photos.

Auth `Authorization: Client-ID <BENDER_UNSPLASH_KEY>` plus `Accept-Version: v1`; 30 a page; pages
until `total_pages`. Every photo is under the Unsplash License (code `unsplash`). Unsplash+ items
(`premium` or `plus.unsplash.com` URLs) are skipped. The terms ask that each download be reported to
`links.download_location`: `kept()` does that once an image is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.licenses import build_attribution
from scrapers.providers.base import Provider, SearchOptions, as_int

PER_PAGE = 30


class Unsplash(Provider):
    name = "unsplash"
    default_api_base = "https://api.unsplash.com"
    key_name = "key"
    key_required = True
    terms_warning = ("Unsplash's API terms say the API is for non-automated use and that using the "
                     "photos for machine learning / AI is restricted: get Unsplash's permission first.")

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        headers = {"Authorization": f"Client-ID {self.key}", "Accept-Version": "v1"}
        page = 1
        while True:
            data = self.get(f"{self.base}/search/photos", {
                "query": query, "page": str(page), "per_page": str(PER_PAGE),
                "content_filter": "high" if opts.safe_search else "low"}, headers)
            results = [r for r in data.get("results") or [] if isinstance(r, dict)]
            yield [c for c in (self._candidate(r, query, opts) for r in results) if c is not None]
            if not results or page >= (as_int(data.get("total_pages")) or 0):
                return
            page += 1

    def _candidate(self, r: dict, query: str, opts: SearchOptions) -> Candidate | None:
        urls = r.get("urls") or {}
        raw = urls.get("raw") or urls.get("full")
        if not raw or r.get("premium") or "plus.unsplash.com" in raw:
            return None
        w, h = as_int(r.get("width")), as_int(r.get("height"))
        # Ask imgix for a sensible size instead of a 30 MP original.
        target = max(1024, 2 * opts.min_size)
        if urls.get("raw") and w and h and max(w, h) > target:
            sep = "&" if "?" in raw else "?"
            key = "w" if w >= h else "h"
            raw = f"{raw}{sep}{key}={target}&fm=jpg&q=90"
            scale = target / max(w, h)
            w, h = round(w * scale), round(h * scale)
        user = r.get("user") or {}
        creator = user.get("name") or user.get("username")
        title = r.get("description") or r.get("alt_description")
        return Candidate(
            provider=self.name, provider_id=str(r.get("id")), query=query, image_url=raw,
            landing_url=(r.get("links") or {}).get("html"), license="unsplash",
            license_url="https://unsplash.com/license", creator=creator,
            creator_url=(user.get("links") or {}).get("html"), title=title,
            attribution=build_attribution(title, creator, "unsplash", None, "https://unsplash.com/license")
            + " Photo on Unsplash.", width=w, height=h,
            notify_url=(r.get("links") or {}).get("download_location"))

    def kept(self, c: Candidate) -> None:
        if c.notify_url and c.notify_url.startswith(self.base + "/"):
            self.api.get_json(c.notify_url, headers={"Authorization": f"Client-ID {self.key}",
                                                     "Accept-Version": "v1"}, use_cache=False)

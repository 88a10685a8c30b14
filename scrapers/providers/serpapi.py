"""SerpApi (`engine=google_images`), opt-in and paid: Google Images results of unknown licence.

Auth `api_key=` from `BENDER_SERPAPI_KEY`. Pages by `ijn` (0-based) until `images_results` is empty;
we increment `ijn` ourselves rather than following `serpapi_pagination.next`. Errors are JSON
`{"error": "..."}`. Image URLs point at arbitrary hosts and go through the SSRF guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.providers.base import Provider, SearchOptions, as_int

MAX_PAGES = 20


class SerpApi(Provider):
    name = "serpapi"
    default_api_base = "https://serpapi.com"
    key_name = "key"
    key_required = True
    min_interval = 1.0
    terms_warning = ("SerpApi returns Google Images results whose licence and creator are unknown: you "
                     "are responsible for having the right to use each one.")

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        for ijn in range(MAX_PAGES):
            data = self.get(f"{self.base}/search.json", {
                "engine": "google_images", "q": query, "ijn": str(ijn), "api_key": self.key,
                "safe": "active" if opts.safe_search else "off"})
            results = [r for r in data.get("images_results") or [] if isinstance(r, dict)]
            if not results:
                return
            yield [c for c in (self._candidate(r, query) for r in results) if c is not None]
            if not (data.get("serpapi_pagination") or {}).get("next"):
                return

    def _candidate(self, r: dict, query: str) -> Candidate | None:
        url = r.get("original")
        if not url:
            return None
        return Candidate(
            provider=self.name, provider_id=hashlib.sha256(url.encode()).hexdigest()[:20], query=query,
            image_url=url, landing_url=r.get("link"), license=None, title=r.get("title") or None,
            creator=r.get("source") or None, attribution=None,
            width=as_int(r.get("original_width")), height=as_int(r.get("original_height")))

"""Brave Search image search, opt-in: web images of unknown licence from arbitrary hosts.

Auth `X-Subscription-Token: <BENDER_BRAVE_KEY>`; one request returns up to 200 results and there
is no paging, so vary the query for more. Rate-limit headers hold comma pairs (per second, per
month), handled by the shared API client. Every image URL goes through the SSRF guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.providers.base import Provider, SearchOptions, as_int


class Brave(Provider):
    name = "brave"
    default_api_base = "https://api.search.brave.com/res/v1"
    key_name = "key"
    key_required = True
    min_interval = 1.0
    terms_warning = ("Brave image results are web images whose licence and creator are unknown: you "
                     "are responsible for having the right to use each one.")

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        data = self.get(f"{self.base}/images/search",
                        {"q": query[:400], "count": "200",
                         "safesearch": "strict" if opts.safe_search else "off"},
                        {"X-Subscription-Token": self.key, "Accept": "application/json"})
        results = [r for r in data.get("results") or [] if isinstance(r, dict)]
        yield [c for c in (self._candidate(r, query) for r in results) if c is not None]

    def _candidate(self, r: dict, query: str) -> Candidate | None:
        props = r.get("properties") or {}
        url = props.get("url")
        if not url:
            return None
        return Candidate(
            provider=self.name, provider_id=hashlib.sha256(url.encode()).hexdigest()[:20], query=query,
            image_url=url, landing_url=r.get("url"), license=None, title=r.get("title") or None,
            creator=r.get("source") or None, attribution=None,
            width=as_int(props.get("width")), height=as_int(props.get("height")))

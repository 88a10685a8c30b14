"""Pexels (`GET /v1/search`), opt-in: its terms forbid building ML datasets without permission.

Auth is the raw key in `Authorization` (no `Bearer`), from `BENDER_PEXELS_KEY`; 80 a page; pages
while `next_page` is present (we build the next URL ourselves instead of following the link, so the
key never goes anywhere but the configured base). Quota headers come only on 200s; a 429 carries
none, so the API client waits until the last `X-Ratelimit-Reset` it saw.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.licenses import build_attribution
from scrapers.providers.base import Provider, SearchOptions, as_int

PER_PAGE = 80


class Pexels(Provider):
    name = "pexels"
    default_api_base = "https://api.pexels.com/v1"
    key_name = "key"
    key_required = True
    terms_warning = ("Pexels' API terms say: don't use the API to build datasets or train ML/AI models "
                     "unless you have explicit permission from Pexels, and no systematic copying.")

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        page = 1
        while True:
            data = self.get(f"{self.base}/search", {"query": query, "page": str(page),
                                                     "per_page": str(PER_PAGE)},
                            {"Authorization": self.key})
            photos = [p for p in data.get("photos") or [] if isinstance(p, dict)]
            yield [c for c in (self._candidate(p, query) for p in photos) if c is not None]
            if not photos or not data.get("next_page"):
                return
            page += 1

    def _candidate(self, p: dict, query: str) -> Candidate | None:
        url = (p.get("src") or {}).get("original")
        if not url:
            return None
        creator = p.get("photographer")
        title = p.get("alt") or None
        return Candidate(
            provider=self.name, provider_id=str(p.get("id")), query=query, image_url=url,
            landing_url=p.get("url"), license="pexels", license_url="https://www.pexels.com/license/",
            creator=creator, creator_url=p.get("photographer_url"), title=title,
            attribution=build_attribution(title, creator, "pexels", None, "https://www.pexels.com/license/")
            + " Photos provided by Pexels.", width=as_int(p.get("width")), height=as_int(p.get("height")))

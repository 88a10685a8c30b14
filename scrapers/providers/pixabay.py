"""Pixabay (`GET /api/`), opt-in: its terms forbid systematic mass downloads.

Auth `key=` from `BENDER_PIXABAY_KEY`; up to 200 a page; the last reachable page follows from
`totalHits`. Errors are plain text with a proper status. Responses must be cached for 24 hours,
which the shared API client does on disk. `min_width`/`min_height` filter on the server.
`largeImageURL` is at most 1280 px on its long side; that is what the downloader fetches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.licenses import build_attribution
from scrapers.providers.base import Provider, SearchOptions, as_int

PER_PAGE = 200
LICENSE_URL = "https://pixabay.com/service/license-summary/"


class Pixabay(Provider):
    name = "pixabay"
    default_api_base = "https://pixabay.com/api"
    key_name = "key"
    key_required = True
    min_interval = 0.6  # 100 requests per 60 s per key
    terms_warning = ("Pixabay's API terms say the API is for real human requests and that systematic "
                     "mass downloads are not allowed.")

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        page = 1
        while True:
            data = self.get(self.base + "/", {
                "key": self.key, "q": query[:100], "image_type": "photo", "page": str(page),
                "per_page": str(PER_PAGE), "safesearch": "true" if opts.safe_search else "false",
                "min_width": str(opts.min_size) if opts.min_size else None,
                "min_height": str(opts.min_size) if opts.min_size else None})
            hits = [h for h in data.get("hits") or [] if isinstance(h, dict)]
            yield [c for c in (self._candidate(h, query) for h in hits) if c is not None]
            last = math.ceil((as_int(data.get("totalHits")) or 0) / PER_PAGE)
            if not hits or page >= last:
                return
            page += 1

    def _candidate(self, h: dict, query: str) -> Candidate | None:
        url = h.get("largeImageURL") or h.get("webformatURL")
        if not url:
            return None
        w, h_ = as_int(h.get("imageWidth")), as_int(h.get("imageHeight"))
        if w and h_ and max(w, h_) > 1280 and url == h.get("largeImageURL"):
            scale = 1280 / max(w, h_)
            w, h_ = round(w * scale), round(h_ * scale)
        user, uid = h.get("user"), h.get("user_id")
        return Candidate(
            provider=self.name, provider_id=str(h.get("id")), query=query, image_url=url,
            landing_url=h.get("pageURL"), license="pixabay", license_url=LICENSE_URL, creator=user,
            creator_url=f"https://pixabay.com/users/{user}-{uid}/" if user and uid else None,
            title=h.get("tags") or None,
            attribution=build_attribution(h.get("tags"), user, "pixabay", None, LICENSE_URL)
            + " Image from Pixabay.", width=w, height=h_)

"""Openverse (`GET /v1/images/`): keyless, every result carries its CC licence or PD mark.

Anonymous clients get 20 results a page and at most 20 pages (`page_count` is capped at 20).
`BENDER_OPENVERSE_KEY` may hold an OAuth2 access token (sent as `Authorization: Bearer`), which
allows up to 500 a page. The licence filter goes to the server (`license=`); rate-limit headers are
per scope (`X-RateLimit-Available-anon_burst`), handled by the shared API client.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.licenses import CC_CODES, PERMISSIVE, build_attribution, license_url
from scrapers.providers.base import Provider, SearchOptions, as_int

MAX_PAGES = 20


class Openverse(Provider):
    name = "openverse"
    default_api_base = "https://api.openverse.org/v1"
    key_name = "token"
    default_licenses = PERMISSIVE

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        licenses = self.licenses_for(opts)
        server_licenses = sorted(licenses & set(CC_CODES)) if licenses is not None else None
        if server_licenses == []:
            return  # the user wants only licences Openverse never has
        params = {"q": query[:200], "page_size": 100 if self.key else 20,
                  "license": ",".join(server_licenses) if server_licenses else None,
                  "mature": "false" if opts.safe_search else None,
                  "size": "large" if opts.min_size >= 1024 else None}
        page = 1
        while page <= MAX_PAGES:
            data = self.get(f"{self.base}/images/", {**params, "page": page}, headers)
            results = data.get("results") or []
            yield [self._candidate(r, query) for r in results if isinstance(r, dict) and r.get("url")]
            page_count = as_int(data.get("page_count")) or 0
            if not results or page >= page_count:
                return
            page += 1

    def _candidate(self, r: dict, query: str) -> Candidate:
        code = (r.get("license") or "").lower() or None
        version = r.get("license_version") or None
        url = r.get("license_url") or license_url(code, version)
        return Candidate(
            provider=self.name, provider_id=str(r.get("id")), query=query, image_url=r["url"],
            landing_url=r.get("foreign_landing_url"), license=code, license_version=version,
            license_url=url, creator=r.get("creator") or None, creator_url=r.get("creator_url") or None,
            title=r.get("title") or None,
            attribution=r.get("attribution") or build_attribution(r.get("title"), r.get("creator"),
                                                                  code, version, url),
            width=as_int(r.get("width")), height=as_int(r.get("height")))

"""Wikimedia Commons (MediaWiki Action API): keyless, one free licence per file.

One request does search plus image info (`generator=search` in the File namespace, `prop=imageinfo`
with `extmetadata`), 50 files a page, `formatversion=2`. Pagination copies every key of the
top-level `continue` object into the next request; without `batchcomplete`, image info for the
batch is still coming (`iicontinue`), so pages are merged until the batch completes.

Errors come as HTTP 200 with `{"error": {...}}` and a `MediaWiki-API-Error` header: `maxlag` and
`ratelimited` are retried (honouring `Retry-After`), the rest are not. The edge answers a
non-standard thumbnail width with HTTP 429 and no `Retry-After`: a bug in the request, never
retried (we only ask for standard widths). Wikimedia requires a descriptive User-Agent: pass
`--contact`.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrapers.candidate import Candidate
from scrapers.download import Fetched, FetchError, default_judge
from scrapers.licenses import PERMISSIVE, build_attribution, license_url, normalize_license, strip_html
from scrapers.providers.base import Provider, SearchOptions, as_int

THUMB_STEPS = (1280, 1920, 3840)  # standard widths the edge serves (smaller steps are too small)
RETRYABLE_CODES = ("maxlag", "ratelimited", "readonly")
EXTMETADATA = ("Artist|Credit|License|LicenseShortName|LicenseUrl|UsageTerms|AttributionRequired|"
               "ImageDescription|ObjectName|Restrictions")


class Wikimedia(Provider):
    name = "wikimedia"
    default_api_base = "https://commons.wikimedia.org/w/api.php"
    default_licenses = PERMISSIVE

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        width = next((w for w in THUMB_STEPS if w >= 2 * max(opts.min_size, 512)), THUMB_STEPS[-1])
        params = {
            "action": "query", "format": "json", "formatversion": "2",
            "generator": "search", "gsrnamespace": "6", "gsrsearch": f"{query} filetype:bitmap",
            "gsrlimit": "50", "prop": "imageinfo", "iiprop": "url|size|mime|mediatype|extmetadata",
            "iiurlwidth": str(width), "iiextmetadatafilter": EXTMETADATA, "maxlag": "5",
        }
        cont: dict = {}
        pending: dict[int, dict] = {}
        while True:
            data = self.get(self.base, {**params, **cont})
            for page in (data.get("query") or {}).get("pages") or []:
                if not isinstance(page, dict) or "pageid" not in page:
                    continue
                known = pending.setdefault(page["pageid"], page)
                if known is not page and page.get("imageinfo"):
                    known.setdefault("imageinfo", []).extend(page["imageinfo"])
            complete = bool(data.get("batchcomplete"))
            if complete or not data.get("continue"):
                ordered = sorted(pending.values(), key=lambda p: as_int(p.get("index")) or 0)
                pending = {}
                yield [c for c in (self._candidate(p, query, width) for p in ordered) if c is not None]
            nxt = data.get("continue") or {}
            if not nxt or nxt == cont:  # done (or a server repeating itself: stop, do not spin)
                return
            cont = nxt

    def judge(self, resp: Fetched) -> FetchError | None:
        if resp.status == 429 and "thumbnail steps" in resp.body[:500].decode("utf-8", "replace"):
            return FetchError("http 429", detail="thumbnail width not allowed", response=resp)
        problem = default_judge(resp)
        if problem is not None:
            return problem
        code = resp.headers.get("MediaWiki-API-Error")
        if code is None and resp.body[:200].lstrip().startswith(b'{"error"'):
            code = "error"
        if code:
            return FetchError(f"api error {code}", retryable=code in RETRYABLE_CODES,
                              retry_after=resp.retry_after(), response=resp)
        return None

    def _candidate(self, page: dict, query: str, width: int) -> Candidate | None:
        infos = page.get("imageinfo") or []
        if not infos:
            return None
        info = infos[0]
        meta = {k: (v.get("value") if isinstance(v, dict) else v)
                for k, v in (info.get("extmetadata") or {}).items()}
        w, h = as_int(info.get("width")), as_int(info.get("height"))
        url, tw, th = info.get("url"), w, h
        if info.get("thumburl") and w and w > width:
            url, tw, th = info["thumburl"], as_int(info.get("thumbwidth")), as_int(info.get("thumbheight"))
        if not url:
            return None
        code, version = normalize_license(meta.get("LicenseShortName") or meta.get("License"),
                                          meta.get("LicenseUrl"))
        lurl = meta.get("LicenseUrl") or license_url(code, version)
        creator = strip_html(meta.get("Artist")) or strip_html(meta.get("Credit"))
        title = (page.get("title") or "").removeprefix("File:") or None
        return Candidate(
            provider=self.name, provider_id=str(page["pageid"]), query=query, image_url=url,
            landing_url=info.get("descriptionurl"), license=code, license_version=version,
            license_url=lurl, creator=creator, creator_url=None, title=title,
            attribution=build_attribution(title, creator, code, version, lurl), width=tw, height=th)

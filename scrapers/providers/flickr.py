"""Flickr (`flickr.photos.search`), with `BENDER_FLICKR_KEY`; free licences only by default.

Licence ids are read at run time from `flickr.photos.licenses.getInfo` and mapped to our codes
through their URLs (so new ids, like the CC 4.0 set added in 2025, work without a code change).
Errors arrive as HTTP 200 `{"stat": "fail", "code": N}`: 0, 105 and 201 are retried, the others are
final. Flickr sends no rate-limit headers, so requests are spaced 1 s apart (3,600/hour per key).
Flickr serves at most the first 4,000 results of a query; past that it repeats, so paging stops there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from scrapers.api import ApiError
from scrapers.candidate import Candidate
from scrapers.download import Fetched, FetchError, default_judge
from scrapers.licenses import build_attribution, license_url, normalize_license
from scrapers.providers.base import Provider, SearchOptions, as_int

RETRYABLE_CODES = (0, 105, 201)
MAX_RESULTS = 4000
PER_PAGE = 250
SIZES = ("o", "k", "h", "l", "c", "z", "m")  # largest first
# Free for training and sharing: CC BY / BY-SA (2.0 and 4.0), CC0, PD mark, no known restrictions,
# US Government work.
DEFAULT = frozenset({"by", "by-sa", "cc0", "pdm", "nkcr", "usgov"})


class Flickr(Provider):
    name = "flickr"
    default_api_base = "https://api.flickr.com/services/rest"
    key_name = "key"
    key_required = True
    default_licenses = DEFAULT
    min_interval = 1.0

    def licenses(self) -> dict[str, tuple[str, str | None, str | None, str]]:
        """id → (code, version, url, name), from `flickr.photos.licenses.getInfo`."""
        data = self.get(self.base + "/", self._params(method="flickr.photos.licenses.getInfo"))
        out = {}
        for item in (data.get("licenses") or {}).get("license") or []:
            name, url = item.get("name") or "", item.get("url") or None
            lname = name.lower()
            if "no known copyright" in lname:
                code, version = "nkcr", None
            elif "government" in lname:
                code, version = "usgov", None
            elif "all rights reserved" in lname:
                code, version = "arr", None
            else:
                code, version = normalize_license(name, url)
            out[str(item.get("id"))] = (code, version, url or license_url(code, version), name)
        if not out:
            raise ApiError("flickr: licenses.getInfo returned no licences")
        return out

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        table = self.licenses()
        wanted = self.licenses_for(opts)
        ids = sorted((i for i, (code, *_rest) in table.items() if wanted is None or code in wanted), key=int)
        if not ids:
            return
        page, seen = 1, 0
        while seen < MAX_RESULTS:
            data = self.get(self.base + "/", self._params(
                method="flickr.photos.search", text=query, license=",".join(ids), media="photos",
                content_type="1", safe_search="1" if opts.safe_search else None, sort="relevance",
                per_page=str(PER_PAGE), page=str(page),
                extras="license,owner_name,o_dims,url_o,url_k,url_h,url_l,url_c,url_z,url_m"))
            photos = data.get("photos") or {}
            batch = [p for p in photos.get("photo") or [] if isinstance(p, dict)]
            yield [c for c in (self._candidate(p, query, table) for p in batch) if c is not None]
            seen += len(batch)
            if not batch or page >= (as_int(photos.get("pages")) or 0):
                return
            page += 1

    def _params(self, **kw) -> dict:
        return {"api_key": self.key, "format": "json", "nojsoncallback": "1", **kw}

    def judge(self, resp: Fetched) -> FetchError | None:
        problem = default_judge(resp)
        if problem is not None:
            return problem
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            return None  # the API client reports non-JSON itself
        if isinstance(data, dict) and data.get("stat") == "fail":
            code = as_int(data.get("code"))
            return FetchError(f"api error {code}", retryable=code in RETRYABLE_CODES,
                              detail=str(data.get("message")), response=resp)
        return None

    def _candidate(self, p: dict, query: str, table: dict) -> Candidate | None:
        size = next((s for s in SIZES if p.get(f"url_{s}")), None)
        if size is None:
            return None
        if size == "o":
            w = as_int(p.get("width_o") or p.get("o_width"))
            h = as_int(p.get("height_o") or p.get("o_height"))
        else:
            w, h = as_int(p.get(f"width_{size}")), as_int(p.get(f"height_{size}"))
        code, version, lurl, _name = table.get(str(p.get("license")), (None, None, None, ""))
        owner, pid = p.get("owner"), str(p.get("id"))
        creator = p.get("ownername") or owner
        title = p.get("title") or None
        return Candidate(
            provider=self.name, provider_id=pid, query=query, image_url=p[f"url_{size}"],
            landing_url=f"https://www.flickr.com/photos/{owner}/{pid}" if owner else None,
            license=code, license_version=version, license_url=lurl, creator=creator,
            creator_url=f"https://www.flickr.com/photos/{owner}" if owner else None, title=title,
            attribution=build_attribution(title, creator, code, version, lurl), width=w, height=h)

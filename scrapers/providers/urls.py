"""`urls`: a text or CSV file of image URLs, so offline and hand-made lists use the same pipeline.

The "query" is the file's path. A `.txt` file holds one URL per line (`#` starts a comment). A
`.csv` file has a header row with a `url` column and optionally `license`, `license_version`,
`license_url`, `creator`, `creator_url`, `title`, `landing_url`, `attribution` and `label`.
Every URL is fetched through the same guarded downloader as search results.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

from bender.errors import BenderError
from scrapers.candidate import Candidate
from scrapers.licenses import build_attribution, license_url, normalize_license
from scrapers.providers.base import Provider, SearchOptions, in_pages


class Urls(Provider):
    name = "urls"
    default_api_base = ""
    local = True

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        path = Path(query).expanduser()
        if not path.is_file():
            raise BenderError(f"urls provider: {query!r} is not a file; give a .txt or .csv list of URLs")
        rows = self._csv(path) if path.suffix.lower() == ".csv" else self._txt(path)
        yield from in_pages(self._candidate(row, str(path)) for row in rows)

    def _txt(self, path: Path) -> Iterator[dict]:
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield {"url": line}

    def _csv(self, path: Path) -> Iterator[dict]:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "url" not in [n.strip().lower() for n in reader.fieldnames]:
                raise BenderError(f"{path}: a CSV list needs a header row with a 'url' column")
            for row in reader:
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                if row.get("url"):
                    yield row

    def _candidate(self, row: dict, query: str) -> Candidate:
        url = row["url"]
        code, version = normalize_license(row.get("license") or None, row.get("license_url") or None)
        version = row.get("license_version") or version
        lurl = row.get("license_url") or license_url(code, version)
        title, creator = row.get("title") or None, row.get("creator") or None
        return Candidate(
            provider=self.name, provider_id=hashlib.sha256(url.encode()).hexdigest()[:20], query=query,
            image_url=url, landing_url=row.get("landing_url") or None, license=code,
            license_version=version, license_url=lurl, creator=creator,
            creator_url=row.get("creator_url") or None, title=title,
            attribution=row.get("attribution") or (build_attribution(title, creator, code, version, lurl)
                                                   if code else None),
            label=row.get("label") or None)

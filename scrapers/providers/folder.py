"""`folder`: local image files, checked, hashed and recorded exactly like downloaded ones.

The "query" is a folder path; every regular file under it (recursively, sorted) becomes a candidate,
and the usual checks sort out what is not an image. Licences are unknown unless the user says
otherwise, so the record's licence is null.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bender.errors import BenderError
from scrapers.candidate import Candidate
from scrapers.providers.base import Provider, SearchOptions, in_pages


class Folder(Provider):
    name = "folder"
    default_api_base = ""
    local = True

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        root = Path(query).expanduser()
        if not root.is_dir():
            raise BenderError(f"folder provider: {query!r} is not a folder")
        root = root.resolve()
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        yield from in_pages(Candidate(provider=self.name, provider_id=f"{root.name}/{p.relative_to(root).as_posix()}",
                                      query=query, image_url=p.as_uri(), title=p.stem, local_path=str(p))
                            for p in files)

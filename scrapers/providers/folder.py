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
from scrapers.providers.base import Provider, SearchOptions

BATCH = 100


class Folder(Provider):
    name = "folder"
    default_api_base = ""
    local = True

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        root = Path(query).expanduser()
        if not root.is_dir():
            raise BenderError(f"folder provider: {query!r} is not a folder")
        root = root.resolve()
        batch: list[Candidate] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = path.relative_to(root).as_posix()
            batch.append(Candidate(provider=self.name, provider_id=f"{root.name}/{rel}", query=query,
                                   image_url=path.as_uri(), title=path.stem, local_path=str(path)))
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

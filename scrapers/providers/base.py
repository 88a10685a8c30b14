"""The one small interface every provider implements.

A provider turns a query into pages of `Candidate`s: it builds the requests, reads its API's
pagination and error conventions, and fills in licence and creator fields. It never downloads
images: the pipeline hands candidates to the guarded downloader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from bender.errors import BenderError
from scrapers.api import ApiClient, ApiError
from scrapers.candidate import Candidate
from scrapers.download import Fetched, FetchError, default_judge


@dataclass
class SearchOptions:
    """What the user asked for, in the terms providers can pass on to their APIs."""

    licenses: frozenset[str] | None = None  # None: the provider's `default_licenses`
    min_size: int = 0  # shortest side in pixels
    safe_search: bool = True


class Provider:
    """Base class: subclasses set the class attributes and implement `pages`."""

    name: ClassVar[str]
    default_api_base: ClassVar[str]
    key_name: ClassVar[str | None] = None  # "key", "token": what `BENDER_<NAME>_KEY` holds
    key_required: ClassVar[bool] = False
    # Set for opt-in providers: printed, and the user must pass --accept-terms.
    terms_warning: ClassVar[str | None] = None
    # Licences kept when the user gives no --license (None keeps everything the source returns).
    default_licenses: ClassVar[frozenset[str] | None] = None
    min_interval: ClassVar[float] = 0.0  # seconds between API requests
    # Local providers (urls, folder) read a file or folder named by the "query"; no API at all.
    local: ClassVar[bool] = False

    def __init__(self, api: ApiClient | None, base: str | None = None, key: str | None = None):
        self.api = api
        self.base = (base or self.default_api_base).rstrip("/") if (base or self.default_api_base) else ""
        self.key = key

    @classmethod
    def key_env(cls) -> str:
        return f"BENDER_{cls.name.upper()}_KEY"

    @classmethod
    def base_env(cls) -> str:
        return f"BENDER_{cls.name.upper()}_API_BASE"

    @classmethod
    def key_from_env(cls) -> str | None:
        key = os.environ.get(cls.key_env()) or None
        if cls.key_required and not key:
            raise BenderError(f"{cls.name} needs an API key: set {cls.key_env()}=<your key> "
                              f"(or drop '{cls.name}' from --provider)")
        return key

    def licenses_for(self, opts: SearchOptions) -> frozenset[str] | None:
        return opts.licenses if opts.licenses is not None else self.default_licenses

    def pages(self, query: str, opts: SearchOptions) -> Iterator[list[Candidate]]:
        """Yield the results page by page until the API has no more (the caller stops early)."""
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------------

    def get(self, url: str, params: dict | None = None, headers: dict | None = None) -> dict:
        if self.api is None:
            raise ApiError(f"{self.name}: no API client")
        data = self.api.get_json(url, params, headers, judge=self.judge)
        if not isinstance(data, dict):
            raise ApiError(f"{self.name}: unexpected response (not a JSON object)")
        return data

    def kept(self, c: Candidate) -> None:
        """Called after `c` was kept, for APIs whose terms ask to be told about downloads."""

    def judge(self, resp: Fetched) -> FetchError | None:
        """Turn a response into an error; override for APIs that report errors inside HTTP 200."""
        return default_judge(resp)


def as_int(value) -> int | None:
    """APIs send sizes as ints, strings or null; anything unusable becomes None."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def in_pages(candidates: Iterable[Candidate], size: int = 100) -> Iterator[list[Candidate]]:
    """Group a stream of candidates into pages, for providers that read a local list."""
    page: list[Candidate] = []
    for candidate in candidates:
        page.append(candidate)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page

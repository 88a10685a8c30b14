"""The candidate record: one search result, before anything is downloaded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Candidate:
    """What a provider knows about one image. Fields mirror the manifest (see `manifest.py`).

    `provider_id` is the provider's own id for the item, so `id` (`provider:provider_id`) stays the
    same across runs: that is what resume keys on. `local_path` is set only by the `folder`
    provider, whose images are read from disk instead of fetched.
    """

    provider: str
    provider_id: str
    query: str
    image_url: str | None
    landing_url: str | None = None
    license: str | None = None
    license_version: str | None = None
    license_url: str | None = None
    creator: str | None = None
    creator_url: str | None = None
    title: str | None = None
    attribution: str | None = None
    width: int | None = None
    height: int | None = None
    label: str | None = None
    local_path: str | None = None
    notify_url: str | None = None  # an API link to call once the image is kept (Unsplash's terms)

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.provider_id}"

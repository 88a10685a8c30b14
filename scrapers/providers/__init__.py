"""Search providers, chosen by name from one explicit table.

Default providers are keyless and licence-clean (Openverse, Wikimedia Commons); Flickr needs
`BENDER_FLICKR_KEY`; the opt-in ones print their terms and need `--accept-terms`. `urls` and
`folder` read local lists and folders so offline sets go through the same pipeline. Google Custom
Search and Bing Image Search are closed or retired and deliberately absent.
"""

from __future__ import annotations

from scrapers.providers.base import Provider, SearchOptions
from scrapers.providers.brave import Brave
from scrapers.providers.flickr import Flickr
from scrapers.providers.folder import Folder
from scrapers.providers.openverse import Openverse
from scrapers.providers.pexels import Pexels
from scrapers.providers.pixabay import Pixabay
from scrapers.providers.serpapi import SerpApi
from scrapers.providers.unsplash import Unsplash
from scrapers.providers.urls import Urls
from scrapers.providers.wikimedia import Wikimedia

PROVIDERS: dict[str, type[Provider]] = {
    "openverse": Openverse,
    "wikimedia": Wikimedia,
    "flickr": Flickr,
    "unsplash": Unsplash,
    "pexels": Pexels,
    "pixabay": Pixabay,
    "brave": Brave,
    "serpapi": SerpApi,
    "urls": Urls,
    "folder": Folder,
}
DEFAULT_PROVIDERS = ("openverse", "wikimedia")

__all__ = ["DEFAULT_PROVIDERS", "PROVIDERS", "Provider", "SearchOptions"]

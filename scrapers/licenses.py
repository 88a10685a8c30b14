"""Licence codes, licence URLs and credit lines, shared by every provider.

Every manifest record carries a lower-case short code so that filtering and the dataset's credits
work the same whatever the source said: Openverse's codes (`cc0`, `pdm`, `by`, `by-sa`, `by-nd`,
`by-nc`, `by-nc-sa`, `by-nc-nd`, `sampling+`, `nc-sampling+`) plus a few for what other sources
hand out: `nkcr` (Flickr "No known copyright restrictions"), `usgov` (US Government work), `arr`
(all rights reserved), `unsplash` / `pexels` / `pixabay` (platform licences) and `unknown`.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from bender.errors import BenderError

CC_CODES = ("cc0", "pdm", "by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "sampling+",
            "nc-sampling+")
OTHER_CODES = ("nkcr", "usgov", "arr", "unsplash", "pexels", "pixabay", "unknown")
KNOWN_CODES = CC_CODES + OTHER_CODES
# Free for any use, including training and sharing a model: the default for licence-clean sources.
PERMISSIVE = frozenset({"cc0", "pdm", "by", "by-sa"})

_DISPLAY = {"cc0": "CC0", "pdm": "Public Domain Mark", "nkcr": "No known copyright restrictions",
            "usgov": "United States Government Work", "arr": "All Rights Reserved",
            "unsplash": "Unsplash License", "pexels": "Pexels License",
            "pixabay": "Pixabay Content License"}


def parse_license_filter(text: str | None) -> frozenset[str] | None:
    """'cc0,by,by-sa' → frozenset; None or 'any' → None (keep every licence)."""
    if text is None or text.strip().lower() in ("", "any", "all"):
        return None
    codes = frozenset(c.strip().lower() for c in text.split(",") if c.strip())
    bad = sorted(codes - set(KNOWN_CODES))
    if bad:
        raise BenderError(f"--license: unknown licence code(s) {', '.join(bad)}; use any of "
                          f"{', '.join(KNOWN_CODES)} (or 'any')")
    return codes


def normalize_license(text: str | None, url: str | None = None) -> tuple[str | None, str | None]:
    """A licence name, slug or URL → (code, version). Unrecognised names come back lower-cased."""
    if url:
        found = _from_cc_url(url)
        if found:
            return found
    if not text:
        return None, None
    t = re.sub(r"[\s_]+", "-", html.unescape(text).strip().lower())
    m = re.fullmatch(r"(?:cc-?)?zero(?:-(\d+\.\d+))?|cc0(?:-(\d+\.\d+))?(?:-.*)?", t)
    if m:
        return "cc0", m.group(1) or m.group(2) or "1.0"
    if t in ("pdm", "pd", "public-domain", "public-domain-mark", "publicdomain") or t.startswith("pd-"):
        return "pdm", "1.0"
    m = re.fullmatch(r"(?:cc-)?(by(?:-nc)?(?:-sa|-nd)?)(?:-(\d+(?:\.\d+)?))?(?:-[a-z]{2,3})?", t)
    if m:
        return m.group(1), m.group(2)
    if t in KNOWN_CODES:
        return t, None
    return t, None


def _from_cc_url(url: str) -> tuple[str, str | None] | None:
    m = re.search(r"creativecommons\.org/(licenses|publicdomain)/([a-z\-+]+)/(\d+(?:\.\d+)?)?", url.lower())
    if not m:
        return None
    kind, name, version = m.groups()
    if kind == "publicdomain":
        return ("cc0" if name == "zero" else "pdm"), version or "1.0"
    return name, version


def license_url(code: str | None, version: str | None) -> str | None:
    """The canonical deed URL for a Creative Commons code, else None."""
    if code == "cc0":
        return f"https://creativecommons.org/publicdomain/zero/{version or '1.0'}/"
    if code == "pdm":
        return f"https://creativecommons.org/publicdomain/mark/{version or '1.0'}/"
    if code in CC_CODES and version:
        return f"https://creativecommons.org/licenses/{code}/{version}/"
    return None


def license_name(code: str | None, version: str | None = None) -> str:
    if code is None:
        return "unknown licence"
    if code in _DISPLAY:
        name = _DISPLAY[code]
    elif code in CC_CODES:
        name = "CC " + code.upper()
    else:
        name = code
    return f"{name} {version}" if version and code in CC_CODES else name


def build_attribution(title: str | None, creator: str | None, code: str | None,
                      version: str | None = None, url: str | None = None) -> str:
    """A ready-to-print credit line: title, creator, licence and where to read it."""
    work = f'"{title}"' if title else "This work"
    by = f" by {creator}" if creator else ""
    if code in ("cc0", "pdm"):
        line = f"{work}{by} is marked with {license_name(code, version)}."
    elif code is None or code == "unknown":
        line = f"{work}{by}: licence unknown."
    else:
        line = f"{work}{by} is licensed under {license_name(code, version)}."
    if url:
        line += f" To view the terms, visit {url}."
    return line


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(text: str | None) -> str | None:
    """Commons' `Artist` is HTML; keep only the text, whitespace collapsed."""
    if not text:
        return None
    parser = _Text()
    parser.feed(text)
    parser.close()
    out = re.sub(r"\s+", " ", "".join(parser.parts)).strip()
    return out or None

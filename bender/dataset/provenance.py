"""Provenance inside the dataset: `provenance.jsonl` (one record per entry) and `ATTRIBUTION.md`.

A dataset is passed around long after the scrape that made it; licences (CC BY needs a credit,
CC BY-SA a share-alike notice) must travel with the pixels. Both files are deterministic (no
timestamps, no absolute paths) so they do not break byte-identical re-packs.
"""

from __future__ import annotations

import json
from collections import defaultdict


def provenance_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def attribution_markdown(records: list[dict]) -> str:
    """Group entries by licence; credit each source image once (tiles share a source)."""
    by_source: dict[str, dict] = {}
    entries: dict[str, list[str]] = defaultdict(list)
    for r in records:
        by_source.setdefault(r["source"], r)
        entries[r["source"]].append(r["entry"])
    by_licence: dict[str, list[str]] = defaultdict(list)
    for source, r in by_source.items():
        by_licence[_licence_name(r)].append(source)

    lines = ["# Attribution", "",
             f"This dataset holds {len(records)} images made from {len(by_source)} source images.",
             "Credits and licences as recorded when the images were collected. Sources without a",
             "recorded licence were supplied by whoever packed the dataset; check their terms before",
             "sharing.", ""]
    for licence in sorted(by_licence, key=lambda k: (k == "unknown licence", k)):
        sources = by_licence[licence]
        lines += [f"## {licence} ({len(sources)} source images)", ""]
        for source in sources:
            lines.append(f"- {_credit(by_source[source], source, entries[source])}")
        lines.append("")
    return "\n".join(lines)


def _licence_name(r: dict) -> str:
    licence = r.get("license")
    if not licence:
        return "unknown licence"
    name = str(licence).upper() if str(licence).lower() in ("cc0", "pdm") else f"CC {str(licence).upper()}"
    if r.get("license_version"):
        name += f" {r['license_version']}"
    return name


def _credit(r: dict, source: str, entries: list[str]) -> str:
    if r.get("attribution"):
        text = str(r["attribution"])
    else:
        title = r.get("title") or source
        text = f"\"{title}\"" + (f" by {r['creator']}" if r.get("creator") else "")
    links = [r[k] for k in ("landing_url", "license_url") if r.get(k)]
    where = f" <{links[0]}>" if links else ""
    shown = entries[0] if len(entries) == 1 else f"{entries[0]} (+{len(entries) - 1} tiles)"
    return f"{text}{where} — `{shown}`"

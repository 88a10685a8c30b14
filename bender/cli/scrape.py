"""`bender scrape`: search image APIs and download a licence-tracked, deduplicated image set.

The work happens in `scrapers.pipeline`; this module parses flags, draws the progress bar and
prints the one-line summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bender.errors import BenderError


def _api_bases(values: tuple[str, ...], providers: list[str]) -> dict[str, str]:
    """--api-base URL (one provider) or --api-base PROVIDER=URL (repeatable)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if sep and "://" not in name:
            out[name.strip().lower()] = url.strip()
        elif len(providers) == 1:
            out[providers[0]] = value.strip()
        else:
            raise BenderError(f"--api-base {value}: with several providers write PROVIDER=URL")
    for name, url in out.items():
        if not url.startswith(("http://", "https://")):
            raise BenderError(f"--api-base for {name}: {url!r} is not an http(s) URL")
    return out


_SCRAPE_OPTIONS = [
    click.option("--provider", "-p", "providers", default="openverse,wikimedia", show_default=True,
                  help="Comma list: openverse, wikimedia, flickr (BENDER_FLICKR_KEY); opt-in unsplash, "
                       "pexels, pixabay, brave, serpapi; or urls (queries are .txt/.csv files) or folder."),
    click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Output folder: images/ and manifest.jsonl. Rerunning resumes."),
    click.option("--limit", default=None, type=click.IntRange(min=1),
                  help="Images to keep per query, earlier runs included. Default: 100 per search query, "
                       "everything for urls/folder."),
    click.option("--license", "license_", default=None,
                  help="Licences to keep, e.g. cc0,pdm,by,by-sa, or 'any'. Default: cc0,pdm,by,by-sa for "
                       "Openverse/Commons, plus nkcr,usgov for Flickr; everything for other providers."),
    click.option("--min-size", default=0, show_default=True, type=click.IntRange(min=0),
                  help="Reject images whose shorter side is below this many pixels."),
    click.option("--api-base", multiple=True, help="Another API base URL (a mirror): URL, or PROVIDER=URL "
                  "with several providers. Also BENDER_<PROVIDER>_API_BASE."),
    click.option("--allow-host", multiple=True, metavar="HOST:PORT",
                  help="Let requests reach exactly this host and port even if it is a private address "
                       "(a local mirror). Nothing else lifts that block."),
    click.option("--contact", envvar="BENDER_CONTACT", default=None,
                  help="URL or e-mail for the User-Agent, so site operators can reach you "
                       "(Wikimedia asks for one). Also BENDER_CONTACT."),
    click.option("--accept-terms", is_flag=True,
                  help="Use opt-in providers whose terms restrict dataset building (you have permission)."),
    click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64),
                  help="Parallel downloads in total."),
    click.option("--per-host", default=2, show_default=True, type=click.IntRange(1, 32),
                  help="Parallel downloads per image host."),
    click.option("--phash-distance", default=4, show_default=True, type=click.IntRange(0, 32),
                  help="Near-duplicate threshold in pHash bits (0: exact duplicates only)."),
    click.option("--label-from-query", is_flag=True, help="Record each image's query as its label."),
    click.option("--max-mb", default=50.0, show_default=True, type=click.FloatRange(min=0.01),
                  help="Largest download, in MB."),
    click.option("--max-megapixels", default=64.0, show_default=True, type=click.FloatRange(min=0.01),
                  help="Larger images are rejected as decompression bombs."),
    click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(min=1),
                  help="Total seconds allowed per download attempt."),
    click.option("--retries", default=5, show_default=True, type=click.IntRange(1, 10),
                  help="Attempts per request (backoff with jitter, honouring Retry-After)."),
    click.option("--ignore-noai", is_flag=True, help="Also keep images served with X-Robots-Tag: noai."),
    click.option("--no-safe-search", is_flag=True, help="Turn off the providers' safe-search filters."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
]


def scrape_options(fn):
    """The options shared by `bender scrape` and `bender dataset build`."""
    for option in reversed(_SCRAPE_OPTIONS):
        fn = option(fn)
    return click.argument("queries", nargs=-1, required=True)(fn)


@click.command()
@scrape_options
def scrape(**opts):
    """Search QUERIES with image APIs and download a deduplicated, licence-tracked image set.

    \b
    Example:
      bender scrape "rocks" "tree bark" --provider openverse,wikimedia --limit 500 \\
          --license cc0,by,by-sa --min-size 512 --out sets/rocks
    """
    run_scrape(**opts)


def run_scrape(queries, providers, out, limit, license_, min_size, api_base, allow_host, contact,
               accept_terms, workers, per_host, phash_distance, label_from_query, max_mb, max_megapixels,
               timeout, retries, ignore_noai, no_safe_search, quiet):
    """Run the scrape pipeline with a progress bar; prints and returns the summary."""
    from tqdm import tqdm

    from scrapers.download import FetchConfig
    from scrapers.licenses import parse_license_filter
    from scrapers.pipeline import ScrapeConfig, Scraper
    from scrapers.providers import PROVIDERS

    names = [p.strip().lower() for p in providers.split(",") if p.strip()]
    local = any(PROVIDERS[n].local for n in names if n in PROVIDERS)
    if limit is None:
        limit = 10**9 if local else 100
    config = ScrapeConfig(
        queries=list(queries), out=out, providers=names, limit=limit,
        licenses=parse_license_filter(license_), min_size=min_size, workers=workers, per_host=per_host,
        phash_distance=phash_distance, api_bases=_api_bases(api_base, names), allow_hosts=list(allow_host),
        contact=contact, accept_terms=accept_terms, label_from_query=label_from_query,
        skip_noai=not ignore_noai, safe_search=not no_safe_search, max_bytes=int(max_mb * 1024 * 1024),
        max_pixels=int(max_megapixels * 1_000_000),
        fetch=FetchConfig(deadline=timeout, max_attempts=retries))
    bar = tqdm(total=None if local else limit * len(queries), unit="img", desc="kept", disable=quiet,
               file=sys.stderr, dynamic_ncols=True)

    def progress(status, summary):
        if status == "kept":
            bar.update(1)
        bar.set_postfix(dup=summary.duplicate, rejected=sum(summary.rejected.values()), refresh=False)

    def warn(message):
        if quiet or bar.disable:
            click.echo(message, err=True)
        else:
            bar.write(message, file=sys.stderr)

    try:
        summary = Scraper(config, progress, warn).run()
    finally:
        bar.close()
    click.echo(f"{summary.line()} -> {out / 'manifest.jsonl'}")
    return summary


@click.command()
@scrape_options
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dataset zip to write (default: OUT.zip beside the output folder).")
@click.option("--resolution", "-r", type=int, default=256, show_default=True, help="Square image size.")
@click.option("--transform", type=click.Choice(["center-crop", "center-crop-wide", "pad", "tiles"]),
              default="center-crop", show_default=True)
@click.option("--tiles-per-image", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--labels", type=click.Choice(["none", "manifest"]), default="none", show_default=True,
              help="manifest: one class per query (with --label-from-query) for conditional training.")
@click.option("--dedup/--no-dedup", default=True, show_default=True, help="Drop near-duplicate images when packing.")
@click.option("--jobs", type=int, default=None, help="Packing processes (default: all cores).")
def build(zip_path, resolution, transform, tiles_per_image, labels, dedup, jobs, **opts):
    """Scrape QUERIES into OUT, then pack everything kept into a StyleGAN2-ADA dataset zip.

    Same options as `bender scrape`, plus packing options; rerunning resumes the scrape and
    rewrites the zip atomically.

    \b
    Example:
      bender dataset build "rocks" "moss" --limit 300 --out sets/rocks -r 256 --transform tiles
    """
    from bender.dataset import PackOptions, pack_dataset

    summary = run_scrape(**opts)
    if summary.kept + summary.already_done == 0:
        raise BenderError("nothing was kept, so there is nothing to pack: loosen --license/--min-size or "
                          "try other queries")
    out = opts["out"]
    zip_path = zip_path or out.with_suffix(".zip")
    options = PackOptions(resolution=resolution, transform=transform, tiles_per_image=tiles_per_image,
                          labels=labels, label_field="label" if opts["label_from_query"] else "query",
                          dedup=dedup, jobs=jobs)
    report = pack_dataset([out], zip_path, options, progress=not opts["quiet"])
    click.echo(report.summary())

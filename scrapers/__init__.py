"""Image-search scrapers: providers → guarded downloader → `images/` + `manifest.jsonl`.

Layout (one idea per module):

- `candidate.py`  the `Candidate` record every provider yields (URL, size, licence, creator, ...).
- `licenses.py`   licence codes, CC URLs and credit lines shared by providers.
- `providers/`    one module per search API (build requests, parse pages); they never download images.
- `safety.py`     the SSRF guard: which URLs and addresses may be fetched, and a pinned HTTP adapter.
- `download.py`   the guarded client: redirects, byte/time caps, retries, backoff, per-host limits.
- `quota.py`      reading rate-limit headers in the shapes the APIs use.
- `api.py`        JSON API requests on top of the guarded client (one in flight, cache, in-body errors).
- `images.py`     magic-byte sniffing and Pillow checks (bombs, truncation) plus the perceptual hash.
- `manifest.py`   the append-only, crash-safe `manifest.jsonl`.
- `dedup.py`      exact (sha256) and perceptual (pHash) duplicate index.
- `pipeline.py`   query → providers → downloader → manifest, with resume and dedup.

Importing this package is cheap and does no network access.
"""

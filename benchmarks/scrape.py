"""Images per second through the whole scrape path, on this machine.

A separate process serves N distinct ~50 KB JPEGs over HTTP/1.1 on 127.0.0.1; `bender scrape`'s
pipeline (the `urls` provider, so no API pages are involved) then fetches each through the guarded
client, sniffs, decodes, checks, hashes (sha256 + pHash), deduplicates, writes `images/<sha>.jpg`
atomically and appends its manifest record. Each row is a fresh output folder.

    /work/venv/bin/python benchmarks/scrape.py            # default: 600 images
    /work/venv/bin/python benchmarks/scrape.py --n 1000

Target (issue 5): >= 200 images/s for 50 KB JPEGs on the 2-core CPU sandbox.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_jpeg(seed: int) -> bytes:
    """A distinct natural-ish 512x384 picture of about 50 KB."""
    rng = np.random.RandomState(seed)
    small = Image.fromarray((rng.rand(8, 8, 3) * 255).astype(np.uint8)).resize((512, 384), Image.BICUBIC)
    arr = np.asarray(small, dtype=np.float32) + rng.rand(384, 512, 3) * 24 - 12
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def serve(folder: str) -> None:
    """Child process: a keep-alive static file server on an ephemeral loopback port."""
    import functools
    import socket
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Like any production server: without TCP_NODELAY, http.server's separate header and
            # body writes meet the client's delayed ACK and every response stalls for 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def run_once(port: int, n: int, work: Path, name: str, workers: int, per_host: int, fsync: bool) -> tuple:
    from scrapers.pipeline import ScrapeConfig, scrape

    urls = work / f"{name}.txt"
    urls.write_text("".join(f"http://127.0.0.1:{port}/{i}.jpg\n" for i in range(n)))
    out = work / name
    cfg = ScrapeConfig(queries=[str(urls)], out=out, providers=["urls"], limit=n, workers=workers,
                       per_host=per_host, allow_hosts=[f"127.0.0.1:{port}"], fsync=fsync)
    t0 = time.perf_counter()
    summary = scrape(cfg, warn=lambda m: None)
    dt = time.perf_counter() - t0
    assert summary.kept == n, summary.line()
    return n, dt, n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="images per row")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="bender-bench-") as tmp:
        work = Path(tmp)
        files = work / "files"
        files.mkdir()
        sizes = []
        for i in range(args.n):
            data = make_jpeg(i)
            sizes.append(len(data))
            (files / f"{i}.jpg").write_bytes(data)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(files)], stdout=subprocess.PIPE,
                                  text=True)
        try:
            port = int(server.stdout.readline())
            rows = [
                ("defaults: 8 workers, 2 per host, fsync per record", 8, 2, True),
                ("8 workers, 8 per host, fsync per record", 8, 8, True),
                ("8 workers, 8 per host, no fsync", 8, 8, False),
                ("16 workers, 16 per host, fsync per record", 16, 16, True),
            ]
            print(f"{args.n} JPEGs, mean {np.mean(sizes) / 1024:.1f} KB, 512x384; server: separate process "
                  f"on 127.0.0.1; cores: {os.cpu_count()}")
            print()
            print("| configuration | images | seconds | images/s |")
            print("|---|---:|---:|---:|")
            for k, (label, workers, per_host, fsync) in enumerate(rows):
                n, dt, rate = run_once(port, args.n, work, f"run{k}", workers, per_host, fsync)
                print(f"| {label} | {n} | {dt:.2f} | {rate:.0f} |", flush=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

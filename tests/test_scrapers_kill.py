"""kill -9 in the middle of `bender scrape`, then resume: nothing lost, nothing fetched twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from scrape_fakes import FakeServer, Reply, make_image, openverse_api, openverse_result

REPO = Path(__file__).resolve().parents[1]
N = 48


def manifest_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_then_resume(tmp_path):
    with FakeServer() as server:
        urls = []
        for i in range(N):
            server.route(
                f"/img/{i}.jpg", Reply(200, make_image(500 + i, 64), content_type="image/jpeg", delay=0.04)
            )
            urls.append(f"{server.base}/img/{i}.jpg")
        openverse_api(server, [openverse_result(i, u) for i, u in enumerate(urls)])
        out = tmp_path / "set"
        manifest = out / "manifest.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "bender",
            "scrape",
            "rocks",
            "-p",
            "openverse",
            "--out",
            str(out),
            "--allow-host",
            server.allow,
            "--api-base",
            f"{server.base}/v1",
            "--limit",
            str(N),
            "--workers",
            "4",
            "--per-host",
            "4",
            "-q",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        # Kill it twice at different points, the second time while it is resuming.
        for stop_after in (6, 20):
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while (
                manifest_lines(manifest) < stop_after and proc.poll() is None and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        killed_kept = {
            json.loads(x)["path"]
            for x in manifest.read_text().splitlines()
            if x.strip() and json.loads(x)["status"] == "kept"
        }
        assert len(killed_kept) >= 20 - 1
        hits_before = Counter(server.hits)

        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        records = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]  # all parse
        kept_lines = [r for r in records if r["status"] == "kept"]
        ids = Counter(r["id"] for r in kept_lines)
        assert max(ids.values()) == 1  # no candidate was kept twice
        assert len(kept_lines) == N and len({r["sha256"] for r in kept_lines}) == N
        for r in kept_lines:
            assert (out / r["path"]).is_file()
        files = sorted(p.name for p in (out / "images").iterdir())
        assert len(files) == N  # no leftover temp files, no orphans
        # Nothing kept before the kills was downloaded again.
        for rec in kept_lines:
            path = "/img/" + rec["image_url"].rsplit("/", 1)[1]
            if rec["path"] in killed_kept:
                assert server.hits[path] == hits_before[path]
        assert all(server.hits[f"/img/{i}.jpg"] <= 2 for i in range(N))

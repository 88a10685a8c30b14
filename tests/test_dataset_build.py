"""`bender dataset build`: scrape (fake Openverse on loopback) then pack, in one command."""

from __future__ import annotations

import json
import zipfile

from click.testing import CliRunner
from scrape_fakes import FakeServer, make_image, openverse_api, openverse_result, serve_image

from bender.cli import main
from bender.dataset import check_dataset


def test_build_scrapes_then_packs_with_provenance_and_labels(tmp_path):
    with FakeServer() as server:
        results = [openverse_result(i, serve_image(server, f"/img/{i}.jpg", make_image(i, 96))) for i in range(5)]
        openverse_api(server, results)
        out = tmp_path / "sets" / "rocks"
        args = ["dataset", "build", "rocks", "-p", "openverse", "--allow-host", server.allow,
                "--api-base", f"{server.base}/v1", "--out", str(out), "-r", "32", "--label-from-query",
                "--labels", "manifest", "-q", "--jobs", "1"]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "kept 5" in result.output and "packed 5 images" in result.output
        image_hits = sum(n for path, n in server.hits.items() if path.startswith("/img/"))

        zip_path = out.with_suffix(".zip")
        assert check_dataset(zip_path).ok
        with zipfile.ZipFile(zip_path) as z:
            names = z.namelist()
            labels = json.loads(z.read("dataset.json"))["labels"]
            provenance = [json.loads(line) for line in z.read("provenance.jsonl").decode().splitlines()]
        assert [n for n in names if n.endswith(".png")] == [f"00000/img{i:08d}.png" for i in range(5)]
        assert names[-1] == "dataset.json" and "ATTRIBUTION.md" in names
        assert {label for _, label in labels} == {0}
        assert all(p.get("license") and p.get("source", p.get("url")) for p in provenance)

        # a rerun resumes: nothing is downloaded again, and the zip is rewritten identically
        before = zip_path.read_bytes()
        again = CliRunner().invoke(main, args, catch_exceptions=False)
        assert again.exit_code == 0, again.output
        assert zip_path.read_bytes() == before
        assert sum(n for path, n in server.hits.items() if path.startswith("/img/")) == image_hits


def test_build_with_nothing_kept_explains(tmp_path):
    with FakeServer() as server:
        openverse_api(server, [])
        result = CliRunner().invoke(main, ["dataset", "build", "nothing", "-p", "openverse", "--allow-host",
                                           server.allow, "--api-base", f"{server.base}/v1", "--out",
                                           str(tmp_path / "set"), "-q"])
    assert result.exit_code != 0 and "nothing was kept" in result.output
    assert not (tmp_path / "set.zip").exists()

"""`bender dataset ...` end to end: the real CLI in a subprocess, including kill and Ctrl-C midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from dataset_helpers import texture, write_jpegs
from PIL import Image

from bender.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bender", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_pack_cli_summary_and_rejects(fixtures_dir, tmp_path):
    out = tmp_path / "messy.zip"
    result = run_cli("dataset", "pack", str(fixtures_dir / "images-messy"), "--out", str(out), "-r", "64")
    assert result.returncode == 0, result.stderr
    assert "packed 12 images (64x64 RGB) from 16 inputs" in result.stdout
    assert "rejected 4 (not an image 2, truncated 1, decompression bomb 1)" in result.stdout
    assert "rejected images-messy/bomb.png: decompression bomb" in result.stderr
    assert out.is_file() and (tmp_path / "messy.report.json").is_file()
    check = run_cli("dataset", "check", str(out))
    assert check.returncode == 0 and "OK, 12 images, 64x64 RGB" in check.stdout


def test_pack_cli_errors_are_one_line(tmp_path):
    write_jpegs(tmp_path / "src", 1)
    result = run_cli("dataset", "pack", str(tmp_path / "src"), "--out", str(tmp_path / "o.zip"), "-r", "100")
    assert result.returncode != 0
    assert "power of two" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("dataset", "pack", str(tmp_path / "src"), "--out", str(tmp_path / "o.zip"),
                     "--pad-color", "nocolour")
    assert result.returncode != 0 and "is not a colour" in result.stderr


def test_pack_cli_options_reach_the_pack(fixtures_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "t.zip"
    result = runner.invoke(main, ["dataset", "pack", str(fixtures_dir / "images-classes"), "-o", str(out),
                                  "-r", "32", "--labels", "folders", "--transform", "tiles",
                                  "--tiles-per-image", "2", "--channels", "1", "--jobs", "1", "--quiet",
                                  "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 12 and report["channels"] == 1 and report["class_names"] == ["leaves", "rocks"]
    assert all(k["transform"]["kind"] == "tiles" for k in report["kept"])


def _big_folder(folder: Path, count: int) -> None:
    """`count` copies of one 800x600 JPEG: quick to make, a few seconds to pack with one worker."""
    folder.mkdir()
    first = folder / "img-00000.jpg"
    texture(800, 600, seed=0).save(first, quality=92)
    data = first.read_bytes()
    for i in range(1, count):
        (folder / f"img-{i:05d}.jpg").write_bytes(data)


def _start_pack(src: Path, out: Path, jobs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bender", "dataset", "pack", str(src), "--out", str(out),
                             "-r", "256", "--jobs", str(jobs)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_temp(out: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = [p for p in out.parent.glob(f".{out.name}.*") if p.stat().st_size > 200_000]
        if temps:
            return temps[0]
        assert proc.poll() is None, "pack finished before it could be interrupted; make the input bigger"
        time.sleep(0.02)
    raise AssertionError("no temp file appeared")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_sigkill_midway_leaves_no_zip_and_next_run_cleans_up(tmp_path):
    src = tmp_path / "src"
    _big_folder(src, 400)
    out = tmp_path / "out.zip"
    proc = _start_pack(src, out, jobs=2)
    temp = _wait_for_temp(out, proc)
    workers = _children(proc.pid)
    if Path(f"/proc/{proc.pid}/task/{proc.pid}/children").exists():
        assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    assert temp.exists()  # a SIGKILLed process cannot clean up: the next run must
    deadline = time.monotonic() + 10  # workers die with their parent (PR_SET_PDEATHSIG)
    while any(Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
              for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]]
    result = run_cli("dataset", "pack", str(src), "--out", str(out), "-r", "32", "--max-images", "5")
    assert result.returncode == 0, result.stderr
    assert not temp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.report.json", "out.zip", "src"]
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_midway_leaves_nothing(tmp_path, sig):
    src = tmp_path / "src"
    _big_folder(src, 400)
    out = tmp_path / "out.zip"
    proc = _start_pack(src, out, jobs=2)
    _wait_for_temp(out, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted: nothing written" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no zip, no temp, no report


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _png(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_check_reports_every_problem_at_once(tmp_path):
    rgb = texture(32, 32, seed=1)
    bad = _zip_with(tmp_path / "bad.zip", {
        "00000/img00000000.png": _png(rgb),
        "00000/img00000001.png": _png(rgb),
        "00000/img00000002.png": _png(texture(64, 64, seed=2)),  # odd size, found although not first
        "00000/img00000003.png": _png(rgb.convert("RGBA")),  # 4 channels
        "00000/img00000004.png": b"\x89PNG\r\n\x1a\n broken",  # undecodable
        "00000/img00000005.png": _png(rgb.convert("L")),  # grey among RGB
        "dataset.json": b'{"labels": [["00000/img00000000.png", 0], ["00000/img00000001.png", 1]]}',
    })
    result = run_cli("dataset", "check", str(bad))
    assert result.returncode == 1
    text = result.stdout
    for needle in ("cannot be decoded", "differ in size", "00000/img00000002.png", "mode RGBA",
                   "mix grey and RGB", "have no label", "KeyError"):
        assert needle in text, needle
    assert text.count("problem:") == 5
    json_out = json.loads(run_cli("dataset", "check", "--json", str(bad)).stdout)
    assert not json_out["ok"] and len(json_out["problems"]) == 5


def test_check_geometry_and_json_problems(tmp_path):
    from bender.dataset import check_dataset

    rect = _zip_with(tmp_path / "rect.zip", {"a.png": _png(texture(40, 30, seed=1)),
                                             "dataset.json": b"{nope"})
    report = check_dataset(rect)
    assert any("square" in p for p in report.problems) and any("not valid JSON" in p for p in report.problems)
    npot = check_dataset(_zip_with(tmp_path / "npot.zip", {"a.png": _png(texture(48, 48, seed=1))}))
    assert any("power of two" in p for p in npot.problems)
    paletted = _png(texture(32, 32, seed=1).convert("P"))
    palette = check_dataset(_zip_with(tmp_path / "p.zip", {"a.png": paletted}))
    assert any("palette" in p for p in palette.problems)
    empty = check_dataset(_zip_with(tmp_path / "e.zip", {"readme.md": b"hi"}))
    assert any("no images" in p for p in empty.problems)
    notzip = tmp_path / "x.zip"
    notzip.write_text("hello")
    assert "not a readable zip" in check_dataset(notzip).problems[0]
    negative = check_dataset(_zip_with(tmp_path / "n.zip", {
        "a.png": _png(texture(32, 32, seed=1)), "dataset.json": b'{"labels": [["a.png", -1]]}'}))
    assert any("negative" in p for p in negative.problems)


def test_info_and_preview(fixtures_dir, tmp_path):
    out = tmp_path / "c.zip"
    assert run_cli("dataset", "pack", str(fixtures_dir / "images-classes"), "-o", str(out), "-r", "64",
                   "--labels", "folders").returncode == 0
    info = run_cli("dataset", "info", str(out))
    assert info.returncode == 0
    assert "6 images" in info.stdout and "6 x 64x64" in info.stdout and "leaves: 3" in info.stdout
    assert "provenance: 6 source images" in info.stdout
    sheet = tmp_path / "sheet.png"
    result = run_cli("dataset", "preview", str(out), "--out", str(sheet), "--count", "4", "--columns", "2")
    assert result.returncode == 0, result.stderr
    img = Image.open(sheet)
    assert img.size == (2 + 2 * 66, 2 + 2 * 66)  # 2x2 thumbnails of 64 px with 2 px gaps


def test_dedup_cli_lists_pairs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    base = texture(120, 90, seed=4)
    base.save(src / "a.png")
    base.save(src / "b.png")
    texture(120, 90, seed=5).save(src / "c.png")
    report = tmp_path / "dups.json"
    result = run_cli("dataset", "dedup", str(src), "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "src/b.png\tduplicates\tsrc/a.png\t(exact, distance 0)" in result.stdout
    assert "3 inputs: 2 unique, 1 duplicates" in result.stdout
    assert json.loads(report.read_text())["duplicates"][0]["kept"] == "src/a.png"


def test_cli_does_not_import_torch(tmp_path):
    write_jpegs(tmp_path / "src", 2, size=(64, 64))
    code = ("import sys; from click.testing import CliRunner; from bender.cli import main; "
            f"r = CliRunner().invoke(main, ['dataset', 'pack', {str(tmp_path / 'src')!r}, '-o', "
            f"{str(tmp_path / 'o.zip')!r}, '-r', '64', '-q']); assert r.exit_code == 0, r.output; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stdout.strip() == "False", result.stderr

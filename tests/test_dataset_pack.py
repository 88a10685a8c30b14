"""`pack_dataset` on the shared messy/class fixtures and on generated folders.

Checks every input's outcome, pixel equality with NVIDIA's dataset_tool reference archives, the
archive layout, mode conversions, EXIF, provenance, labels, tiles/pad/wide transforms, dedup,
determinism across worker counts and the no-zip-on-failure rule.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import center_crop_lanczos, psnr, texture, write_jpegs, zip_pixels
from PIL import Image, ImageOps

from bender.dataset import PackOptions, check_dataset, pack_dataset
from bender.errors import BenderError

REF = "nvidia-dataset-tool-reference"


def pack(sources, out, **options):
    return pack_dataset(sources, out, PackOptions(**options), progress=False)

EXPECTED_MESSY = {
    "UPPERCASE-EXT.JPG": "kept", "cmyk.jpg": "kept", "exif-orientation-6.jpg": "kept", "gray.png": "kept",
    "gray16.png": "kept", "landscape-rgb.jpg": "kept", "palette.png": "kept", "photo.webp": "kept",
    "portrait-rgb.jpg": "kept", "rgba-transparent.png": "kept", "square-rgb.png": "kept",
    "tiny-20x20.png": "kept",
    "bomb.png": "decompression bomb", "empty.png": "not an image", "fake.jpg": "not an image",
    "truncated.jpg": "truncated", "notes.txt": "skipped",
}


@pytest.fixture(scope="module")
def messy64(fixtures_dir, tmp_path_factory):
    """The whole messy folder packed at 64 px (default options) and with EXIF orientation off."""
    out = tmp_path_factory.mktemp("messy")
    default = pack([fixtures_dir / "images-messy"], out / "default.zip", resolution=64)
    raw = pack([fixtures_dir / "images-messy"], out / "noexif.zip", resolution=64, exif_orientation=False,
               jobs=2)
    return default, raw


def _outcomes(report) -> dict[str, str]:
    out = {k.source.split("/", 1)[1]: "kept" for k in report.kept}
    out.update({r.source.split("/", 1)[1]: r.reason for r in report.rejects})
    out.update({s.split("/", 1)[1]: "skipped" for s in report.skipped})
    return out


def _entry_for(report, filename: str) -> str:
    return next(k.name for k in report.kept if k.source.endswith("/" + filename))


def test_every_messy_file_gets_the_right_outcome(messy64):
    default, _ = messy64
    assert _outcomes(default) == EXPECTED_MESSY
    assert default.images == 12 and default.inputs == 16
    summary = default.summary()
    for part in ("packed 12 images", "rejected 4", "not an image 2", "truncated 1", "decompression bomb 1",
                 "duplicates 0", "skipped 1"):
        assert part in summary
    # the report on disk says the same, entry by entry
    saved = json.loads(default.report_path.read_text())
    assert {r["source"] for r in saved["rejects"]} == {r.source for r in default.rejects}
    assert saved["rejected_by_reason"] == {"not an image": 2, "truncated": 1, "decompression bomb": 1}


def test_tiny_image_is_too_small_at_256(fixtures_dir, tmp_path):
    src = fixtures_dir / "images-messy"
    report = pack([src / "tiny-20x20.png", src / "square-rgb.png"], tmp_path / "o.zip", resolution=256,
                  jobs=1)
    assert [(r.source, r.reason) for r in report.rejects] == [("tiny-20x20.png", "too small")]
    assert "20x20" in report.rejects[0].detail and "--min-size 64" in report.rejects[0].detail


def test_layout_is_nvidias(messy64, fixtures_dir):
    default, _ = messy64
    ref_zip = fixtures_dir / REF / "messy-accepted-center-crop-64.zip"
    with zipfile.ZipFile(default.out) as zf, zipfile.ZipFile(ref_zip) as ref:
        names = zf.namelist()
        images = [n for n in names if n.endswith(".png")]
        assert images == [f"00000/img{i:08d}.png" for i in range(12)]  # dense, no gaps
        assert names[-1] == "dataset.json"
        assert {"provenance.jsonl", "ATTRIBUTION.md"} <= set(names)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        # uncompressed PNG: exactly the size of NVIDIA's 64x64 RGB entries
        ref_size = ref.getinfo("00000/img00000000.png").file_size
        assert {zf.getinfo(n).file_size for n in images} == {ref_size}
        assert json.loads(zf.read("dataset.json")) == {"labels": None}
    assert check_dataset(default.out).ok


def test_pixels_match_nvidia_reference(messy64, fixtures_dir):
    _, raw = messy64
    manifest = json.loads((fixtures_dir / REF / "manifest.json").read_text())
    entries = manifest["archives"]["messy-accepted-center-crop-64.zip"]["entries"]
    assert len(entries) == 7
    for e in entries:
        ref = zip_pixels(fixtures_dir / REF / "messy-accepted-center-crop-64.zip", e["entry"]).astype(int)
        ours = zip_pixels(raw.out, _entry_for(raw, e["source"].split("/")[-1])).astype(int)
        assert ours.shape == ref.shape == (64, 64, 3)
        assert np.abs(ours - ref).max() <= 1, e["source"]


def test_fast_mode_stays_above_40db(fixtures_dir, tmp_path):
    report = pack([fixtures_dir / "images-messy"], tmp_path / "fast.zip", resolution=64,
                  exif_orientation=False, fast=True, jobs=1)
    manifest = json.loads((fixtures_dir / REF / "manifest.json").read_text())
    scores = {}
    for e in manifest["archives"]["messy-accepted-center-crop-64.zip"]["entries"]:
        ref = zip_pixels(fixtures_dir / REF / "messy-accepted-center-crop-64.zip", e["entry"])
        name = e["source"].split("/")[-1]
        scores[name] = psnr(zip_pixels(report.out, _entry_for(report, name)), ref)
    assert min(scores.values()) >= 40, scores
    # and --fast really took the reduced-decode path for the JPEGs large enough for it
    drafted = [k for k in report.kept if k.transform.get("decoded_size") != k.transform["box"][2:]]
    assert any(k.source.endswith("landscape-rgb.jpg") and k.transform["decoded_size"] == [160, 107]
               for k in drafted)


def test_classes_match_reference_labels_and_pixels(fixtures_dir, tmp_path):
    report = pack([fixtures_dir / "images-classes"], tmp_path / "c.zip", resolution=64, labels="folders",
                  jobs=2)
    ref_zip = fixtures_dir / REF / "classes-center-crop-64.zip"
    with zipfile.ZipFile(ref_zip) as ref, zipfile.ZipFile(report.out) as ours:
        ref_meta = json.loads(ref.read("dataset.json"))
        our_meta = json.loads(ours.read("dataset.json"))
    assert our_meta["labels"] == ref_meta["labels"]
    assert our_meta["class_names"] == ["leaves", "rocks"]
    for name, _ in ref_meta["labels"]:
        ours, ref = zip_pixels(report.out, name).astype(int), zip_pixels(ref_zip, name).astype(int)
        assert np.abs(ours - ref).max() <= 1
    assert report.class_names == ["leaves", "rocks"]
    assert report.skipped == ["images-classes/dataset.json"]
    assert check_dataset(report.out).classes == {0: 3, 1: 3}


def test_exif_orientation_gives_the_upright_portrait(messy64, fixtures_dir):
    default, raw = messy64
    stored = Image.open(fixtures_dir / "images-messy" / "exif-orientation-6.jpg").convert("RGB")
    assert stored.size == (168, 120)
    upright = stored.transpose(Image.Transpose.ROTATE_270)  # 90 degrees clockwise
    assert upright.size == (120, 168)
    ours = zip_pixels(default.out, _entry_for(default, "exif-orientation-6.jpg")).astype(int)
    assert np.abs(ours - center_crop_lanczos(upright, 64).astype(int)).max() <= 1
    sideways = zip_pixels(raw.out, _entry_for(raw, "exif-orientation-6.jpg")).astype(int)
    assert np.abs(sideways - center_crop_lanczos(stored, 64).astype(int)).max() <= 1
    assert np.abs(ours - sideways).mean() > 10  # the two really differ


def test_modes_are_converted_correctly(messy64, fixtures_dir):
    default, _ = messy64
    src = fixtures_dir / "images-messy"

    def ours(name):
        return zip_pixels(default.out, _entry_for(default, name)).astype(int)

    gray = ours("gray.png")
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    # 16-bit grey is rescaled (v / 257), not clipped to white
    g16 = np.asarray(Image.open(src / "gray16.png")).astype(np.int64)
    expected = center_crop_lanczos(Image.fromarray(((g16 + 128) // 257).astype(np.uint8)).convert("RGB"), 64)
    assert np.abs(ours("gray16.png") - expected.astype(int)).max() <= 1 and ours("gray16.png").std() > 20
    # palette: colours through the palette, not raw indices
    pal = Image.open(src / "palette.png")
    expected = center_crop_lanczos(pal.convert("RGB"), 64).astype(int)
    assert np.abs(ours("palette.png") - expected).max() <= 1
    indices = center_crop_lanczos(Image.fromarray(np.asarray(pal)).convert("RGB"), 64).astype(int)
    assert np.abs(ours("palette.png") - indices).mean() > 20
    # CMYK: Pillow's conversion of the Adobe-inverted JPEG
    expected = center_crop_lanczos(Image.open(src / "cmyk.jpg").convert("RGB"), 64).astype(int)
    assert np.abs(ours("cmyk.jpg") - expected).max() <= 1
    # RGBA: transparent corners are composited on the default white background
    rgba = ours("rgba-transparent.png")
    assert (rgba[0, 0] >= 250).all() and (rgba[-1, -1] >= 250).all()
    assert np.abs(rgba[32, 32] - 255).max() > 30  # the opaque photo in the middle


def test_rgba_background_and_grey_output(fixtures_dir, tmp_path):
    src = fixtures_dir / "images-messy"
    report = pack([src / "rgba-transparent.png", src / "landscape-rgb.jpg"], tmp_path / "g.zip",
                  resolution=64, channels=1, background=(255, 0, 0), jobs=1)
    with zipfile.ZipFile(report.out) as zf:
        imgs = [Image.open(io.BytesIO(zf.read(n))) for n in zf.namelist() if n.endswith(".png")]
    assert [i.mode for i in imgs] == ["L", "L"]
    corner = np.asarray(imgs[0])[0, 0]  # sources keep the order they were given in
    assert abs(int(corner) - 76) <= 2  # pure red in ITU-R 601 luma: 0.299 * 255
    result = check_dataset(report.out)
    assert result.ok and result.channels == 1


def test_provenance_and_attribution(messy64, fixtures_dir):
    default, _ = messy64
    facts = json.loads((fixtures_dir / "images-messy.json").read_text())["files"]
    with zipfile.ZipFile(default.out) as zf:
        records = [json.loads(line) for line in zf.read("provenance.jsonl").decode().splitlines()]
        attribution = zf.read("ATTRIBUTION.md").decode()
    assert [r["entry"] for r in records] == [k.name for k in default.kept]
    for r in records:
        name = r["source"].split("/", 1)[1]
        assert r["sha256"] == facts[name]["sha256"]
        assert r["transform"]["kind"] == "center-crop" and r["transform"]["resolution"] == 64
    by_name = {r["source"].split("/", 1)[1]: r for r in records}
    assert by_name["cmyk.jpg"]["source_mode"] == "CMYK"
    assert by_name["exif-orientation-6.jpg"]["source_size"] == [120, 168]
    assert "unknown licence" in attribution and "12 images" in attribution


def test_all_rejected_gives_error_and_no_zip(fixtures_dir, tmp_path):
    src = fixtures_dir / "images-messy"
    out = tmp_path / "nothing.zip"
    with pytest.raises(BenderError, match="no usable images"):
        pack([src / "fake.jpg", src / "empty.png", src / "bomb.png"], out, jobs=1)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["nothing.report.json"]  # the explanation, no temp files


def test_bad_options_and_sources(tmp_path):
    write_jpegs(tmp_path / "src", 1)
    for options, message in ((PackOptions(resolution=100), "power of two"),
                             (PackOptions(transform="smear"), "--transform"),
                             (PackOptions(channels=2), "--channels")):
        with pytest.raises(BenderError, match=message):
            pack_dataset([tmp_path / "src"], tmp_path / "o.zip", options, progress=False)
    with pytest.raises(BenderError, match="source not found"):
        pack([tmp_path / "nope"], tmp_path / "o.zip")
    with pytest.raises(BenderError, match="no images found"):
        (tmp_path / "empty").mkdir()
        pack([tmp_path / "empty"], tmp_path / "o.zip")
    with pytest.raises(BenderError, match=r"\.zip"):
        pack([tmp_path / "src"], tmp_path / "o.tar")
    assert not (tmp_path / "o.zip").exists()


def test_deterministic_for_any_worker_count(tmp_path):
    write_jpegs(tmp_path / "src", 24, size=(150, 110))
    texture(90, 200, seed=99).save(tmp_path / "src" / "tall.png")
    outs = []
    for jobs in (1, 2, 3):
        report = pack([tmp_path / "src"], tmp_path / f"o{jobs}.zip", resolution=64, jobs=jobs,
                      transform="tiles", tiles_per_image=3, dedup=True)
        outs.append(report.out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    again = pack([tmp_path / "src"], tmp_path / "again.zip", resolution=64, jobs=2, transform="tiles",
                 tiles_per_image=3, dedup=True)
    assert again.out.read_bytes() == outs[0]
    seeded = pack([tmp_path / "src"], tmp_path / "seeded.zip", resolution=64, jobs=2, transform="tiles",
                  tiles_per_image=3, seed=1)
    assert seeded.out.read_bytes() != outs[0]  # the seed moves the tiles


def test_tiles_are_crops_at_source_scale(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    picture = texture(300, 200, seed=5)
    picture.save(src / "bark.png")
    grid = pack([src], tmp_path / "grid.zip", resolution=64, transform="tiles", tile_layout="grid",
                tiles_per_image=0, jobs=1)
    assert grid.images == (300 // 64) * (200 // 64)  # 4 x 3 cells
    rand = pack([src], tmp_path / "rand.zip", resolution=64, transform="tiles", tiles_per_image=5, jobs=1)
    assert rand.images == 5
    full = np.asarray(picture)
    for report in (grid, rand):
        for k in report.kept:
            x0, y0, x1, y1 = k.transform["box"]
            assert (x1 - x0, y1 - y0) == (64, 64)
            assert np.array_equal(zip_pixels(report.out, k.name), full[y0:y1, x0:x1])
    assert len({tuple(k.transform["box"]) for k in rand.kept}) > 1
    halved = pack([src], tmp_path / "half.zip", resolution=64, transform="tiles", tile_layout="grid",
                  tiles_per_image=0, tile_scale=0.5, jobs=1)
    assert halved.images == (150 // 64) * (100 // 64)  # 2 x 1 cells of the half-size picture
    with pytest.raises(BenderError, match="too small 1"):
        pack([src], tmp_path / "x.zip", resolution=256, transform="tiles", jobs=1)


def test_pad_and_wide_letterbox(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (200, 100), (0, 200, 0)).save(src / "wide.png")
    pad = pack([src], tmp_path / "pad.zip", resolution=64, transform="pad", pad_color=(0, 0, 255), jobs=1)
    a = zip_pixels(pad.out, "00000/img00000000.png")
    assert (a[:16] == [0, 0, 255]).all() and (a[48:] == [0, 0, 255]).all()  # bands above and below
    assert (a[17:47] == [0, 200, 0]).all()
    wide = pack([src], tmp_path / "wide.zip", resolution=64, transform="center-crop-wide", wide_height=32,
                jobs=1)
    b = zip_pixels(wide.out, "00000/img00000000.png")
    assert (b[:16] == 0).all() and (b[48:] == 0).all() and (b[16:48] == [0, 200, 0]).all()
    assert wide.kept[0].transform["box"] == [0, 0, 200, 100]  # 2:1 source, 2:1 target: no crop


def test_dedup_exact_near_and_mirror(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    base = texture(160, 120, seed=1)
    base.save(src / "a.png")
    base.save(src / "b-same-pixels.webp", lossless=True)  # exact, different format
    base.resize((150, 112), Image.Resampling.LANCZOS).save(src / "c-resized.jpg", quality=85)  # near
    ImageOps.mirror(base).save(src / "d-mirror.png")
    texture(160, 120, seed=2).save(src / "e-other.png")
    plain = pack([src], tmp_path / "p.zip", resolution=64, dedup=True, jobs=2)
    pairs = {(d.dropped.split("/")[-1], d.kept.split("/")[-1], d.kind) for d in plain.duplicates}
    assert pairs == {("b-same-pixels.webp", "a.png", "exact"), ("c-resized.jpg", "a.png", "near")}
    assert plain.images == 3 and "duplicates 2" in plain.summary()
    mirror = pack([src], tmp_path / "m.zip", resolution=64, mirror_check=True, jobs=1)
    kinds = {d.dropped.split("/")[-1]: d.kind for d in mirror.duplicates}
    assert kinds["d-mirror.png"] == "exact-mirror" and mirror.images == 2
    exact_only = pack([src], tmp_path / "e.zip", resolution=64, dedup=True, dedup_mode="exact", jobs=1)
    assert [d.kind for d in exact_only.duplicates] == ["exact"]
    saved = json.loads(plain.report_path.read_text())
    pairs_on_disk = [(d["dropped"], d["kept"]) for d in saved["duplicates"]]
    assert pairs_on_disk == [(d.dropped, d.kept) for d in plain.duplicates]


def test_max_images_stops_early(tmp_path):
    write_jpegs(tmp_path / "src", 30, size=(80, 80))
    report = pack([tmp_path / "src"], tmp_path / "o.zip", resolution=64, max_images=7, jobs=2)
    assert report.images == 7 and report.stopped_at_max
    with zipfile.ZipFile(report.out) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 7


def _write_manifest(folder: Path, records: list[dict]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"id": "torn', encoding="utf-8")
    return path


def test_manifest_source_labels_and_provenance(tmp_path):
    root = tmp_path / "sets" / "forest"
    (root / "images").mkdir(parents=True)
    for i in range(4):
        texture(96, 96, seed=10 + i).save(root / "images" / f"{i}.jpg")
    base = {"provider": "openverse", "license": "by", "license_version": "4.0",
            "license_url": "https://creativecommons.org/licenses/by/4.0/", "width": 96, "height": 96}
    records = [
        {**base, "id": "a", "status": "kept", "reason": None, "path": "images/0.jpg", "query": "oak bark",
         "creator": "Ann", "title": "Oak", "attribution": "\"Oak\" by Ann, CC BY 4.0",
         "landing_url": "https://example.org/a", "image_url": "https://example.org/a.jpg"},
        {**base, "id": "b", "status": "kept", "path": "images/1.jpg", "query": "pine bark", "label": "pine"},
        {**base, "id": "c", "status": "kept", "path": "images/2.jpg", "query": "oak bark"},
        {**base, "id": "c", "status": "rejected", "reason": "curated out", "path": "images/2.jpg"},  # wins
        {**base, "id": "d", "status": "duplicate", "path": "images/3.jpg", "query": "oak bark"},
        {**base, "id": "e", "status": "kept", "path": "images/missing.jpg", "query": "oak bark"},
    ]
    (root / "images" / "3.jpg").touch()
    _write_manifest(root, records)
    report = pack([root], tmp_path / "forest.zip", resolution=64, labels="manifest", jobs=1)
    assert [k.source for k in report.kept] == ["forest/images/0.jpg", "forest/images/1.jpg"]
    reasons = {r.source: r.reason for r in report.rejects}
    assert reasons == {"forest/images/missing.jpg": "missing file", "manifest.jsonl:7": "corrupt"}
    assert report.class_names == ["oak bark", "pine"]  # label field first, then query
    with zipfile.ZipFile(report.out) as zf:
        meta = json.loads(zf.read("dataset.json"))
        prov = [json.loads(line) for line in zf.read("provenance.jsonl").decode().splitlines()]
        attribution = zf.read("ATTRIBUTION.md").decode()
    assert meta["labels"] == [["00000/img00000000.png", 0], ["00000/img00000001.png", 1]]
    assert meta["class_names"] == ["oak bark", "pine"]
    assert prov[0]["license"] == "by" and prov[0]["creator"] == "Ann" and prov[0]["id"] == "a"
    assert prov[0]["landing_url"] == "https://example.org/a" and prov[0]["label"] == 0
    assert prov[0]["sha256"] == hashlib.sha256((root / "images" / "0.jpg").read_bytes()).hexdigest()
    assert "## CC BY 4.0" in attribution and "\"Oak\" by Ann, CC BY 4.0" in attribution
    assert check_dataset(report.out).ok
    # a custom label field; records without it fall back to the query
    other = pack([root / "manifest.jsonl"], tmp_path / "o.zip", resolution=64, labels="manifest",
                 label_field="provider", jobs=1)
    assert other.class_names == ["openverse"]


def test_zip_and_nvidia_zip_sources(fixtures_dir, tmp_path):
    ref = fixtures_dir / REF / "classes-center-crop-64.zip"
    report = pack([ref], tmp_path / "re.zip", resolution=32, labels="folders", jobs=1)
    assert [k.label for k in report.kept] == [0, 0, 0, 1, 1, 1]  # NVIDIA labels carried over
    assert report.kept[0].source == "classes-center-crop-64.zip:00000/img00000000.png"
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        for name in ("cats/a.jpg", "dogs/b.jpg", "__MACOSX/cats/._a.jpg", "readme.txt"):
            buf = io.BytesIO()
            texture(70, 70, seed=len(name)).save(buf, format="JPEG")
            zf.writestr(name, buf.getvalue())
    labelled = pack([plain], tmp_path / "l.zip", resolution=64, labels="folders", jobs=1)
    assert [k.label for k in labelled.kept] == [0, 1] and labelled.class_names == ["cats", "dogs"]
    assert labelled.skipped == ["plain.zip:readme.txt"]
    with pytest.raises(BenderError, match="also a source"):
        pack([plain], plain)


def test_folder_labels_reject_files_outside_class_folders(fixtures_dir, tmp_path):
    src = tmp_path / "src"
    write_jpegs(src / "moss", 2, size=(80, 80))
    write_jpegs(src, 1, size=(80, 80), start=5)
    report = pack([src], tmp_path / "o.zip", resolution=64, labels="folders", jobs=1)
    assert [(r.source, r.reason) for r in report.rejects] == [("src/img-0005.jpg", "no label")]
    assert [k.label for k in report.kept] == [0, 0]


def test_small_bomb_rejected_by_declared_size(tmp_path):
    # 3000 x 3000 of zeros compresses to a few KB; with a 1-megapixel limit it must not be decoded
    Image.new("L", (3000, 3000)).save(tmp_path / "zeros.png")
    texture(80, 80, seed=3).save(tmp_path / "fine.png")
    report = pack([tmp_path / "zeros.png", tmp_path / "fine.png"], tmp_path / "o.zip", resolution=64,
                  max_pixels=1_000_000, jobs=1)
    assert [(r.source, r.reason) for r in report.rejects] == [("zeros.png", "decompression bomb")]
    assert "3000x3000" in report.rejects[0].detail


BOMB_PROBE = r"""
import resource, sys
from bender.dataset.decode import DecodeOptions, decode_image
from bender.dataset.rejects import Rejected
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode_image(data, DecodeOptions())
    print("DECODED")
except Rejected as e:
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(e.reason, (after - before) // 1024)
"""


def test_bomb_is_rejected_without_allocating(fixtures_dir, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BOMB_PROBE, str(fixtures_dir / "images-messy" / "bomb.png")],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    reason, grown_mib = out.stdout.strip().rsplit(" ", 1)
    assert reason == "decompression bomb", out.stderr
    assert int(grown_mib) < 20  # decoding would need >= 28 MiB (1-bit) or 228 MiB (8-bit)


def test_stale_temp_cleanup_spares_a_live_run(tmp_path):
    import fcntl

    from bender.dataset.pack import remove_stale_temps

    out = tmp_path / "data.zip"
    live, stale = tmp_path / ".data.zip.live1.tmp.zip", tmp_path / ".data.zip.dead2.tmp.zip"
    other = tmp_path / ".other.zip.dead3.tmp.zip"
    for p in (live, stale, other):
        p.write_bytes(b"partial")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running pack holds it
        assert remove_stale_temps(out) == [stale]
    assert live.exists() and other.exists() and not stale.exists()


def test_other_modes_convert_or_are_rejected_with_a_reason(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))  # left-to-right ramp
    alpha = np.full((64, 64), 255, np.uint8)
    alpha[:, :8] = 0  # transparent left band
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(src / "a-la.png")
    palette = Image.fromarray(np.zeros((64, 64), np.uint8), "P")
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.paste(1, (16, 0, 64, 64))
    palette.save(src / "b-p-trns.png", transparency=0)  # palette + tRNS: index 0 is transparent
    Image.fromarray(grey > 127).save(src / "c-bilevel.png")
    Image.fromarray(grey.astype(np.int32) * 257, "I").save(src / "d-int32.tif")
    Image.fromarray(grey.astype(np.float32) / 255, "F").save(src / "e-float.tif")
    texture(64, 64, seed=2).convert("P", palette=Image.Palette.ADAPTIVE).save(src / "f.gif", transparency=0)
    report = pack([src], tmp_path / "o.zip", resolution=64, background=(255, 0, 0), jobs=1)
    assert [(r.source, r.reason) for r in report.rejects] == [("src/e-float.tif", "unsupported mode")]
    pixels = {k.source.split("/")[-1]: zip_pixels(report.out, k.name) for k in report.kept}
    assert set(pixels) == {"a-la.png", "b-p-trns.png", "c-bilevel.png", "d-int32.tif", "f.gif"}
    assert (pixels["a-la.png"][:, :8] == [255, 0, 0]).all()  # transparent band on the background
    assert np.array_equal(pixels["a-la.png"][:, 8:, 0], grey[:, 8:])
    trns = pixels["b-p-trns.png"]
    assert (trns[:, :15] == [255, 0, 0]).all() and (trns[:, 17:] == [10, 200, 30]).all()
    assert set(np.unique(pixels["c-bilevel.png"])) == {0, 255}
    assert np.abs(pixels["d-int32.tif"][..., 0].astype(int) - grey).max() <= 1  # 16-bit range rescaled
    assert check_dataset(report.out).ok


def test_to_mode_handles_pa_and_premultiplied():
    from bender.dataset.decode import to_mode

    rgba = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    rgba.paste((0, 255, 0, 255), (2, 0, 4, 4))
    for img in (rgba.convert("PA"), rgba.convert("RGBa")):
        out = np.asarray(to_mode(img, 3, (255, 255, 255)))
        assert (out[:, :2] == 255).all() and (out[:, 2:] == [0, 255, 0]).all(), img.mode


def test_packs_a_manifest_written_by_the_scrapers(tmp_path):
    """The format contract with scrapers/manifest.py, through its own writer."""
    manifest = pytest.importorskip("scrapers.manifest")
    from scrapers.candidate import Candidate

    root = tmp_path / "moss"
    (root / "images").mkdir(parents=True)
    records = []
    for i, query in enumerate(["moss", "lichen", "moss"]):
        path = f"images/{i:064x}.jpg"
        texture(90, 90, seed=40 + i).save(root / path)
        c = Candidate(provider="openverse", provider_id=str(i), query=query, image_url=f"https://x.org/{i}.jpg",
                      license="by-sa", license_version="2.0", creator=f"C{i}", attribution=f"photo {i} by C{i}")
        records.append(manifest.make_record(c, "kept", path=path, width=90, height=90))
    dropped = Candidate(provider="openverse", provider_id="9", query="moss", image_url=None)
    records.append(manifest.make_record(dropped, "rejected", "http 404"))
    with manifest.ManifestWriter(root / "manifest.jsonl", fsync=False) as writer:
        for record in records:
            writer.append(record)
    report = pack([root], tmp_path / "moss.zip", resolution=64, labels="manifest", jobs=1)
    assert report.images == 3 and report.class_names == ["lichen", "moss"]
    assert [k.label for k in report.kept] == [1, 0, 1]
    with zipfile.ZipFile(report.out) as zf:
        prov = [json.loads(line) for line in zf.read("provenance.jsonl").decode().splitlines()]
    assert [p["attribution"] for p in prov] == ["photo 0 by C0", "photo 1 by C1", "photo 2 by C2"]
    assert all(p["provider_id"] and p["fetched_at"] for p in prov)

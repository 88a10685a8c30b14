"""Frames -> files through imageio-ffmpeg / Pillow: decodable, right frame count and fps, metadata, atomic."""

from __future__ import annotations

import numpy as np
import pytest

from bender.errors import BenderError
from bender.render import video

SCRIPT_TEXT = "model: default\n# comment; with = signs and \\ backslash\nkeyframes: [{seed: 1}]\nnote: 'é ü'\n"


def frames(n=12, h=32, w=48, seed=0):
    """Smooth, distinct frames (a colour gradient with a moving square), like real video content."""
    rs = np.random.RandomState(seed)
    colour = rs.randint(40, 200, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 / w, yy * 200 / h, np.full_like(xx, 100.0)], axis=2)
    out = []
    for i in range(n):
        f = base.copy()
        x0 = (3 * i) % (w - 8)
        f[8:16, x0:x0 + 8] = colour
        out.append(f.astype(np.uint8))
    return out


@pytest.mark.parametrize(("name", "fps"), [("clip.mp4", 24.0), ("clip.webm", 30.0), ("clip.mp4", 23.976)])
def test_ffmpeg_outputs_decode_with_right_count_and_fps(tmp_path, name, fps):
    src = frames()
    info = video.write_video(iter(src), tmp_path / name, fps=fps, crf=10,
                             metadata={"bender_script": SCRIPT_TEXT, "bender_script_sha256": "abc"})
    assert info.frames == 12 and (info.width, info.height) == (48, 32)
    meta = video.probe(tmp_path / name)
    assert meta["frames"] == 12 and meta["size"] == (48, 32)
    assert meta["fps"] == pytest.approx(fps, abs=0.01)
    decoded = video.decode_frames(tmp_path / name)
    assert len(decoded) == 12
    assert np.abs(decoded[5].astype(int) - src[5].astype(int)).mean() < 8  # lossy, but the same picture
    tags = video.read_metadata(tmp_path / name)
    assert tags["bender_script_sha256"] == "abc"
    assert tags["bender_script"] == SCRIPT_TEXT
    assert not list(tmp_path.glob(".*tmp*"))


def test_gif_and_png_sequence_and_single_png(tmp_path):
    src = frames(6)
    info = video.write_video(src, tmp_path / "clip.gif", fps=20, metadata={"bender_script": SCRIPT_TEXT})
    assert info.format == "gif"
    decoded = video.decode_frames(tmp_path / "clip.gif")
    assert len(decoded) == 6
    assert np.abs(decoded[2].astype(int) - src[2].astype(int)).mean() < 12  # palette quantisation
    assert video.read_metadata(tmp_path / "clip.gif")["bender_script"] == SCRIPT_TEXT

    info = video.write_video(src, tmp_path / "seq", fps=20, metadata={"bender_script": SCRIPT_TEXT})
    assert info.format == "png-seq"
    decoded = video.decode_frames(tmp_path / "seq")
    assert len(decoded) == 6 and all(np.array_equal(a, b) for a, b in zip(decoded, src))  # lossless
    assert video.read_metadata(tmp_path / "seq")["bender_script"] == SCRIPT_TEXT
    # rewriting a sequence replaces it whole (no stale frames from a longer earlier render)
    video.write_video(src[:2], tmp_path / "seq", fps=20)
    assert len(video.decode_frames(tmp_path / "seq")) == 2

    video.write_video(src[:1], tmp_path / "still.png", metadata={"bender_script": SCRIPT_TEXT})
    assert np.array_equal(video.decode_frames(tmp_path / "still.png")[0], src[0])
    assert video.read_metadata(tmp_path / "still.png")["bender_script"] == SCRIPT_TEXT
    with pytest.raises(BenderError, match="holds one image"):
        video.write_video(src, tmp_path / "many.png")
    assert not (tmp_path / "many.png").exists()


def test_frame_hash_is_content_hash(tmp_path):
    a = video.write_video(frames(4), tmp_path / "a", fps=10)
    b = video.write_video(frames(4), tmp_path / "b", fps=10)
    c = video.write_video(frames(4, seed=1), tmp_path / "c", fps=10)
    assert a.frames_sha256 == b.frames_sha256 != c.frames_sha256


def test_odd_sizes_and_grayscale(tmp_path):
    odd = [np.full((31, 45, 1), 10 * i, dtype=np.uint8) for i in range(5)]
    video.write_video(odd, tmp_path / "odd.mp4", fps=12)
    meta = video.probe(tmp_path / "odd.mp4")
    assert meta["frames"] == 5 and meta["size"] == (46, 32)  # padded to even, not resampled


def test_interrupted_write_leaves_nothing(tmp_path):
    def broken():
        yield from frames(3)
        raise KeyboardInterrupt

    for name in ("clip.mp4", "clip.gif", "seq"):
        with pytest.raises(KeyboardInterrupt):
            video.write_video(broken(), tmp_path / name, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_existing_video_survives_a_failed_rewrite(tmp_path):
    video.write_video(frames(3), tmp_path / "keep.mp4", fps=10)
    before = (tmp_path / "keep.mp4").read_bytes()

    def broken():
        yield frames(1)[0]
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        video.write_video(broken(), tmp_path / "keep.mp4", fps=10)
    assert (tmp_path / "keep.mp4").read_bytes() == before


def test_format_errors(tmp_path):
    assert video.output_format("a.MP4") == "h264"
    assert video.output_format("frames") == "png-seq"
    with pytest.raises(BenderError, match="unknown output type '.avi'"):
        video.output_format("a.avi")
    with pytest.raises(BenderError, match="codec vp9 cannot be written"):
        video.output_format("a.mp4", "vp9")
    with pytest.raises(BenderError, match="no frames"):
        video.write_video([], tmp_path / "a.mp4")
    with pytest.raises(BenderError, match="crf 0-51"):
        video.write_video(frames(1), tmp_path / "a.mp4", crf=60)

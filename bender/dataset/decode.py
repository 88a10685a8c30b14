"""Decoding untrusted image bytes into a clean 8-bit RGB or L picture.

Scraped folders contain everything: CMYK JPEGs, 16-bit PNGs, palette images, transparent PNGs,
phone photos that rely on EXIF orientation, truncated downloads, HTML saved as `.jpg`, and now and
then a decompression bomb. This module turns each of them into either a loaded `PIL.Image` in mode
`RGB` or `L`, or a `Rejected` with a reason the artist can act on. Order matters for safety: the
declared size is checked before any pixel is decoded, so a bomb costs a header read, never its
pixels.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bender.dataset.rejects import BOMB, CORRUPT, NOT_AN_IMAGE, TRUNCATED, UNSUPPORTED_MODE, Rejected

# Pillow's own default threshold (about 89.5 megapixels); above it we refuse instead of warning.
DEFAULT_MAX_PIXELS = 89_478_485

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


@dataclass(frozen=True)
class DecodeOptions:
    """How to turn bytes into pixels. Every field changes the output, so all of them are explicit."""

    channels: int = 3  # 3 -> RGB, 1 -> L
    exif_orientation: bool = True  # apply the camera's rotation flag (NVIDIA's tool ignores it)
    background: tuple[int, int, int] = (255, 255, 255)  # what transparent pixels are composited on
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class Decoded:
    image: Image.Image  # loaded, mode RGB or L, orientation applied
    size: tuple[int, int]  # the full-resolution (oriented) size, even when a JPEG draft decoded less
    source_mode: str  # the mode the file was stored in, for the report


# A function from the full (oriented) size to the smallest size worth decoding: enables JPEG DCT
# scaling in --fast mode. None means decode at full size (exact mode).
DraftRequest = Callable[[tuple[int, int]], tuple[int, int]]


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Set Pillow's bomb limit (None = off) with its warning made an error; restore afterwards."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def decode_image(data: bytes, options: DecodeOptions, draft: DraftRequest | None = None) -> Decoded:
    """Decode `data` into a loaded RGB/L image, or raise `Rejected` saying why not."""
    if not data:
        raise Rejected(NOT_AN_IMAGE, "empty file (0 bytes)")
    with _pixel_limit(None):  # our own check below, with our own message, replaces Pillow's at open
        img = _open(data, options.max_pixels)
    with _pixel_limit(options.max_pixels):  # and Pillow's stays armed for whatever decoding does
        source_mode = img.mode
        orientation = _orientation(img) if options.exif_orientation else 1
        width, height = img.size
        full_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        if draft is not None and img.format == "JPEG":
            want = draft(full_size)
            if orientation in (5, 6, 7, 8):
                want = (want[1], want[0])
            img.draft(img.mode, want)
        _load(img)
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    img = to_mode(img, options.channels, options.background)
    return Decoded(image=img, size=full_size, source_mode=source_mode)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Rejected(BOMB, f"{e} (raise the limit with --max-pixels if you trust this file)") from None
    except UnidentifiedImageError:
        raise Rejected(NOT_AN_IMAGE, "Pillow cannot identify this file as an image") from None
    except Exception as e:  # noqa: BLE001 - any parser failure on untrusted bytes is a rejection
        raise Rejected(CORRUPT, f"cannot read the header: {type(e).__name__}: {e}") from None
    width, height = img.size
    # Pillow checks this at open for most formats; checking again here covers the ones it does not.
    if width * height > max_pixels:
        raise Rejected(BOMB, f"declares {width}x{height} = {width * height:,} pixels, over the limit of "
                             f"{max_pixels:,} (raise it with --max-pixels if you trust this file)")
    if width < 1 or height < 1:
        raise Rejected(CORRUPT, f"declares an empty size {width}x{height}")
    return img


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only means "no rotation known"
        return 1
    return value if 1 <= value <= 8 else 1


def _load(img: Image.Image) -> None:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Rejected(BOMB, str(e)) from None
    except OSError as e:
        if "truncated" in str(e):
            raise Rejected(TRUNCATED, f"{e} (an interrupted download?)") from None
        raise Rejected(CORRUPT, f"cannot decode: {e}") from None
    except MemoryError:
        raise Rejected(BOMB, "ran out of memory while decoding") from None
    except Exception as e:  # noqa: BLE001 - decoder failures on untrusted bytes are rejections
        raise Rejected(CORRUPT, f"cannot decode: {type(e).__name__}: {e}") from None


def to_mode(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (channels=3) or L (channels=1).

    Palette images go through their palette (never their raw indices), 16-bit grey is rescaled
    rather than clipped, and transparency is composited onto `background` because the colours under
    fully transparent pixels are arbitrary (often the uncropped photo).
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        img = _sixteen_to_eight(img)
    elif mode == "F":
        raise Rejected(UNSUPPORTED_MODE, "32-bit float pixels (mode F) have no agreed 8-bit range; "
                                         "export the image as 8- or 16-bit")
    elif mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(canvas, rgba).convert("RGB")
    elif mode not in ("RGB", "L"):
        try:
            img = img.convert("RGB")
        except Exception as e:  # noqa: BLE001 - Pillow raises several types for unknown conversions
            raise Rejected(UNSUPPORTED_MODE, f"cannot convert mode {mode} to RGB: {e}") from None
    target = "RGB" if channels == 3 else "L"
    return img if img.mode == target else img.convert(target)


def _sixteen_to_eight(img: Image.Image) -> Image.Image:
    # Round to the nearest 8-bit value: v/257 maps 0..65535 exactly onto 0..255 (x*257 round-trips).
    a = np.asarray(img).astype(np.int64)
    a = (np.clip(a, 0, 65535) + 128) // 257
    return Image.fromarray(a.astype(np.uint8), "L")

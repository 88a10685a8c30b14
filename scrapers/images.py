"""Is this really an image we can use? Magic-byte sniffing, Pillow checks and the perceptual hash.

`Content-Type` is not trusted (CDNs send `application/octet-stream`, error pages arrive as HTML with
status 200), so the first bytes decide (`sniff`). Then Pillow, limited to six decoders (limiting
decoders is a security control), must open the file; the pixel count is checked against our limit
right after the lazy open and before any decoding, so a decompression bomb costs nothing.

Speed versus safety: the whole compressed stream is always decoded, so truncated files fail
(`LOAD_TRUNCATED_IMAGES` stays False), but JPEGs decode through `Image.draft` at 1/2..1/8 scale,
which skips most of the inverse-DCT and colour work and is all the perceptual hash needs. The
stored file is the original bytes, so nothing is lost; the dataset packer does the full decode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import imagehash
from PIL import Image, ImageFile, ImageOps

FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
DEFAULT_MAX_PIXELS = 64_000_000
HASH_DRAFT_SIZE = (128, 128)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # the default, restated: truncated files must fail


class ImageRejected(Exception):
    """Not a usable image; `reason` is a short manifest reason ('not an image', 'bomb', ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow format name
    ext: str  # file extension for images/<sha256>.<ext>
    width: int  # after EXIF orientation
    height: int
    phash: str  # imagehash.phash hex (64 bits)
    animated: bool = False


def sniff(head: bytes) -> str | None:
    """The Pillow format name the magic bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def head_check(head: bytes) -> str | None:
    """For the downloader: refuse a body as soon as its first bytes are not an image."""
    return None if sniff(head) else "not an image"


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Open, bound, fully decode (at reduced JPEG scale) and hash `data`; raise `ImageRejected`."""
    if sniff(data[:16]) is None:
        raise ImageRejected("not an image")
    # Our limit is never looser than Pillow's, so anything Pillow would merely warn about (between
    # its limit and twice it) is rejected here as a bomb too. (warnings.catch_warnings is not
    # thread-safe, so the explicit check below is the control, not a warnings filter.)
    max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageRejected("bomb", f"{width}x{height} px is over {max_pixels} px")
        if width < 1 or height < 1:
            raise ImageRejected("not an image", "zero size")
        # Later frames can hide a bomb and a GAN dataset wants stills: animated files are refused.
        animated = getattr(img, "n_frames", 1) > 1
        if animated:
            raise ImageRejected("animated")
        orientation = _orientation(img)
        if img.format == "JPEG":
            img.draft(img.mode, HASH_DRAFT_SIZE)
        img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageRejected("bomb", str(e)) from None
    except Image.UnidentifiedImageError as e:
        raise ImageRejected("not an image", str(e)) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, IndexError, TypeError) as e:
        # Pillow reports a truncated or corrupt stream as OSError ("image file is truncated").
        raise ImageRejected("corrupt image", str(e)) from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not lose a good image; hash it as stored
        pass
    try:
        phash = str(imagehash.phash(img))
    except (OSError, ValueError) as e:
        raise ImageRejected("corrupt image", str(e)) from None
    fmt = img.format or sniff(data[:16]) or "JPEG"
    return ImageInfo(format=fmt, ext=EXTENSIONS.get(fmt, "img"), width=width, height=height,
                     phash=phash, animated=animated)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1

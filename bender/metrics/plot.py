"""Line charts drawn with Pillow (no matplotlib): the bend curve and the classifier's training curves.

Small and dependency-free on purpose: axes with "nice" ticks (1, 2, 5 x 10^k), a legend, and
lines with point markers — enough to read a curve at a glance in a file browser or the UI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bender.fileio import atomic_path

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


@dataclass
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: tuple[int, int, int] = COLORS[0]


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """About `target` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, target - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.1e}"
    return f"{v:.6g}" if v == int(v) else f"{v:.3g}"


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def line_chart(series: list[Series], title: str = "", x_label: str = "", y_label: str = "",
               size: tuple[int, int] = (900, 520)) -> Image.Image:
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    small, big = font(13), font(16)
    left, right, top, bottom = 78, 24, 44, 62
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if math.isfinite(y)]
    xt = nice_ticks(min(xs, default=0), max(xs, default=1))
    yt = nice_ticks(min(0.0, min(ys, default=0)), max(ys, default=1))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    pw, ph = width - left - right, height - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / ((x1 - x0) or 1) * pw, top + ph - (y - y0) / ((y1 - y0) or 1) * ph

    for t in yt:  # grid + y ticks
        _, y = px(x0, t)
        draw.line([(left, y), (left + pw, y)], fill=(230, 230, 230))
        draw.text((left - 6, y), fmt(t), fill="black", font=small, anchor="rm")
    for t in xt:
        x, _ = px(t, y0)
        draw.line([(x, top), (x, top + ph)], fill=(240, 240, 240))
        draw.line([(x, top + ph), (x, top + ph + 5)], fill="black")
        draw.text((x, top + ph + 8), fmt(t), fill="black", font=small, anchor="mt")
    draw.rectangle([left, top, left + pw, top + ph], outline="black")
    draw.text((width / 2, 12), title, fill="black", font=big, anchor="mt")
    draw.text((left + pw / 2, height - 8), x_label, fill="black", font=small, anchor="md")
    label_img = Image.new("RGB", (ph, 20), "white")
    ImageDraw.Draw(label_img).text((ph / 2, 10), y_label, fill="black", font=small, anchor="mm")
    img.paste(label_img.rotate(90, expand=True), (4, top))

    for s in series:
        pts = [px(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=s.color, width=3, joint="curve")
        r = 4 if len(pts) <= 40 else 2
        for x, y in pts:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=s.color)
    for i, s in enumerate(series):  # legend, top right
        lx, ly = left + pw - 220, top + 10 + i * 20
        draw.line([(lx, ly + 7), (lx + 24, ly + 7)], fill=s.color, width=3)
        draw.text((lx + 30, ly), s.label, fill="black", font=small)
    return img


def save_chart(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def draw_bend_curve(points, path: str | Path, title: str = "bend") -> Path:
    """kimg vs distance-to-target and distance-from-original (bender.metrics.bend.BendPoint list)."""
    xs = [p.kimg for p in points]
    chart = line_chart([Series("distance to target (dataset)", xs, [p.to_target for p in points], COLORS[0]),
                        Series("distance from original", xs, [p.from_original for p in points], COLORS[1])],
                       title=title, x_label="kimg (thousands of images shown to D)", y_label="Frechet distance")
    return save_chart(chart, path)

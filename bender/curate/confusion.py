"""Pictures of a classifier's quality, drawn with Pillow: the confusion matrix and the training curves."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from bender.metrics.plot import COLORS, Series, font, line_chart, save_chart


def draw_confusion(matrix: list[list[int]], class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Rows: true class; columns: predicted class. Cell shade = share of the row; the count is printed."""
    k = len(class_names)
    cell = max(36, min(90, 720 // max(k, 1)))
    small = font(12)
    label_w = min(200, 14 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(n, font=small))
                                for n in class_names))
    left, top = label_w + 30, 84
    width, height = left + k * cell + 20, top + k * cell + 40
    img = Image.new("RGB", (max(width, 360), height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill="black", font=font(15))
    draw.text((left + k * cell / 2, top - 46), "predicted", fill="black", font=small, anchor="mm")
    draw.text((10, top + k * cell + 14), "rows: true class", fill="black", font=small)
    for i, name in enumerate(class_names):
        short = name if len(name) <= 24 else name[:23] + "…"
        draw.text((left - 8, top + i * cell + cell / 2), short, fill="black", font=small, anchor="rm")
        draw.text((left + i * cell + cell / 2, top - 8), short[:max(3, cell // 8)], fill="black", font=small,
                  anchor="md")
    for i, row in enumerate(matrix):
        total = max(1, sum(row))
        for j, v in enumerate(row):
            share = v / total
            base = (44, 160, 44) if i == j else (214, 39, 40)
            color = tuple(int(255 - share * (255 - c)) for c in base)
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=color, outline=(200, 200, 200))
            draw.text((x + cell / 2, y + cell / 2), str(v), fill="black" if share < 0.6 else "white", font=small,
                      anchor="mm")
    return save_chart(img, path)


def draw_history(history: list[dict], path: str | Path, title: str = "training") -> Path:
    """Training and validation accuracy per epoch."""
    xs = [h["epoch"] for h in history]
    chart = line_chart([Series("train accuracy", xs, [h["train_accuracy"] for h in history], COLORS[0]),
                        Series("validation accuracy", xs, [h["val_accuracy"] for h in history], COLORS[2])],
                       title=title, x_label="epoch", y_label="accuracy", size=(720, 420))
    return save_chart(chart, path)

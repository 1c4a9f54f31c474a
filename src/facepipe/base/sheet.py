"""Sheets of thumbnails: a title bar, then one row per entry, its label column (number, name, one
line of detail) and its pictures side by side. The episode's contact sheet (one row per cluster)
and the season's cast sheet (one row per cast member) are both drawn here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import atomic
from .images import letterbox

THUMB = 96  # a picture's square, pixels
PAD = 6
LABEL_W = 220  # the label column
HEADER_H = 40
CAPTION_H = 16  # the line under each picture, on sheets with captions
NAME_SCALE = 0.6  # the largest a name is written; a longer one is shrunk to fit the label column
TITLE_SCALE = 0.7
BACKGROUND, HEADER_BACKGROUND, MISSING_GREY = 24, 0, 80
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Row:
    """One row: `label` (e.g. "#3"), `name` (or None), `detail` (one line), and `pictures` (a file
    each, None for an empty place) with a caption each on sheets with captions; `more`, if given,
    is written over the end of the row (e.g. "+4 more")."""

    label: str
    name: str | None
    detail: str
    pictures: list[Path | None]
    captions: list[str] = field(default_factory=list)
    more: str | None = None


def draw_text(img: np.ndarray, text: str, org, scale: float = 0.5, colour=(255, 255, 255)) -> None:
    cv2.putText(img, text, org, FONT, scale, colour, 1, cv2.LINE_AA)


def thumbnail(path: Path) -> np.ndarray:
    """The picture letterboxed into a THUMB square; a flat grey square if it cannot be read."""
    img = cv2.imread(str(path))
    if img is None:
        img = np.full((THUMB, THUMB, 3), MISSING_GREY, np.uint8)
    return letterbox(img, THUMB, THUMB, fill=40)


def name_scale(name: str) -> float:
    """The scale at which `name` fits the label column (NAME_SCALE at most)."""
    width = cv2.getTextSize(name, FONT, NAME_SCALE, 1)[0][0]
    return min(NAME_SCALE, NAME_SCALE * (LABEL_W - 2 * PAD) / width)


def sheet_width(columns: int) -> int:
    return LABEL_W + columns * (THUMB + PAD) + PAD


def fit_columns(title: str, columns: int, most: int) -> int:
    """The columns of a sheet that shows `columns` pictures a row and its whole title (`most` at most)."""
    need = cv2.getTextSize(title, FONT, TITLE_SCALE, 1)[0][0] + 2 * PAD
    k = max(1, columns)
    while sheet_width(k) < need and k < most:
        k += 1
    return k


def render(title: str, rows: list[Row], columns: int, empty: str, captions: bool = False) -> np.ndarray:
    """The sheet as a BGR image: at most `columns` pictures a row; `empty` is written where there is
    no row."""
    width = sheet_width(columns)
    out = []
    for entry in rows:
        row = np.full((THUMB + 2 * PAD + (CAPTION_H if captions else 0), width, 3), BACKGROUND, np.uint8)
        draw_text(row, entry.label, (PAD, 28), 0.7)
        if entry.name:
            draw_text(row, entry.name, (PAD, 54), name_scale(entry.name), (120, 230, 120))
        draw_text(row, entry.detail, (PAD, 80))
        for k, picture in enumerate(entry.pictures[:columns]):
            x = LABEL_W + k * (THUMB + PAD)
            if picture is not None:
                row[PAD:PAD + THUMB, x:x + THUMB] = thumbnail(picture)
            if captions:
                draw_text(row, entry.captions[k], (x, THUMB + PAD + 13), 0.35, (200, 200, 200))
        if entry.more:
            draw_text(row, entry.more, (width - 90, THUMB // 2), 0.45)
        out.append(row)
    header = np.full((HEADER_H, width, 3), HEADER_BACKGROUND, np.uint8)
    draw_text(header, title, (PAD, 26), TITLE_SCALE)
    if not out:
        blank = np.full((THUMB, width, 3), BACKGROUND, np.uint8)
        draw_text(blank, empty, (PAD, THUMB // 2), 0.7)
        out.append(blank)
    return np.vstack([header, *out])


def write(path: str | Path, title: str, rows: list[Row], columns: int, empty: str, captions: bool = False) -> None:
    """render(), published as a JPEG (quality 90) at `path` (base.atomic)."""
    atomic.write_image(path, render(title, rows, columns, empty, captions), quality=90)

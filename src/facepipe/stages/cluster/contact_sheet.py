"""The contact sheet: one row of stills per cluster, so a person can check clusters at a glance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...base import atomic
from ...base.images import letterbox

THUMB = 96
LABEL_W = 220
PAD = 6
MAX_PER_ROW = 8


def thumbnail(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        img = np.full((THUMB, THUMB, 3), 80, np.uint8)
    return letterbox(img, THUMB, THUMB, fill=40)


def draw_text(img, text, org, scale=0.5, colour=(255, 255, 255)):
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def render(clusters: dict, manifest: dict, stills_dir: str | Path, out_path: str | Path) -> None:
    stills_dir = Path(stills_dir)
    by_track: dict[int, list[dict]] = {}
    for s in manifest["stills"]:
        by_track.setdefault(s["track_id"], []).append(s)
    rows = []
    for c in clusters["clusters"]:
        picks = [max(by_track[t], key=lambda s: s["quality"]) for t in c["track_ids"] if t in by_track]
        picks.sort(key=lambda s: -s["quality"])
        row = np.full((THUMB + 2 * PAD, LABEL_W + MAX_PER_ROW * (THUMB + PAD) + PAD, 3), 24, np.uint8)
        draw_text(row, f"#{c['cluster_id']}", (PAD, 28), 0.7)
        if c.get("name"):  # from reference photos (naming.py), shrunk to fit the label column
            scale = min(0.6, 0.6 * (LABEL_W - 2 * PAD) / cv2.getTextSize(c["name"], cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0])
            draw_text(row, c["name"], (PAD, 54), scale, (120, 230, 120))
        draw_text(row, f"{len(c['track_ids'])} tracks, {c['screen_time_s']:.1f} s", (PAD, 80))
        for k, s in enumerate(picks[:MAX_PER_ROW]):
            x = LABEL_W + k * (THUMB + PAD)
            row[PAD : PAD + THUMB, x : x + THUMB] = thumbnail(stills_dir / s["file"])
        rows.append(row)
    width = LABEL_W + MAX_PER_ROW * (THUMB + PAD) + PAD
    header = np.full((40, width, 3), 0, np.uint8)
    draw_text(header, f"{clusters['episode']}: {len(clusters['clusters'])} clusters ({clusters['embedder']})", (PAD, 26), 0.7)
    if not rows:
        empty = np.full((THUMB, width, 3), 24, np.uint8)
        draw_text(empty, "no faces found in this episode", (PAD, THUMB // 2), 0.7)
        rows.append(empty)
    atomic.write_image(out_path, np.vstack([header, *rows]), quality=90)

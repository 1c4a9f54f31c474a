"""Test episodes from labelled photos: every photo of `<folder>/<person>/<photo>` becomes a shot.

The photos are shuffled (fixed seed) so neighbouring shots show different people, letterboxed
onto a fixed canvas, and held for `shot_s` seconds. A labels file beside the video records which
person each shot shows; the labelled face of a shot is its largest.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2

from ..base import atomic
from ..base.errors import FacepipeError
from ..base.images import letterbox
from ..base.media import is_photo


def labelled_photos(folder: str | Path) -> list[tuple[str, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FacepipeError(f"{folder}: photo folder not found; give a folder of <person>/<photo> files")
    photos = [
        (person.name, photo)
        for person in sorted(p for p in folder.iterdir() if p.is_dir())
        for photo in sorted(person.iterdir())
        if is_photo(photo)
    ]
    if not photos:
        raise FacepipeError(f"{folder}: no photos found; expected <person>/<photo>.jpg")
    return photos


def write_slideshow(photos: list[tuple[str, Path]], out_video: str | Path, shot_s: float = 1.0, fps: float = 25.0,
                    size: tuple[int, int] = (640, 360)) -> dict:
    """Write `photos` ((person, photo) in order) as a video of one shot each; return its labels."""
    out_video = Path(out_video)
    per_shot = max(1, round(shot_s * fps))
    shots = []
    with atomic.atomic_path(out_video, suffix=out_video.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise FacepipeError(f"{out_video}: OpenCV cannot write this video format; use a .mp4 name")
        try:
            for k, (person, photo) in enumerate(photos):
                img = cv2.imread(str(photo))
                if img is None:
                    raise FacepipeError(f"{photo}: unreadable image; remove it from the folder")
                frame = letterbox(img, *size)
                for _ in range(per_shot):
                    writer.write(frame)
                shots.append({"t0": round(k * per_shot / fps, 4), "t1": round((k + 1) * per_shot / fps, 4),
                              "name": person, "photo": str(photo)})
        finally:
            writer.release()
    return {"video": out_video.name, "kind": "shots", "shots": shots}


def make_slideshow(
    folder: str | Path,
    out_video: str | Path,
    shot_s: float = 1.0,
    fps: float = 25.0,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> Path:
    """Write the slideshow video and `<video stem>.labels.json` beside it; return the labels path."""
    photos = labelled_photos(folder)
    random.Random(seed).shuffle(photos)
    out_video = Path(out_video)
    labels_path = out_video.with_name(out_video.stem + ".labels.json")
    atomic.write_json(labels_path, write_slideshow(photos, out_video, shot_s, fps, size))
    return labels_path


def make_season(folder: str | Path, videos: str | Path, show: str, episodes: int = 3, shot_s: float = 1.0,
                seed: int = 0) -> tuple[list[Path], dict]:
    """A season of slideshow episodes `{show}_S01_E01.mp4` ... in `videos`, from `<person>/<photo>`
    folders: casts overlap (every third person is in every episode, each other person in all but
    one) and each episode shows different photos of a person (their photos dealt in turn).
    Returns the videos and the season's labels ({"kind": "season", "episodes": {id: labels}})."""
    people: dict[str, list[Path]] = {}
    for person, photo in labelled_photos(folder):
        people.setdefault(person, []).append(photo)
    shows: list[list[tuple[str, Path]]] = [[] for _ in range(episodes)]
    for i, (person, photos) in enumerate(sorted(people.items())):
        present = [k for k in range(episodes) if i % 3 == 0 or k != i % 3 % episodes]
        for n, photo in enumerate(photos):
            shows[present[n % len(present)]].append((person, photo))
    videos = Path(videos)
    videos.mkdir(parents=True, exist_ok=True)
    made, labels = [], {}
    for k, show_photos in enumerate(shows):
        random.Random(seed + k).shuffle(show_photos)
        ep = f"{show}_S01_E{k + 1:02d}"
        made.append(videos / f"{ep}.mp4")
        labels[ep] = write_slideshow(show_photos, made[-1], shot_s)
    return made, {"kind": "season", "episodes": labels}

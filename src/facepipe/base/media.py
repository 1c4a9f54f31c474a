"""What facepipe takes for a video and for a photo, by file name."""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".mov", ".avi", ".gif", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
)
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith(".")

"""Finding episodes: every video file in the videos folder, its stem the episode id."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import FacepipeError
from .media import is_video

EPISODE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def check_episode_id(episode: str, source: Path | str | None = None) -> None:
    if not EPISODE_ID.match(episode):
        where = f"{source}: " if source else ""
        raise FacepipeError(
            f"{where}episode id {episode!r} may only use letters, digits, '_' and '-'; "
            "rename the file (e.g. spaces to '_') and run again"
        )


def discover(videos_dir: str | Path) -> dict[str, Path]:
    """Map episode id -> video path for every video file in `videos_dir` (not recursive).

    Refuses, before anything runs, ids outside [A-Za-z0-9_-] and two files with one stem.
    """
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise FacepipeError(
            f"{videos_dir}: videos folder not found; set videos_dir in config/config.yaml "
            "or pass --config videos_dir=/path/to/episodes"
        )
    found: dict[str, Path] = {}
    for path in sorted(videos_dir.iterdir()):
        if not is_video(path):
            continue
        episode = path.stem
        check_episode_id(episode, path)
        if not path.exists():
            raise FacepipeError(
                f"{path}: video file not found (a broken link?); restore it or remove it from videos_dir"
            )
        if episode in found:
            raise FacepipeError(
                f"{path}: episode id {episode!r} is also used by {found[episode].name}; "
                "give each episode a unique file name"
            )
        found[episode] = path
    return found

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
    found, problems = survey(videos_dir)
    if problems:
        raise FacepipeError(problems[0])
    return found


def survey(videos_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """discover() for a watcher: the episodes that are fine, and what is wrong with the other files
    (one line each) instead of an error at the first."""
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        return {}, [
            f"{videos_dir}: videos folder not found; set videos_dir in config/config.yaml "
            "or pass --config videos_dir=/path/to/episodes"
        ]
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(videos_dir.iterdir()):
        if not is_video(path):
            continue
        episode = path.stem
        try:
            check_episode_id(episode, path)
        except FacepipeError as err:
            problems.append(str(err))
            continue
        if not path.exists():
            problems.append(f"{path}: video file not found (a broken link?); restore it or remove it from videos_dir")
        elif episode in found:
            problems.append(f"{path}: episode id {episode!r} is also used by {found[episode].name}; "
                            "give each episode a unique file name")
        else:
            found[episode] = path
    return found, problems

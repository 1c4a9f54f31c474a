# Shared definitions: episodes found in videos_dir, output paths under data_root.
from pathlib import Path

from facepipe import layout
from facepipe.episodes import discover
from facepipe.errors import FacepipeError

DATA_ROOT = Path(config["data_root"])

try:
    EPISODES = discover(config["videos_dir"])
except FacepipeError as err:
    raise WorkflowError(str(err))


wildcard_constraints:
    ep="[A-Za-z0-9_-]+",


def out(pattern):
    """An output path under data_root, with {ep} left as the wildcard."""
    return str(DATA_ROOT / pattern)


def expand_episodes(*patterns):
    return [str(DATA_ROOT / p.format(ep=ep)) for ep in EPISODES for p in patterns]


def episode_video(wildcards):
    if wildcards.ep not in EPISODES:
        raise WorkflowError(
            f"no video for episode {wildcards.ep!r} in {config['videos_dir']}; "
            "put the file there or fix the requested path"
        )
    return str(EPISODES[wildcards.ep])

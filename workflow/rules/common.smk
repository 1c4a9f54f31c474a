# Shared definitions: episodes found in videos_dir, output paths under data_root.
import sys
from functools import lru_cache
from pathlib import Path

from facepipe import layout
from facepipe.chunks import chunk_count
from facepipe.episodes import discover
from facepipe.errors import FacepipeError
from facepipe.stale_lock import release_if_stale

DATA_ROOT = Path(config["data_root"])

# A run killed with SIGKILL leaves Snakemake's lock behind; release it if facepipe's registry
# shows that run is dead and no other run from this folder is alive.
_released = release_if_stale(Path.cwd(), DATA_ROOT, config["progress"]["heartbeat_s"])
if _released:
    print(_released, file=sys.stderr)

try:
    EPISODES = discover(config["videos_dir"])
except FacepipeError as err:
    raise WorkflowError(str(err))


wildcard_constraints:
    ep="[A-Za-z0-9_-]+",
    chunk="[0-9]+",


def out(pattern):
    """An output path under data_root, with {ep} left as the wildcard."""
    return str(DATA_ROOT / pattern)


def expand_episodes(*patterns):
    return [str(DATA_ROOT / p.format(ep=ep)) for ep in EPISODES for p in patterns]


def episode_video_path(ep):
    if ep not in EPISODES:
        raise WorkflowError(
            f"no video for episode {ep!r} in {config['videos_dir']}; "
            "put the file there or fix the requested path"
        )
    return str(EPISODES[ep])


def episode_video(wildcards):
    return episode_video_path(wildcards.ep)


@lru_cache(maxsize=None)
def episode_chunks(ep):
    """How many detect chunks the episode is split into (probes the video once per run)."""
    return chunk_count(episode_video_path(ep), config["detect"]["chunk_s"])


def chunk_outputs(ep, pattern):
    return [str(DATA_ROOT / pattern.format(ep=ep, chunk=k)) for k in range(episode_chunks(ep))]

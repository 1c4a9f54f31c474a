# Shared definitions: the episodes found in videos_dir and their seasons, output, log and benchmark
# paths under data_root, and the input functions the rules share.
import sys
from functools import lru_cache
from pathlib import Path

from facepipe.base import corrections, layout
from facepipe.base.episodes import discover
from facepipe.base.errors import FacepipeError
from facepipe.base.seasons import group as group_seasons
from facepipe.runtime.stale_lock import release_once
from facepipe.stages.detect import chunk_count

DATA_ROOT = Path(config["data_root"])

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


def log_of(rule, chunked=False):
    """The rule's log: the job's stderr and messages (harvest/{ep}/logs/{rule}[.{chunk}].log)."""
    return out(layout.job_pattern(layout.LOG, rule, chunked))


def benchmark_of(rule, chunked=False):
    """Snakemake's time and memory table of the rule's job (harvest/{ep}/benchmarks/...tsv)."""
    return out(layout.job_pattern(layout.BENCHMARK, rule, chunked))


def expand_episodes(step):
    """Every episode's outputs up to `step` (layout.STEP_OUTPUTS)."""
    return [path for ep in EPISODES for path in layout.step_targets(DATA_ROOT, ep, step)]


def episode_video_path(ep):
    if ep not in EPISODES:
        raise WorkflowError(
            f"no video for episode {ep!r} in {config['videos_dir']}; "
            "put the file there or fix the requested path"
        )
    return str(EPISODES[ep])


def episode_video(wildcards):
    # Evaluated while Snakemake builds its DAG, before it takes its lock: the one point where the
    # head of a real run can release a lock that a killed run left (never a job or a dry run).
    note = release_once(workflow, DATA_ROOT, config["progress"]["heartbeat_s"])
    if note:
        print(note, file=sys.stderr)
    return episode_video_path(wildcards.ep)


@lru_cache(maxsize=None)
def episode_chunks(ep):
    """How many detect chunks the episode is split into (probes the video once per run)."""
    return chunk_count(episode_video_path(ep), config["detect"]["chunk_s"])


def chunk_outputs(ep, pattern):
    return [str(DATA_ROOT / pattern.format(ep=ep, chunk=k)) for k in range(episode_chunks(ep))]


# --- seasons -------------------------------------------------------------------------------------
try:
    SEASONS = group_seasons(EPISODES, config["season"])
except FacepipeError as err:
    raise WorkflowError(str(err))


wildcard_constraints:
    season="[A-Za-z0-9_-]+",


def season_out(pattern, **names):
    return str(DATA_ROOT / pattern.format(season="{season}", **names))


def season_episodes(season):
    if season not in SEASONS:
        raise WorkflowError(f"no season {season!r}: the seasons here are {', '.join(SEASONS) or 'none'} "
                            "(season.pattern, season.episodes)")
    return SEASONS[season]


def season_inputs(wildcards):
    """Each episode's clusters, embeddings, tracks and stills: a new or rebuilt episode reruns the season."""
    eps = season_episodes(wildcards.season)
    return {name: [str(DATA_ROOT / pattern.format(ep=ep)) for ep in eps]
            for name, pattern in (("clusters", layout.CLUSTERS), ("embeddings", layout.EMBEDDINGS),
                                  ("tracks", layout.TRACKS), ("stills", layout.STILLS_DIR))}


# --- reference photos (cluster, season) -----------------------------------------------------------
def reference_photo_files(wildcards):
    """The photos of cluster.references (none when null): adding, removing or changing one reruns
    cluster only."""
    folder = config["cluster"].get("references")
    if not folder:
        return []
    from facepipe.stages.cluster import reference_photos

    try:
        return [str(photo) for _name, photo in reference_photos(folder)]
    except FacepipeError as err:
        raise WorkflowError(str(err))


# --- the user's corrections (cluster, season) --------------------------------------------------
@lru_cache(maxsize=None)
def checked_corrections(path, season):
    """[path] when the corrections file exists, checked line by line before any job runs (a bad
    hand edit is refused naming the file, the line and the fix); [] when there is none."""
    if not Path(path).exists():
        return []
    try:
        corrections.parse(path, season)
    except FacepipeError as err:
        raise WorkflowError(str(err))
    return [path]


def episode_corrections(wildcards):
    """The episode's corrections: a new record reruns cluster (and season), nothing upstream."""
    return checked_corrections(str(DATA_ROOT / layout.EPISODE_CORRECTIONS.format(ep=wildcards.ep)), False)


def season_corrections(wildcards):
    """The season's corrections and its episodes'."""
    own = checked_corrections(str(DATA_ROOT / layout.SEASON_CORRECTIONS.format(season=wildcards.season)), True)
    episodes = [p for ep in season_episodes(wildcards.season)
                for p in checked_corrections(str(DATA_ROOT / layout.EPISODE_CORRECTIONS.format(ep=ep)), False)]
    return own + episodes


def corrections_digest(files):
    """The corrections' content as a param: a record added while the job ran (after it read the
    file, before its output's time) still reruns it next time."""
    return ",".join(corrections.digest(f) for f in files)

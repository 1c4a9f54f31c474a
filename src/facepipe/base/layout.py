"""Where every file of facepipe lives under the data root: one source for the rules, the stages,
the runtime and the tools.

    harvest/{ep}/...                 an episode's outputs, logs, benchmarks and diagnostics
    episodes/{key}/runtime.json      the episode's runtime registry ({key}: episode_key(ep))
    seasons/{season}/...             a season's cast, screen times, logs, diagnostics and registry
    corrections/episodes/{ep}.jsonl  the user's corrections of an episode (base.corrections)
    corrections/seasons/{season}.jsonl   and of a season: inputs, never written by a build

Episodes and seasons are both "units" of progress: each has a pipeline_state.json, a
progress.jsonl and a runtime.json (base.unit.Unit.paths).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HARVEST = "harvest"
REGISTRIES = "episodes"
# Patterns relative to data_root, with {ep} the episode id.
DETECT_CHUNK = "harvest/{ep}/detect_chunks/chunk{chunk}.jsonl"
DETECT_CHUNK_INFO = "harvest/{ep}/detect_chunks/chunk{chunk}.json"
# The faces a chunk found, cut for stills (base.facecrops).
DETECT_CHUNK_CROPS = "harvest/{ep}/detect_chunks/chunk{chunk}.crops.zip"
DETECTIONS = "harvest/{ep}/detections.jsonl"
VIDEO_INFO = "harvest/{ep}/video.json"
TRACKS = "harvest/{ep}/tracks.json"
STILLS_DIR = "harvest/{ep}/stills"
STILLS_MANIFEST = "harvest/{ep}/stills/manifest.json"  # lists every still of the folder
EMBEDDINGS = "harvest/{ep}/embeddings.npz"
CLUSTERS = "harvest/{ep}/clusters.json"
CONTACT_SHEET = "harvest/{ep}/clusters.jpg"
APPEARANCES = "harvest/{ep}/appearances.csv"  # who is on screen when: one row per track
TIMELINE = "harvest/{ep}/timeline.png"
APPEARANCES_VTT = "harvest/{ep}/appearances.vtt"
DIAGNOSTICS_DIR = "harvest/{ep}/diagnostics"
PIPELINE_STATE = "harvest/{ep}/diagnostics/pipeline_state.json"
PROGRESS_LOG = "harvest/{ep}/diagnostics/progress.jsonl"
# A job's stderr and messages, and Snakemake's time and memory table of it; {job} is job_name().
LOG = "harvest/{ep}/logs/{job}.log"
BENCHMARK = "harvest/{ep}/benchmarks/{job}.tsv"
RUNTIME = "episodes/{key}/runtime.json"
# A season's files, with {season} its key (base.seasons).
SEASONS = "seasons"
CAST = "seasons/{season}/cast.json"
SCREEN_TIME_CSV = "seasons/{season}/screen_time.csv"
SCREEN_TIME_CHART = "seasons/{season}/screen_time.png"
CAST_SHEET = "seasons/{season}/cast.jpg"
SEASON_STATE = "seasons/{season}/diagnostics/pipeline_state.json"
SEASON_PROGRESS_LOG = "seasons/{season}/diagnostics/progress.jsonl"
SEASON_RUNTIME = "seasons/{season}/runtime.json"
SEASON_LOG = "seasons/{season}/logs/{job}.log"
SEASON_BENCHMARK = "seasons/{season}/benchmarks/{job}.tsv"
# The user's corrections (base.corrections): inputs of the cluster and season rules. The only
# files under data_root that a build reads but never writes.
CORRECTIONS = "corrections"
EPISODE_CORRECTIONS = "corrections/episodes/{ep}.jsonl"
SEASON_CORRECTIONS = "corrections/seasons/{season}.jsonl"
# The snakemake run the web app starts for an episode: its stdout and stderr (the latest launch).
LAUNCH_LOG = "harvest/{ep}/logs/snakemake.log"

# Every output up to each step, by step name (runtime.steps): the step's Snakemake target asks for
# all of them, so that a deleted intermediate output (say stills/) is rebuilt along with everything
# downstream of it, as make would. Read by the workflow's targets and by the web app's buttons.
STEP_OUTPUTS = {"detect": (DETECTIONS, VIDEO_INFO)}
STEP_OUTPUTS["track"] = STEP_OUTPUTS["detect"] + (TRACKS,)
STEP_OUTPUTS["stills"] = STEP_OUTPUTS["track"] + (STILLS_DIR,)
STEP_OUTPUTS["cluster"] = STEP_OUTPUTS["stills"] + (EMBEDDINGS, CLUSTERS, CONTACT_SHEET, APPEARANCES, TIMELINE,
                                                   APPEARANCES_VTT)
# A season's outputs (its target also asks for every episode's STEP_OUTPUTS["cluster"]).
SEASON_OUTPUTS = (CAST, SCREEN_TIME_CSV, SCREEN_TIME_CHART, CAST_SHEET)

_DATE_SUFFIX = re.compile(r"_\d{8}$")


def episode_key(episode: str) -> str:
    """Registry key of an episode: lower case, a trailing _MMDDYYYY date dropped.

    RHOBH_S05_E03_11062025 -> rhobh_s05_e03
    """
    return _DATE_SUFFIX.sub("", episode).lower()


def job_name(rule: str, chunk: str | int | None = None) -> str:
    """A job's name in logs, benchmarks and the registry: the rule, and `.{chunk}` for a detect
    chunk (`detect_chunk.3`), so chunks of one episode never share a file or an entry."""
    return rule if chunk is None else f"{rule}.{chunk}"


def job_pattern(pattern: str, rule: str, chunked: bool = False) -> str:
    """LOG or BENCHMARK for a rule, with {ep} (and {chunk}) left as wildcards."""
    return pattern.replace("{job}", job_name(rule, "{chunk}" if chunked else None))


def step_targets(data_root: str | Path, episode: str, step: str) -> list[str]:
    """The files Snakemake builds for `step` of `episode`, spelt as the rules spell their outputs
    (`data_root` as configured, relative or not), so they can be given to snakemake as targets."""
    return [str(Path(data_root) / pattern.format(ep=episode)) for pattern in STEP_OUTPUTS[step]]


def known_episodes(data_root: str | Path) -> list[str]:
    """Episodes that have a pipeline state under the data root, sorted."""
    harvest = Path(data_root) / HARVEST
    if not harvest.is_dir():
        return []
    return sorted(p.name for p in harvest.iterdir()
                  if EpisodePaths(Path(data_root), p.name).pipeline_state.exists())


def known_seasons(data_root: str | Path) -> list[str]:
    """Seasons that have a pipeline state under the data root, sorted."""
    folder = Path(data_root) / SEASONS
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if SeasonPaths(Path(data_root), p.name).pipeline_state.exists())


def registry_files(data_root: str | Path) -> list[Path]:
    """Every episode's and season's runtime.json under the data root."""
    root = Path(data_root)
    episodes = sorted((root / REGISTRIES).glob(RUNTIME.split("/", 1)[1].format(key="*")))
    seasons = sorted((root / SEASONS).glob(SEASON_RUNTIME.split("/", 1)[1].format(season="*")))
    return episodes + seasons


@dataclass(frozen=True)
class EpisodePaths:
    data_root: Path
    episode: str
    kind = "episode"

    @property
    def name(self) -> str:
        return self.episode

    def _p(self, pattern: str, **extra) -> Path:
        return Path(self.data_root) / pattern.format(ep=self.episode, key=episode_key(self.episode), **extra)

    @property
    def harvest(self) -> Path:
        return self._p("harvest/{ep}")

    def detect_chunk(self, chunk: int) -> Path:
        return self._p(DETECT_CHUNK, chunk=chunk)

    def detect_chunk_info(self, chunk: int) -> Path:
        return self._p(DETECT_CHUNK_INFO, chunk=chunk)

    @property
    def detect_chunks_dir(self) -> Path:
        return self.detect_chunk(0).parent

    @property
    def detections(self) -> Path:
        return self._p(DETECTIONS)

    @property
    def video_info(self) -> Path:
        return self._p(VIDEO_INFO)

    @property
    def tracks(self) -> Path:
        return self._p(TRACKS)

    @property
    def stills_dir(self) -> Path:
        return self._p(STILLS_DIR)

    @property
    def embeddings(self) -> Path:
        return self._p(EMBEDDINGS)

    @property
    def clusters(self) -> Path:
        return self._p(CLUSTERS)

    @property
    def contact_sheet(self) -> Path:
        return self._p(CONTACT_SHEET)

    @property
    def appearances(self) -> Path:
        return self._p(APPEARANCES)

    @property
    def timeline(self) -> Path:
        return self._p(TIMELINE)

    @property
    def appearances_vtt(self) -> Path:
        return self._p(APPEARANCES_VTT)

    @property
    def pipeline_state(self) -> Path:
        return self._p(PIPELINE_STATE)

    @property
    def progress_log(self) -> Path:
        return self._p(PROGRESS_LOG)

    @property
    def runtime(self) -> Path:
        return self._p(RUNTIME)

    @property
    def launch_log(self) -> Path:
        return self._p(LAUNCH_LOG)

    @property
    def stills_manifest(self) -> Path:
        return self._p(STILLS_MANIFEST)

    @property
    def corrections(self) -> Path:
        return self._p(EPISODE_CORRECTIONS)

    def log(self, rule: str, chunk: str | int | None = None) -> Path:
        return self._p(LOG, job=job_name(rule, chunk))

    def benchmark(self, rule: str, chunk: str | int | None = None) -> Path:
        return self._p(BENCHMARK, job=job_name(rule, chunk))

    @property
    def logs_dir(self) -> Path:
        return self.log("x").parent

    @property
    def benchmarks_dir(self) -> Path:
        return self.benchmark("x").parent


@dataclass(frozen=True)
class SeasonPaths:
    data_root: Path
    season: str
    kind = "season"

    @property
    def name(self) -> str:
        return self.season

    def _p(self, pattern: str, **extra) -> Path:
        return Path(self.data_root) / pattern.format(season=self.season, **extra)

    @property
    def folder(self) -> Path:
        return self._p("seasons/{season}")

    @property
    def cast(self) -> Path:
        return self._p(CAST)

    @property
    def screen_time_csv(self) -> Path:
        return self._p(SCREEN_TIME_CSV)

    @property
    def screen_time_chart(self) -> Path:
        return self._p(SCREEN_TIME_CHART)

    @property
    def cast_sheet(self) -> Path:
        return self._p(CAST_SHEET)

    @property
    def corrections(self) -> Path:
        return self._p(SEASON_CORRECTIONS)

    @property
    def pipeline_state(self) -> Path:
        return self._p(SEASON_STATE)

    @property
    def progress_log(self) -> Path:
        return self._p(SEASON_PROGRESS_LOG)

    @property
    def runtime(self) -> Path:
        return self._p(SEASON_RUNTIME)

    def log(self, rule: str = "season", chunk=None) -> Path:
        return self._p(SEASON_LOG, job=job_name(rule, chunk))

    def benchmark(self, rule: str = "season", chunk=None) -> Path:
        return self._p(SEASON_BENCHMARK, job=job_name(rule, chunk))


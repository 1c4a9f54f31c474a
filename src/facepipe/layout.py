"""Where every output of an episode lives under the data root.

The Snakemake rules and the library take their paths from here, so the two never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Patterns relative to data_root, with {ep} the episode id.
DETECT_CHUNK = "harvest/{ep}/detect_chunks/chunk{chunk}.jsonl"
DETECT_CHUNK_INFO = "harvest/{ep}/detect_chunks/chunk{chunk}.json"
DETECTIONS = "harvest/{ep}/detections.jsonl"
VIDEO_INFO = "harvest/{ep}/video.json"
TRACKS = "harvest/{ep}/tracks.json"
STILLS_DIR = "harvest/{ep}/stills"
EMBEDDINGS = "harvest/{ep}/embeddings.npz"
CLUSTERS = "harvest/{ep}/clusters.json"
CONTACT_SHEET = "harvest/{ep}/clusters.jpg"
DIAGNOSTICS_DIR = "harvest/{ep}/diagnostics"
PIPELINE_STATE = "harvest/{ep}/diagnostics/pipeline_state.json"
PROGRESS_LOG = "harvest/{ep}/diagnostics/progress.jsonl"
RUNTIME = "episodes/{key}/runtime.json"

_DATE_SUFFIX = re.compile(r"_\d{8}$")


def episode_key(episode: str) -> str:
    """Registry key of an episode: lower case, a trailing _MMDDYYYY date dropped.

    RHOBH_S05_E03_11062025 -> rhobh_s05_e03
    """
    return _DATE_SUFFIX.sub("", episode).lower()


@dataclass(frozen=True)
class EpisodePaths:
    data_root: Path
    episode: str

    def _p(self, pattern: str) -> Path:
        return self.data_root / pattern.format(ep=self.episode, key=episode_key(self.episode))

    @property
    def harvest(self) -> Path:
        return self.data_root / "harvest" / self.episode

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
    def pipeline_state(self) -> Path:
        return self._p(PIPELINE_STATE)

    @property
    def progress_log(self) -> Path:
        return self._p(PROGRESS_LOG)

    @property
    def runtime(self) -> Path:
        return self._p(RUNTIME)

"""Detection in chunks: an episode's frames split into runs of `detect.chunk_s` seconds.

Each chunk is its own job (on a cluster, its own node); a gather job joins their lines into
detections.jsonl, identical to a single pass: whether a frame is sampled depends only on its
presentation time and its predecessor's (video.sampled_at), and each chunk also reads the
sampled frame just before it, so the first cut score of a chunk compares
against the same frame a single pass would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.video import probe


def chunk_count(video: str | Path, chunk_s: float) -> int:
    """How many chunks an episode's detection is split into (1 if the video cannot be probed:
    the chunk job then reports what is wrong with it)."""
    try:
        info = probe(video)
    except FacepipeError:
        return 1
    if info.frame_count <= 0:
        return 1
    return max(1, math.ceil(info.frame_count / (chunk_s * info.fps)))


def chunk_range(chunk: int, chunks: int, fps: float, chunk_s: float) -> tuple[int, int | None]:
    """Frames [start, stop) of a chunk; the last chunk runs to the end of the video."""
    frames_per_chunk = max(1, round(chunk_s * fps))
    start = chunk * frames_per_chunk
    stop = None if chunk == chunks - 1 else (chunk + 1) * frames_per_chunk
    return start, stop


def gather(chunk_files: list[str | Path], chunk_facts: list[str | Path], out_jsonl: str | Path,
           out_info: str | Path) -> dict:
    """Concatenate the chunks' lines in order and combine their video facts."""
    facts = [json.loads(Path(f).read_text()) for f in chunk_facts]
    with atomic.atomic_path(out_jsonl) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for path in chunk_files:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    out.write(line)
    combined = {**facts[0], "frame_count": max(f["frame_count"] for f in facts),
                "sampled_frames": sum(f["sampled_frames"] for f in facts)}
    combined.pop("chunk", None)
    combined.pop("start", None)
    combined.pop("stop", None)
    atomic.write_json(out_info, combined)
    return combined

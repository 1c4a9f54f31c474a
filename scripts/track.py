# Snakemake entry point of rule `track`.
import json

from facepipe.runtime.job import stage_job
from facepipe.stages.detect import read_detections
from facepipe.stages.track import build_tracks, write_tracks

with stage_job(snakemake, "track") as job:
    frames = read_detections(snakemake.input.detections)
    with open(snakemake.input.info, encoding="utf-8") as fh:
        info = json.load(fh)
    job.progress(0, 1, "Linking detections into tracks")
    tracks = build_tracks(job.unit.name, frames, info, snakemake.params.track)
    write_tracks(snakemake.output.tracks, tracks)
    job.progress(1, 1, f"{len(tracks['tracks'])} tracks")

# Snakemake entry point of rule `appearances` (the end of the user-facing Cluster step).
import json

from facepipe.base.video import stream_start_s
from facepipe.runtime.job import stage_job
from facepipe.stages.appearances import appearances, summary, write_csv, write_timeline, write_vtt

with stage_job(snakemake, "appearances") as job:
    loaded = {}
    for name in ("clusters", "tracks", "video"):
        with open(snakemake.input[name], encoding="utf-8") as fh:
            loaded[name] = json.load(fh)
    clusters, tracks = loaded["clusters"], loaded["tracks"]
    job.progress(0, 1, "Writing who is on screen when")
    rows = appearances(clusters, tracks)
    write_csv(rows, snakemake.output.csv)
    write_timeline(clusters, rows, loaded["video"], snakemake.output.timeline)
    # the captions on the file's clock, as any player counts time
    write_vtt(clusters, rows, tracks.get("sample_fps"), snakemake.output.vtt, stream_start_s(snakemake.input.episode))
    job.progress(1, 1, summary(clusters, rows))

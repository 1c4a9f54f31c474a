# Snakemake entry point of rule `stills`.
import json

from facepipe.runtime.job import stage_job
from facepipe.stages.stills import select_stills

with stage_job(snakemake, "stills") as job:
    with open(snakemake.input.tracks, encoding="utf-8") as fh:
        tracks = json.load(fh)
    select_stills(tracks, list(snakemake.input.crops), snakemake.output.stills, snakemake.params.stills,
                  progress=job.progress)

# Snakemake entry point of rule `detect`: joins the episode's detect chunks.
from facepipe.runtime.job import stage_job
from facepipe.stages.detect import gather

with stage_job(snakemake, "detect") as job:
    job.progress(0, 1, f"Joining {len(snakemake.input.chunks)} detection chunk(s)")
    gather(snakemake.input.chunks, snakemake.input.infos, snakemake.output.detections, snakemake.output.info)
    job.progress(1, 1, "Detections joined")

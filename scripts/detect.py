# Snakemake entry point of rule `detect`: joins the episode's detect chunks.
from facepipe.chunks import gather
from facepipe.job import stage_job

with stage_job(snakemake, "detect") as job:
    job.progress(0, 1, f"Joining {len(snakemake.input.chunks)} detection chunk(s)")
    gather(snakemake.input.chunks, snakemake.input.infos, snakemake.output.detections, snakemake.output.info)
    job.progress(1, 1, "Detections joined")

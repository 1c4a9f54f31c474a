# Snakemake entry point of rule `embed` (first half of the user-facing Cluster step).
from facepipe.runtime.job import stage_job
from facepipe.stages.embed import embed_stills, uses_torch

cfg = snakemake.params.embed
with stage_job(snakemake, "embed", uses_torch=uses_torch(cfg)) as job:
    embed_stills(snakemake.input.stills, snakemake.output.embeddings, cfg, progress=job.progress,
                 workers=snakemake.threads)

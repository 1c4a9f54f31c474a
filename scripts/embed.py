# Snakemake entry point of rule `embed` (first half of the user-facing Cluster step).
from facepipe.embed import embed_stills
from facepipe.job import stage_job

with stage_job(snakemake, "embed", uses_torch=True) as job:
    embed_stills(snakemake.input.stills, snakemake.output.embeddings, snakemake.params.embed,
                 progress=job.progress)

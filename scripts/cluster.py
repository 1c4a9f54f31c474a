# Snakemake entry point of rule `cluster` (second half of the user-facing Cluster step).
import json

from facepipe import contact_sheet
from facepipe.cluster import cluster_tracks, load_embeddings, write_clusters
from facepipe.job import stage_job
from facepipe.stills import read_manifest

with stage_job(snakemake, "cluster") as job:
    with open(snakemake.input.tracks, encoding="utf-8") as fh:
        tracks = json.load(fh)
    job.progress(0, 1, "Clustering tracks")
    result = cluster_tracks(tracks, load_embeddings(snakemake.input.embeddings), snakemake.params.cluster)
    write_clusters(snakemake.output.clusters, result)
    contact_sheet.render(result, read_manifest(snakemake.input.stills), snakemake.input.stills,
                         snakemake.output.sheet)
    job.progress(1, 1, f"{len(result['clusters'])} clusters")

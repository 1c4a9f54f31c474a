# Snakemake entry point of rule `cluster` (second half of the user-facing Cluster step).
import json

from facepipe.runtime.job import stage_job
from facepipe.stages import cluster
from facepipe.stages.stills import read_manifest

cfg = snakemake.params.cluster
with stage_job(snakemake, "cluster", uses_torch=bool(cfg.get("references"))) as job:
    with open(snakemake.input.tracks, encoding="utf-8") as fh:
        tracks = json.load(fh)
    job.progress(0, 1, "Clustering tracks")
    embeddings = cluster.load_embeddings(snakemake.input.embeddings)
    result = cluster.cluster_tracks(tracks, embeddings, cfg)
    # the user's corrections, if any (corrections/episodes/{ep}.jsonl)
    result = cluster.apply_corrections_file(result, tracks, (snakemake.input.corrections or [None])[0])
    if cfg.get("references"):
        job.progress(0, 1, "Naming clusters from reference photos")
        report = {}
        refs = cluster.load_references(cfg["references"], {**snakemake.params.embed, "embedder": result["embedder"]},
                                       snakemake.params.margin, report=report)
        cluster.name_clusters(result, embeddings, refs, cfg.get("name_threshold"), report)
    cluster.write_clusters(snakemake.output.clusters, result)
    shown = [c for c in result["clusters"] if not c["hidden"]]
    cluster.render_contact_sheet({**result, "clusters": shown}, read_manifest(snakemake.input.stills),
                                 snakemake.input.stills, snakemake.output.sheet)
    job.progress(1, 1, cluster.corrections_summary(result))

# Snakemake entry point of rule `season`: the season's episodes' clusters linked into a cast.
from facepipe.base import atomic
from facepipe.runtime.job import stage_job
from facepipe.stages.cluster import load_references
from facepipe.stages.season import build_cast, cast_summary, load_episode, write_cast_sheet, write_chart, write_csv

cfg, cluster = snakemake.params.season, snakemake.params.cluster
data_root, episodes = snakemake.config["data_root"], snakemake.params.episodes
with stage_job(snakemake, "season", uses_torch=bool(cluster.get("references"))) as job:
    loaded = []
    for k, ep in enumerate(episodes):
        job.progress(k, len(episodes) + 2, f"Reading the clusters of {ep}")
        loaded.append(load_episode(data_root, ep))
    references, report = None, {}
    if cluster.get("references"):
        job.progress(len(episodes), len(episodes) + 2, "Embedding the reference photos")
        embed = snakemake.params.embed
        embed = {**embed, "embedder": loaded[0].clusters["embedder"]} if loaded else embed
        references = load_references(cluster["references"], embed, snakemake.params.margin, report=report)
    job.progress(len(episodes) + 1, len(episodes) + 2, f"Linking clusters across {len(episodes)} episodes")
    cast = build_cast(job.unit.name, loaded, cfg.get("threshold"), references, cluster.get("name_threshold"), report,
                      job.unit.paths(data_root).corrections)  # the user's corrections, if any
    atomic.write_json(snakemake.output.cast, cast)
    write_csv(cast, snakemake.output.csv)
    write_chart(cast, snakemake.output.chart)
    write_cast_sheet(cast, data_root, snakemake.output.sheet)
    job.progress(len(episodes) + 2, len(episodes) + 2, cast_summary(cast))

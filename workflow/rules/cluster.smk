# Embed + cluster together are the user-facing "Cluster" step.
rule embed:
    input:
        stills=out(layout.STILLS_DIR),
    output:
        embeddings=out(layout.EMBEDDINGS),
    log:
        log_of("embed"),
    benchmark:
        benchmark_of("embed")
    params:
        embed=config["embed"],
    threads: 2
    script:
        "../../scripts/embed.py"


rule cluster:
    input:
        tracks=out(layout.TRACKS),
        embeddings=out(layout.EMBEDDINGS),
        stills=out(layout.STILLS_DIR),
        references=reference_photo_files,
        corrections=episode_corrections,
    output:
        clusters=out(layout.CLUSTERS),
        sheet=report(out(layout.CONTACT_SHEET), caption="../report/contact_sheet.rst", category="Episodes",
                     subcategory="{ep}"),
    log:
        log_of("cluster"),
    benchmark:
        benchmark_of("cluster")
    params:
        cluster=config["cluster"],
        # the embedder settings, and the crop margin, for the reference photos
        embed=config["embed"],
        margin=config["stills"]["margin"],
        corrections=lambda wildcards: corrections_digest(episode_corrections(wildcards)),
    script:
        "../../scripts/cluster.py"

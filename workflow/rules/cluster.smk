# Embed + cluster together are the user-facing "Cluster" step.
rule embed:
    input:
        stills=out(layout.STILLS_DIR),
    output:
        embeddings=out(layout.EMBEDDINGS),
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
    output:
        clusters=out(layout.CLUSTERS),
        sheet=out(layout.CONTACT_SHEET),
    params:
        cluster=config["cluster"],
    script:
        "../../scripts/cluster.py"

rule stills:
    input:
        tracks=out(layout.TRACKS),
        crops=lambda wildcards: chunk_outputs(wildcards.ep, layout.DETECT_CHUNK_CROPS),
    output:
        stills=directory(out(layout.STILLS_DIR)),
    log:
        log_of("stills"),
    benchmark:
        benchmark_of("stills")
    params:
        stills=config["stills"],
    threads: 1
    script:
        "../../scripts/stills.py"

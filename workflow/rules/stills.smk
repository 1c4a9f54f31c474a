rule stills:
    input:
        video=episode_video,
        tracks=out(layout.TRACKS),
    output:
        stills=directory(out(layout.STILLS_DIR)),
    log:
        log_of("stills"),
    benchmark:
        benchmark_of("stills")
    params:
        stills=config["stills"],
    threads: 2
    script:
        "../../scripts/stills.py"

# Who is on screen when (the end of the user-facing Cluster step): one row per track, a timeline
# chart and a WebVTT file. They follow clusters.json, so a rebuilt cluster or a new correction
# redraws them.
rule appearances:
    input:
        clusters=out(layout.CLUSTERS),
        tracks=out(layout.TRACKS),
        video=out(layout.VIDEO_INFO),
        episode=episode_video,  # where its video stream starts: the captions are on the file's clock
    output:
        csv=out(layout.APPEARANCES),
        timeline=report(out(layout.TIMELINE), caption="../report/timeline.rst", category="Episodes",
                        subcategory="{ep}"),
        vtt=out(layout.APPEARANCES_VTT),
    log:
        log_of("appearances"),
    benchmark:
        benchmark_of("appearances")
    script:
        "../../scripts/appearances.py"

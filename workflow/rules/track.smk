rule track:
    input:
        detections=out(layout.DETECTIONS),
        info=out(layout.VIDEO_INFO),
    output:
        tracks=out(layout.TRACKS),
    log:
        log_of("track"),
    benchmark:
        benchmark_of("track")
    params:
        track=config["track"],
    script:
        "../../scripts/track.py"

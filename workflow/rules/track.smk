rule track:
    input:
        detections=out(layout.DETECTIONS),
        info=out(layout.VIDEO_INFO),
    output:
        tracks=out(layout.TRACKS),
    params:
        track=config["track"],
    script:
        "../../scripts/track.py"

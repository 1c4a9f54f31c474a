rule detect:
    input:
        video=episode_video,
    output:
        detections=out(layout.DETECTIONS),
        info=out(layout.VIDEO_INFO),
    params:
        detect=config["detect"],
    threads: 2
    script:
        "../../scripts/detect.py"

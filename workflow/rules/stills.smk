rule stills:
    input:
        video=episode_video,
        tracks=out(layout.TRACKS),
    output:
        stills=directory(out(layout.STILLS_DIR)),
    params:
        stills=config["stills"],
    script:
        "../../scripts/stills.py"

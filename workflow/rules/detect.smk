# Detect runs in chunks of detect.chunk_s seconds (separate jobs, on a cluster separate nodes),
# gathered into one detections.jsonl identical to a single pass. Each chunk also keeps its faces
# cut for stills, which reads them instead of decoding the video again.
rule detect_chunk:
    input:
        video=episode_video,
    output:
        detections=out(layout.DETECT_CHUNK),
        info=out(layout.DETECT_CHUNK_INFO),
        crops=out(layout.DETECT_CHUNK_CROPS),
    log:
        log_of("detect_chunk", chunked=True),
    benchmark:
        benchmark_of("detect_chunk", chunked=True)
    params:
        detect=config["detect"],
        crop_margin=config["stills"]["margin"],
        chunks=lambda wildcards: episode_chunks(wildcards.ep),
    threads: 2
    script:
        "../../scripts/detect_chunk.py"


rule detect:
    input:
        chunks=lambda wildcards: chunk_outputs(wildcards.ep, layout.DETECT_CHUNK),
        infos=lambda wildcards: chunk_outputs(wildcards.ep, layout.DETECT_CHUNK_INFO),
    output:
        detections=out(layout.DETECTIONS),
        info=out(layout.VIDEO_INFO),
    log:
        log_of("detect"),
    benchmark:
        benchmark_of("detect")
    localrule: True
    script:
        "../../scripts/detect.py"

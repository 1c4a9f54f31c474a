# Snakemake entry point of rule `detect_chunk`: one chunk of an episode's detection.
from facepipe.base.video import expected_samples, probe
from facepipe.runtime.job import stage_job
from facepipe.stages.detect import chunk_range, detect_frames, write_video_info

# No uses_torch here: detection runs in `threads` worker processes of one torch thread each.
with stage_job(snakemake, "detect_chunk") as job:
    cfg = snakemake.params.detect
    chunk, chunks = int(snakemake.wildcards.chunk), snakemake.params.chunks
    info = probe(snakemake.input.video)
    ranges = [chunk_range(k, chunks, info.fps, cfg["chunk_s"]) for k in range(chunks)]
    job.set_chunk_totals([expected_samples(info.frame_count, info.fps, cfg["fps"], a, b) for a, b in ranges])
    start, stop = ranges[chunk]
    facts = detect_frames(snakemake.input.video, snakemake.output.detections, cfg, progress=job.progress,
                          start=start, stop=stop, workers=snakemake.threads,
                          crops_out=snakemake.output.crops, crop_margin=snakemake.params.crop_margin)
    write_video_info(snakemake.output.info, {**facts, "chunk": chunk})

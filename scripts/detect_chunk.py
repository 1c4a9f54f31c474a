# Snakemake entry point of rule `detect_chunk`: one chunk of an episode's detection.
from facepipe.chunks import chunk_range
from facepipe.detect import detect_frames, write_video_info
from facepipe.job import stage_job
from facepipe.video import probe

# No uses_torch here: detection runs in `threads` worker processes of one torch thread each.
with stage_job(snakemake, "detect_chunk") as job:
    cfg = snakemake.params.detect
    chunk, chunks = int(snakemake.wildcards.chunk), snakemake.params.chunks
    info = probe(snakemake.input.video)
    start, stop = chunk_range(chunk, chunks, info.fps, cfg["chunk_s"])
    job.set_chunks(chunk, [chunk_range(k, chunks, info.fps, cfg["chunk_s"]) for k in range(chunks)], info)
    facts = detect_frames(snakemake.input.video, snakemake.output.detections, cfg, progress=job.progress,
                          start=start, stop=stop, workers=snakemake.threads)
    write_video_info(snakemake.output.info, {**facts, "chunk": chunk})

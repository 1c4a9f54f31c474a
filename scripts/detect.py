# Snakemake entry point of rule `detect`.
from facepipe.detect import detect_frames, write_video_info
from facepipe.job import stage_job

with stage_job(snakemake, "detect", uses_torch=True) as job:
    facts = detect_frames(snakemake.input.video, snakemake.output.detections, snakemake.params.detect,
                          progress=job.progress)
    write_video_info(snakemake.output.info, facts)

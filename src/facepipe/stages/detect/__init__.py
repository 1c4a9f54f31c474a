"""Detect: faces on frames sampled at detect.fps, in chunks of detect.chunk_s seconds gathered into
one detections.jsonl, with each sampled frame's shot-cut score.

Public API (what the entry scripts and other stages use):
- detect_frames, write_video_info, read_detections: run and read the stage (frames.py);
- chunk_count, chunk_range, gather: chunks of an episode (chunks.py);
- make_detector, FacenetDetector, photo_detector: a detector for whole frames (detector.py), e.g.
  for reference photos.
Inner modules: detector.py (MTCNN backends, the frame shrink), mtcnn_cascade.py (facepipe's own
MTCNN steps), mtcnn_worker.py (the TensorFlow backend's process), shots.py (cut scores).
"""

from .chunks import chunk_count, chunk_range, gather
from .detector import FacenetDetector, make_detector, photo_detector
from .frames import detect_frames, read_detections, write_video_info

__all__ = ["chunk_count", "chunk_range", "gather", "FacenetDetector", "make_detector", "photo_detector",
           "detect_frames", "read_detections", "write_video_info"]

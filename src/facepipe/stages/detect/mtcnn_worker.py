"""The process of the TensorFlow `mtcnn` detect backend.

Reads one JSON request on stdin, writes the detections, prints the video facts as JSON.
It never imports torch, so TensorFlow has the process to itself.
"""

from __future__ import annotations

import json
import sys

from ...base.errors import FacepipeError


def tensorflow_detector(cfg: dict, width: int, height: int):
    from .detector import TensorflowMTCNNDetector, source_scale

    return TensorflowMTCNNDetector(source_scale(cfg["min_face_px"], width, height), cfg["min_score"])


def main() -> int:
    from .frames import detect_frames

    request = json.loads(sys.stdin.read())
    try:
        facts = detect_frames(request["video"], request["out"], request["cfg"],
                              start=request["start"], stop=request["stop"], make=tensorflow_detector,
                              crops_out=request["crops_out"], crop_margin=request["crop_margin"])
    except FacepipeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

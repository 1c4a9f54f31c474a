"""The stage library on small, real inputs: sampling, linking, clustering rules, scoring, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facepipe.base import layout
from facepipe.base.config import defaults, problem
from facepipe.base.episodes import discover
from facepipe.base.errors import FacepipeError
from facepipe.base.facecrops import Crops, crop_archive
from facepipe.base.video import FrameReader, expected_samples, is_sampled, probe
from facepipe.stages.cluster.grouping import agglomerate, cannot_link
from facepipe.stages.detect import detect_frames, make_detector
from facepipe.stages.embed import make_embedder
from facepipe.stages.embed.embedders import FACENET_WEIGHTS_FILE, FacenetEmbedder
from facepipe.stages.track import iou_matrix, link
from facepipe.tools.evaluate import bcubed, weighted_purity
from helpers import SHARED_VIDEOS, ffmpeg, truncated_copy

# The schema's settings (config/config.schema.yaml), read once; tracks of one detection kept here.
TRACK_CFG = {**defaults()["track"], "min_detections": 1}
DETECT_CFG = defaults()["detect"]


def test_sampling_is_the_same_for_any_chunking():
    fps, rate, n = 29.97, 4, 900
    whole = [i for i in range(n) if is_sampled(i, fps, rate)]
    chunked = [i for a in range(0, n, 137) for i in range(a, min(n, a + 137)) if is_sampled(i, fps, rate)]
    assert whole == chunked
    assert abs(len(whole) - n / fps * rate) <= 1
    assert len(whole) == expected_samples(n, fps, rate)
    assert sum(expected_samples(n, fps, rate, a, a + 137) for a in range(0, n, 137)) == len(whole)


@pytest.mark.media
def test_frame_reader_streams_only_sampled_frames():
    video = SHARED_VIDEOS / "hamilton_clip.mp4"
    info = probe(video)
    reader = FrameReader(video, sample_fps=4)
    got = [i for i, frame in reader]
    assert got == [i for i in range(reader.decoded) if is_sampled(i, info.fps, 4)]
    assert reader.decoded >= 270


@pytest.mark.media
def test_opencv_cascade_finds_the_faces_facenet_pytorch_finds(tmp_path):
    video = SHARED_VIDEOS / "hamilton_clip.mp4"
    found = {}
    for cascade in ("facenet", "opencv"):
        detect_frames(video, tmp_path / f"{cascade}.jsonl", {**DETECT_CFG, "cascade": cascade})
        lines = [json.loads(x) for x in (tmp_path / f"{cascade}.jsonl").read_text().splitlines()]
        found[cascade] = {x["frame"]: [f["box"] for f in x["faces"]] for x in lines}
    assert found["facenet"].keys() == found["opencv"].keys()
    faces = matched = 0  # as bench/detect_throughput.py counts recall: faces >= 40 px, IoU >= 0.5
    for frame, boxes in found["facenet"].items():
        boxes, mine = [b for b in boxes if b[3] - b[1] >= 40], found["opencv"][frame]
        faces += len(boxes)
        if boxes and mine:
            matched += int((iou_matrix(np.array(boxes), np.array(mine)).max(axis=1) >= 0.5).sum())
    assert faces >= 40 and matched >= 0.95 * faces, (matched, faces)


@pytest.fixture(scope="module")
def hamilton_720p(tmp_path_factory):
    """The Hamilton clip upscaled to 720p: frames shrunk for P-Net, facepipe's cascade (auto)."""
    folder = tmp_path_factory.mktemp("hd")
    ffmpeg("-i", str(SHARED_VIDEOS / "hamilton_clip.mp4"), "-vf", "scale=-2:720", "-an", "-c:v", "libx264",
           "-crf", "18", str(folder / "hamilton_720p.mp4"))
    return folder / "hamilton_720p.mp4"


def _faces_by_frame(path) -> dict:
    return {x["frame"]: x["faces"] for x in map(json.loads, path.read_text().splitlines())}


@pytest.mark.media
def test_keyframe_every_1_is_the_full_detector_on_every_sampled_frame(hamilton_720p, tmp_path):
    import cv2

    cfg = {**DETECT_CFG, "keyframe_every": 1}
    detect_frames(hamilton_720p, tmp_path / "d.jsonl", cfg, workers=2)
    found = _faces_by_frame(tmp_path / "d.jsonl")
    info = probe(hamilton_720p)
    detector = make_detector(cfg, info.width, info.height)
    expected = {index: detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                for index, frame in FrameReader(hamilton_720p, sample_fps=cfg["fps"])}
    assert sum(map(len, expected.values())) >= 40
    assert found == expected


KEYFRAMES = 2  # detect.keyframe_every measured in docs/speed.md


@pytest.mark.media
@pytest.mark.parametrize("clip", ["hamilton_720p", "hamilton_clip.mp4", "walking_and_pause.gif"])
def test_keyframes_find_what_the_full_detector_finds(clip, hamilton_720p, tmp_path):
    """detect.keyframe_every 2 against the full detector on every sampled frame: recall of its faces
    of 40 px and more (IoU >= 0.5, as bench/detect_throughput.py counts) at least 0.95, and few
    faces the full detector does not find."""
    video = hamilton_720p if clip == "hamilton_720p" else SHARED_VIDEOS / clip
    found = {}
    for every in (1, KEYFRAMES):
        detect_frames(video, tmp_path / f"k{every}.jsonl", {**DETECT_CFG, "keyframe_every": every}, workers=2)
        found[every] = {k: [f["box"] for f in v] for k, v in _faces_by_frame(tmp_path / f"k{every}.jsonl").items()}
    full, keyed = found[1], found[KEYFRAMES]
    assert full.keys() == keyed.keys()

    def matched(reference, other, min_h):
        wanted = hit = 0
        for frame, boxes in reference.items():
            boxes = [b for b in boxes if b[3] - b[1] >= min_h]
            wanted += len(boxes)
            if boxes and other[frame]:
                hit += int((iou_matrix(np.array(boxes), np.array(other[frame])).max(axis=1) >= 0.5).sum())
        return hit, wanted

    hit, wanted = matched(full, keyed, 40)
    extra_hit, extra_wanted = matched(keyed, full, 40)
    print(f"{clip}: {hit} of {wanted} faces >= 40 px; {extra_wanted - extra_hit} of {extra_wanted} not in full")
    assert wanted >= 20 and hit >= 0.95 * wanted, (hit, wanted)
    assert extra_hit >= 0.95 * extra_wanted, (extra_hit, extra_wanted)


@pytest.mark.media
def test_keyframe_chunks_write_what_a_single_pass_writes(tmp_path):
    """A chunk starts reading before its first frame, at the keyframe a single pass would use.
    At K = 3 the single pass's keyframes are frames 0, 23, 30, 45, 53, 68, ..., 135, 158 (sampled:
    0, 8, 15, 23, ...): the chunks begin two samples into a run, at frames 15 and 150."""
    video = SHARED_VIDEOS / "hamilton_clip.mp4"
    cfg = {**DETECT_CFG, "keyframe_every": 3}
    detect_frames(video, tmp_path / "single.jsonl", cfg, crops_out=tmp_path / "single.zip", crop_margin=0.4)
    pieces = []
    for n, (start, stop) in enumerate([(0, 15), (15, 150), (150, None)]):
        detect_frames(video, tmp_path / f"c{n}.jsonl", cfg, start=start, stop=stop, workers=2,
                      crops_out=tmp_path / f"c{n}.zip", crop_margin=0.4)
        pieces.append((tmp_path / f"c{n}.jsonl").read_text())
    assert "".join(pieces) == (tmp_path / "single.jsonl").read_text()
    # The faces cut for stills: each found once, by its chunk, as the single pass cut it.
    single, chunked = Crops([tmp_path / "single.zip"]), Crops([tmp_path / f"c{n}.zip" for n in range(3)])
    faces = [{**f, "frame": r["frame"]} for r in map(json.loads, "".join(pieces).splitlines()) for f in r["faces"]]
    assert len(faces) > 20 and len(chunked.index) == len(single.index) == len(faces)
    assert all(chunked.find(f) == single.find(f) and chunked.jpeg(f) == single.jpeg(f) for f in faces)


def test_a_damaged_crop_archive_is_refused_naming_it_and_the_fix(tmp_path):
    with crop_archive(tmp_path / "chunk0.crops.zip") as add:
        add(3, [{"box": [1.0, 1.0, 9.0, 9.0]}], [(0.5, b"jpeg", [0, 0, 8, 8], None)])
    crops = Crops([tmp_path / "chunk0.crops.zip"])
    assert crops.jpeg({"frame": 3, "box": [1.0, 1.0, 9.0, 9.0]}) == b"jpeg"
    with pytest.raises(FacepipeError, match="no crop of the face at frame 4.*delete the folder so detect runs"):
        crops.find({"frame": 4, "box": [1.0, 1.0, 9.0, 9.0]})
    (tmp_path / "chunk1.crops.zip").write_bytes((tmp_path / "chunk0.crops.zip").read_bytes()[:40])
    with pytest.raises(FacepipeError, match=r"chunk1\.crops\.zip: not a readable crop archive.*delete it so detect"):
        Crops([tmp_path / "chunk1.crops.zip"])


def test_keyframes_are_shot_starts_and_every_kth_sample_slot():
    from facepipe.stages.detect.frames import keyframe_runs

    # (index, t, cut score, frame) at 4 samples a second; a cut at t = 1.75
    items = [(i * 6, i * 0.25, 0.9 if i == 7 else 0.05, None) for i in range(12)]
    starts = [run[0][0] // 6 for run in keyframe_runs(items, 4, 4, 0.2)]
    assert starts == [0, 4, 7, 8]
    assert [len(run) for run in keyframe_runs(items, 4, 1, 0.2)] == [1] * 12
    # a chunk that starts mid-run: the runs from its first keyframe on are the single pass's
    assert [run[0][0] for run in keyframe_runs(items[2:], 4, 4, 0.2)][1:] == [24, 42, 48]


def test_auto_cascade_is_facepipes_where_the_frame_is_shrunk():
    from facepipe.stages.detect.detector import FacenetDetector

    min_score = DETECT_CFG["min_score"]
    assert FacenetDetector("cpu", 0.5, min_score, "auto").opencv_cascade is not None
    assert FacenetDetector("cpu", 1.0, min_score, "auto").opencv_cascade is None  # 360p: facenet-pytorch's
    assert FacenetDetector("cpu", 1.0, min_score, "opencv").opencv_cascade is not None
    assert FacenetDetector("cpu", 0.5, min_score, "facenet").opencv_cascade is None


def test_the_frame_shrink_follows_the_source_and_keeps_720p_as_it_was():
    from facepipe.stages.detect.detector import source_scale

    assert source_scale(40, 1280, 720) == 0.5  # 720p at 40 px: half size, the shrink of every video once
    assert source_scale(40, 720, 1280) == 0.5  # portrait: the short side counts
    assert source_scale(40, 1920, 1080) == pytest.approx(1 / 3)
    assert source_scale(40, 640, 360) == source_scale(40, 480, 270) == 1.0  # never below 20 px
    assert source_scale(80, 640, 360) == 0.5


@pytest.fixture(scope="module")
def low_res_clips(tmp_path_factory):
    """The gif as it is (480x270) and the Hamilton clip scaled to 270p."""
    folder = tmp_path_factory.mktemp("lowres")
    ffmpeg("-i", str(SHARED_VIDEOS / "hamilton_clip.mp4"), "-vf", "scale=-2:270", "-an", "-c:v", "libx264",
           "-crf", "18", str(folder / "hamilton_270p.mp4"))
    return [SHARED_VIDEOS / "walking_and_pause.gif", folder / "hamilton_270p.mp4"]


@pytest.mark.media
def test_small_videos_keep_every_face_mtcnn_finds_at_native_resolution(low_res_clips, tmp_path):
    import cv2
    from facenet_pytorch import MTCNN

    reference_mtcnn = MTCNN(keep_all=True, min_face_size=20)  # facenet-pytorch's own defaults
    cfg = DETECT_CFG
    for video in low_res_clips:
        detect_frames(video, tmp_path / "d.jsonl", cfg, workers=2)
        found = {x["frame"]: [f["box"] for f in x["faces"]]
                 for x in map(json.loads, (tmp_path / "d.jsonl").read_text().splitlines())}
        wanted = hit = 0
        for index, frame in FrameReader(video, wanted=found):
            boxes, probs = reference_mtcnn.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            faces = [b for b, p in zip(boxes if boxes is not None else [], probs if boxes is not None else [])
                     if p >= cfg["min_score"] and b[3] - b[1] >= 20]
            wanted += len(faces)
            if faces and found[index]:
                hit += int((iou_matrix(np.array(faces), np.array(found[index])).max(axis=1) >= 0.5).sum())
        print(f"{video.name}: {hit} of {wanted} faces of at least 20 px")
        assert wanted >= 40 and hit / wanted >= 0.95, (video.name, hit, wanted)
        if "hamilton" in video.name:  # 480x270: every face MTCNN finds at native resolution
            assert hit == wanted


def test_episode_key_drops_trailing_date_and_lowercases():
    assert layout.episode_key("RHOBH_S05_E03_11062025") == "rhobh_s05_e03"
    assert layout.episode_key("Show_E01") == "show_e01"


@pytest.mark.parametrize("name", ["bad name.mp4", "caf\u00e9.mp4", "a;rm -rf.mp4", "x$(y).mp4"])
def test_episode_ids_outside_the_safe_set_are_refused_naming_the_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(FacepipeError, match="may only use letters") as err:
        discover(tmp_path)
    assert name in str(err.value)


def test_missing_videos_dir_says_how_to_set_it(tmp_path):
    with pytest.raises(FacepipeError, match="videos_dir"):
        discover(tmp_path / "nope")


def test_iou_and_linking_keep_tracks_within_a_shot():
    ious = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10]]))
    assert ious.round(3).tolist() == [[1.0, 0.333]]
    face = {"box": [10, 10, 50, 50], "score": 0.99, "landmarks": None}
    frames = [{"frame": k, "t": k * 0.25, "faces": [face], "cut_score": 0.05} for k in range(6)]
    assert [len(t) for t in link(frames, TRACK_CFG)] == [6]
    frames[3]["cut_score"] = 0.9  # a cut: the same box after it is a new track
    assert [len(t) for t in link(frames, TRACK_CFG)] == [3, 3]
    frames[3]["cut_score"] = 0.05
    gap = (frames[:2] + [dict(f, faces=[]) for f in frames[2:6]]
           + [{"frame": 6, "t": 1.6, "faces": [face], "cut_score": 0.0}])
    assert [len(t) for t in link(gap, TRACK_CFG)] == [2, 1]  # 1.35 s unseen > max_gap_s


def test_tracks_sharing_a_frame_are_never_clustered_together():
    points = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.01]])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    tracks = [{"detections": [{"frame": 1}]}, {"detections": [{"frame": 1}]}, {"detections": [{"frame": 9}]}]
    groups = agglomerate(points, cannot_link(tracks), threshold=0.5)
    assert len(groups) == 2
    assert all(not {0, 1} <= set(g) for g in groups)


def test_bcubed_and_purity_on_known_cases():
    truth = ["a", "a", "b", "b"]
    assert bcubed(truth, [0, 0, 1, 1]) == (1.0, 1.0, 1.0)
    p, r, f = bcubed(truth, [0, 0, 0, 0])
    assert (p, r) == (0.5, 1.0) and f == pytest.approx(2 / 3)
    assert weighted_purity(truth, [0, 0, 0, 1]) == 0.75


def test_corrupt_video_fails_with_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    out = tmp_path / "det.jsonl"
    with pytest.raises(FacepipeError) as err:
        detect_frames(bad, out, DETECT_CFG)
    assert str(bad) in str(err.value) and "replace" in str(err.value)
    assert not out.exists()


def test_truncated_video_without_its_index_fails_naming_the_file(tmp_path):
    cut = truncated_copy(tmp_path / "cut.mp4", 2 / 3, index_first=False)
    with pytest.raises(FacepipeError) as err:
        detect_frames(cut, tmp_path / "d.jsonl", DETECT_CFG)
    assert str(err.value).startswith(f"{cut}: ") and "replace it" in str(err.value)
    assert not (tmp_path / "d.jsonl").exists()


def test_truncated_video_with_its_index_first_keeps_the_decoded_part(tmp_path):
    cut = truncated_copy(tmp_path / "cut.mp4", 2 / 3, index_first=True)
    facts = detect_frames(cut, tmp_path / "d.jsonl", DETECT_CFG)
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    whole = probe(SHARED_VIDEOS / "hamilton_clip.mp4").frame_count
    assert facts["sampled_frames"] == len(lines) and 0.5 * whole < facts["frame_count"] < 0.75 * whole, facts
    assert sum(len(x["faces"]) for x in lines) > 0


def test_facenet_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FacepipeError) as err:
        FacenetEmbedder(None, "cpu")
    msg = str(err.value)
    assert FACENET_WEIGHTS_FILE in msg and str(tmp_path) in msg and "embed.facenet_weights" in msg
    assert "\n" not in msg


def test_facenet_with_a_damaged_weights_file_is_refused_clearly(tmp_path):
    bad = tmp_path / FACENET_WEIGHTS_FILE
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(FacepipeError, match="not a readable facenet weights file"):
        FacenetEmbedder(str(bad), "cpu")


@pytest.mark.parametrize("section", ["detect", "embed"])
def test_a_device_facepipe_cannot_use_is_refused_by_the_schema(section):
    wrong = problem({section: {"device": "mps"}})
    assert wrong.startswith(f"config key {section}.device: 'mps' does not match") and "\n" not in wrong
    assert problem({section: {"device": "cuda:1"}}) is None and problem({section: {"device": "cpu"}}) is None


def test_cuda_without_a_cuda_device_fails_in_one_line_naming_the_key(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FacepipeError) as err:
        make_detector({**DETECT_CFG, "device": "cuda"}, 1280, 720)
    assert str(err.value) == "detect.device is 'cuda' but no CUDA device is available; set detect.device: cpu"
    for embedder, engine in (("dlib", "auto"), ("dlib", "torch"), ("facenet", "auto")):  # auto: torch on CUDA
        with pytest.raises(FacepipeError) as err:
            make_embedder({**defaults()["embed"], "embedder": embedder, "device": "cuda:0", "engine": engine})
        assert str(err.value) == "embed.device is 'cuda:0' but no CUDA device is available; set embed.device: cpu"


def test_embed_engine_is_onnxruntime_on_the_cpu_torch_on_cuda_and_never_onnxruntime_on_cuda():
    from facepipe.stages.embed.embedders import dlib_engine

    assert defaults()["embed"]["engine"] == "auto"
    assert [dlib_engine(e, "cpu") for e in ("auto", "torch", "onnxruntime")] == ["onnxruntime", "torch", "onnxruntime"]
    assert dlib_engine("auto", "cuda:1") == dlib_engine("torch", "cuda") == "torch"
    with pytest.raises(FacepipeError) as err:
        make_embedder({**defaults()["embed"], "device": "cuda", "engine": "onnxruntime"})
    assert str(err.value) == ("embed.engine is 'onnxruntime' but embed.device is 'cuda': facepipe runs ONNX Runtime "
                              "on the CPU only; set embed.engine: auto (or torch) for cuda")
    wrong = problem({"embed": {"engine": "tensorrt"}})
    assert wrong.startswith("config key embed.engine: 'tensorrt' is not one of") and "\n" not in wrong

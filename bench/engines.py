"""Bench: PyTorch eager against ONNX Runtime for the networks facepipe runs on a CPU, at equal outputs.

Networks and inputs, all real (the shared media):
- MTCNN's P-Net on each level of the image pyramid of a 640x360 frame (what P-Net sees of a 720p
  frame shrunk by half, and of a 360p frame), R-Net and O-Net on the batches of 24x24 and 48x48
  crops facepipe's cascade cut from frames of the Hamilton clip upscaled to 720p (recorded as it
  ran; the median and the largest batch are timed);
- dlib's descriptor network on a batch of 32 chips (embed's BATCH) cut by dlib from the johns photos;
- whole frames: facepipe's cascade on the 720p frames (detect.cascade auto there), facenet-pytorch's
  on the 360p frames (auto there), each with its networks run by one engine and then the other.
Each is timed with torch.set_num_threads(T) against an ONNX Runtime session of T intra-op threads,
T = 1 (as the detect and embed workers run) and 2, the two engines taking turns in the same
process: ms per call (median over rounds), torch / ORT. Outputs: the largest absolute difference of
the networks' outputs, of the boxes, scores and landmarks found on the frames, and the smallest
cosine similarity of the descriptors. Start-up: fresh processes timing import + model load of
each engine from its warm cache (what each embed worker and detect worker pays); and the embed
stage itself (2 workers) on stills that are the shared photos, on each engine.

    python bench/engines.py [--frames 12] [--rounds 7] [--threads 1 2] [--parts networks startup stage]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchlib import OUT, SHARED, embed_in_child, machine
from facepipe.base.onnx_graph import Graph
from facepipe.base.onnx_models import options
from facepipe.base.video import FrameReader
from facepipe.stages.detect.detector import MTCNN_MIN_FACE, MTCNN_THRESHOLDS, FacenetDetector
from facepipe.stages.detect.mtcnn_cascade import MTCNNCascade
from facepipe.stages.embed.dlib_onnx import DlibOnnx
from facepipe.stages.embed.dlib_resnet import DlibResNet

VIDEO = SHARED / "videos" / "hamilton_clip.mp4"
NETS = ("pnet", "rnet", "onet")

# ----------------------------------------------------------------------------------------
# MTCNN as ONNX graphs, written here from facenet-pytorch's modules' weights (facepipe runs MTCNN
# on PyTorch: the graphs live in this bench only, docs/speed.md). Each takes channels-last
# (n, h, w, 3) batches, as facepipe's cascade cuts them, and computes what the module's forward()
# does: convolutions, PReLU, max pools rounding up; R-Net and O-Net flatten as (w, h, c).

LAYERS = {  # (convolution, the max pool after its PReLU) from the input up; the dense layer
    "pnet": ([("conv1", (2, 2)), ("conv2", None), ("conv3", None)], None),
    "rnet": ([("conv1", (3, 2)), ("conv2", (3, 2)), ("conv3", None)], "dense4"),
    "onet": ([("conv1", (3, 2)), ("conv2", (3, 2)), ("conv3", (2, 2)), ("conv4", None)], "dense5"),
}
HEADS = {"pnet": ["conv4_2", "conv4_1"], "rnet": ["dense5_2", "dense5_1"], "onet": ["dense6_2", "dense6_3", "dense6_1"]}


def mtcnn_graph(net: str, module) -> bytes:
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    convs, dense = LAYERS[net]
    g = Graph()
    x = g.op("Transpose", [g.input("images", np.float32, ["n", "h", "w", 3])], perm=[0, 3, 1, 2])
    for k, (conv, pool) in enumerate(convs, 1):
        x = g.prelu(g.conv(x, sd[f"{conv}.weight"], sd[f"{conv}.bias"]), sd[f"prelu{k}.weight"], spatial=True)
        if pool:
            x = g.max_pool(x, *pool, ceil=True)
    if dense:
        x = g.op("Flatten", [g.op("Transpose", [x], perm=[0, 3, 2, 1])])
        x = g.prelu(g.dense(x, sd[f"{dense}.weight"], sd[f"{dense}.bias"]), sd[f"prelu{len(convs) + 1}.weight"],
                    spatial=False)
        heads = [g.dense(x, sd[f"{h}.weight"], sd[f"{h}.bias"]) for h in HEADS[net]]
        shapes = [["n", int(sd[f"{h}.weight"].shape[0])] for h in HEADS[net]]
    else:
        heads = [g.conv(x, sd[f"{h}.weight"], sd[f"{h}.bias"]) for h in HEADS[net]]
        shapes = [["n", int(sd[f"{h}.weight"].shape[0]), "rows", "cols"] for h in HEADS[net]]
    heads[-1] = g.op("Softmax", [heads[-1]], axis=1)
    return g.model({f"out{i}": (h, shape) for i, (h, shape) in enumerate(zip(heads, shapes))}, {}, f"MTCNN {net}")


class OrtNet:
    """A network on ONNX Runtime: channels-last numpy batch in, numpy arrays out (the module's order)."""

    def __init__(self, graph: bytes, threads: int):
        import onnxruntime as ort

        self.session = ort.InferenceSession(graph, options(threads), providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> tuple:
        return tuple(self.session.run(None, {"images": np.ascontiguousarray(batch)}))


class TorchNet:
    """A facenet-pytorch module on the same numpy batches, as facepipe's cascade feeds it (a view)."""

    def __init__(self, module):
        self.module = module

    def __call__(self, batch: np.ndarray) -> tuple:
        with torch.inference_mode():
            return tuple(t.numpy() for t in self.module(torch.from_numpy(batch).permute(0, 3, 1, 2)))


class OrtModule(torch.nn.Module):
    """An OrtNet where the cascades call a torch module (NCHW tensors in and out)."""

    def __init__(self, net: OrtNet):
        super().__init__()
        self.net = net
        self.dtype_of = torch.nn.Parameter(torch.zeros(0), requires_grad=False)  # facenet-pytorch reads it

    def forward(self, x):
        return tuple(torch.from_numpy(out) for out in self.net(x.permute(0, 2, 3, 1).numpy()))


def on_onnxruntime(detector: FacenetDetector, threads: int) -> FacenetDetector:
    """`detector` with its three networks, in both cascades, run by ONNX Runtime."""
    modules = [OrtModule(OrtNet(mtcnn_graph(net, getattr(detector.model, net)), threads)) for net in NETS]
    detector.model.pnet, detector.model.rnet, detector.model.onet = modules
    for cascade in {id(c): c for c in (detector.follower, detector.opencv_cascade) if c is not None}.values():
        cascade.pnet, cascade.rnet, cascade.onet = modules
    return detector


class Recorder:
    """A cascade's network that keeps a channels-last copy of every batch it is given."""

    def __init__(self, module):
        self.module, self.batches = module, []

    def __call__(self, batch):
        self.batches.append(batch.permute(0, 2, 3, 1).numpy().copy())
        return self.module(batch)


def turns(fns: dict, rounds: int, budget_s: float = 0.25) -> dict[str, float]:
    """ms per call of each function, taking turns: in each round each runs as many calls as fit
    its share of `budget_s` (at least one); the median over rounds."""
    for fn in fns.values():
        fn()  # warm: first-call allocations, ORT's first run
    reps = {k: max(1, int(budget_s / max(1e-4, _once(fn)))) for k, fn in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[k]):
                fn()
            times[k].append((time.perf_counter() - t0) / reps[k] * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def frames(count: int) -> list[np.ndarray]:
    out = []
    for _index, bgr in FrameReader(VIDEO, sample_fps=2):
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if len(out) == count:
            break
    return out


def chips() -> np.ndarray:
    import dlib

    from facepipe.stages.embed.dlib_weights import SHAPE_PREDICTOR_FILE, models_file

    predictor = dlib.shape_predictor(str(models_file(SHAPE_PREDICTOR_FILE)))
    out = []
    for path in sorted((SHARED / "faces" / "johns").glob("*/*.jpg")):
        img = dlib.load_rgb_image(str(path))
        shape = predictor(img, dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1))
        out.append(dlib.get_face_chip(img, shape, size=150, padding=0.25))
    return np.stack(out)


def max_diff(a: tuple, b: tuple) -> float:
    return max(float(np.abs(x - y).max()) if x.size else 0.0 for x, y in zip(a, b))


def faces_diff(got: list, want: list) -> tuple[float, float, float, int]:
    """Largest |difference| of boxes, scores and landmarks over frames whose faces match in number;
    and how many frames do not."""
    box = score = marks = 0.0
    unequal = 0
    for (b1, s1, m1), (b2, s2, m2) in zip(got, want):
        if len(b1) != len(b2):
            unequal += 1
            continue
        if len(b1):
            box = max(box, float(np.abs(b1 - b2).max()))
            score = max(score, float(np.abs(s1 - s2).max()))
            marks = max(marks, float(np.abs(m1 - m2).max()))
    return box, score, marks, unequal


def facenet_faces(detector: FacenetDetector, rgb: np.ndarray):
    boxes, scores, marks = detector.model.detect(rgb, landmarks=True)
    if boxes is None:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    return np.asarray(boxes), np.asarray(scores, float), np.asarray(marks)


STARTUP = {
    "embed torch": """
import torch
torch.set_num_threads(1)
from facepipe.stages.embed.dlib_resnet import DlibResNet
t1 = time.perf_counter()
net = DlibResNet(device="cpu")
""",
    "embed onnxruntime": """
from facepipe.stages.embed.dlib_onnx import DlibOnnx
t1 = time.perf_counter()
net = DlibOnnx(threads=1)
""",
    "detect torch": """
import torch
torch.set_num_threads(1)
from facenet_pytorch import MTCNN
t1 = time.perf_counter()
model = MTCNN(keep_all=True, device="cpu")
""",
    "detect onnxruntime": """
import onnxruntime as ort
from facepipe.base.onnx_models import options
t1 = time.perf_counter()
nets = [ort.InferenceSession(f"{out}/mtcnn_{net}.onnx", options(1)) for net in ("pnet", "rnet", "onet")]
""",
}
CHILD = """
import json, sys, time
import numpy
out = sys.argv[1]
t0 = time.perf_counter()
{code}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "torch": "torch" in sys.modules}}))
"""


def embed_stage(rounds: int, repeat: int = 6) -> dict[str, dict]:
    """The embed stage as the embed job runs it (embed_stills, 2 worker processes) on stills that
    are the shared photos (each `repeat` times, whole photo as the face box), on each engine in
    turn, in fresh processes: seconds to the first batch back, in all, and stills/s once running."""
    import tempfile

    photos = sorted(p for s in ("lfw10", "johns") for p in (SHARED / "faces" / s).glob("*/*.jpg"))
    runs: dict[str, list] = {"torch": [], "onnxruntime": []}
    with tempfile.TemporaryDirectory() as tmp:
        stills = []
        for path in photos * repeat:  # the manifest names the shared files themselves: nothing is copied
            h, w = cv2.imread(str(path)).shape[:2]
            stills.append({"file": str(path), "track_id": len(stills), "quality": 1.0,
                           "box_in_crop": [0, 0, w - 1, h - 1]})
        (Path(tmp) / "manifest.json").write_text(json.dumps({"stills": stills}))
        for _ in range(rounds):
            for engine in runs:
                runs[engine].append(embed_in_child(tmp, f"{tmp}/{engine}.npz", "engine", engine))
        a, b = (np.load(f"{tmp}/{e}.npz")["vectors"].astype(np.float64) for e in runs)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {e: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "start", "steady")}
            | {"stills": rs[0]["stills"], "min cosine": float(cos.min())} for e, rs in runs.items()}


def startup(rounds: int) -> dict[str, dict]:
    from facenet_pytorch import MTCNN

    model = MTCNN(keep_all=True, device="cpu")
    for net in NETS:  # what the detect child opens
        (OUT / f"mtcnn_{net}.onnx").write_bytes(mtcnn_graph(net, getattr(model, net)))
    runs: dict[str, list] = {k: [] for k in STARTUP}
    for _ in range(rounds):
        for name, code in STARTUP.items():
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD.format(code=code), str(OUT)], capture_output=True,
                                  text=True, check=True)
            wall = time.perf_counter() - t0
            runs[name].append({**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall})
    return {name: {k: statistics.median(r[k] for r in rs) for k in ("import", "load", "wall")} | {
        "torch imported": rs[0]["torch"]} for name, rs in runs.items()}


def network_rows(threads: int, model, recorders: list, picked: dict, rounds: int) -> list[dict]:
    """Each MTCNN network on its recorded inputs, both engines on `threads` threads."""
    rows = []
    torch_run = {net: TorchNet(getattr(model, net)) for net in NETS}
    ort = {net: OrtNet(mtcnn_graph(net, getattr(model, net)), threads) for net in NETS}
    for net, rec in zip(NETS, recorders):
        diff = max(max_diff(torch_run[net](b), ort[net](b)) for b in rec.batches)
        total = {"torch": 0.0, "onnxruntime": 0.0}
        for label, batch in picked[net]:
            ms = turns({"torch": functools.partial(torch_run[net], batch),
                        "onnxruntime": functools.partial(ort[net], batch)}, rounds)
            rows.append({"threads": threads, "what": f"{net} {label}", **ms, "max abs diff": diff})
            total = {k: total[k] + ms[k] for k in ms}
        if net == "pnet":
            rows.append({"threads": threads, "what": f"pnet, the pyramid of 640x360 ({len(picked[net])} levels)",
                         **total, "max abs diff": diff})
    return rows


def frame_row(threads: int, what: str, scale: float, detect, images: list, rounds: int) -> dict:
    """Whole frames through a cascade (`detect(detector, rgb)`), each engine's networks in turn."""
    engines = {"torch": FacenetDetector("cpu", scale, 0.0, "auto"),
               "onnxruntime": on_onnxruntime(FacenetDetector("cpu", scale, 0.0, "auto"), threads)}
    found = {e: [detect(d, rgb) for rgb in images] for e, d in engines.items()}
    box, score, marks, unequal = faces_diff(found["onnxruntime"], found["torch"])
    ms = turns({e: functools.partial(lambda d: [detect(d, rgb) for rgb in images], d) for e, d in engines.items()},
               rounds, budget_s=0)
    return {"threads": threads, "what": what, **{k: v / len(images) for k, v in ms.items()},
            "max abs diff": max(box, score), "boxes": box, "scores": score, "landmarks": marks,
            "frames differing": unequal, "faces": sum(len(f[0]) for f in found["torch"])}


def dlib_row(threads: int, chip_batch: np.ndarray, rounds: int) -> dict:
    resnet, onnx = DlibResNet(device="cpu"), DlibOnnx(threads=threads)
    a, b = onnx.descriptors(chip_batch).astype(np.float64), resnet.descriptors(chip_batch).astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    batch = chip_batch[:32]
    ms = turns({"torch": functools.partial(resnet.descriptors, batch),
                "onnxruntime": functools.partial(onnx.descriptors, batch)}, rounds, budget_s=0)
    return {"threads": threads, "what": "dlib, 32 chips 150x150", **ms, "max abs diff": float(np.abs(a - b).max()),
            "min cosine": float(cos.min()), "chips": len(chip_batch)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--parts", nargs="+", choices=["networks", "startup", "stage"], default=["networks", "startup",
                                                                                             "stage"])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if "networks" not in args.parts:
        results = {"machine": machine(), "rows": [],
                   "startup": startup(max(3, args.rounds // 2)) if "startup" in args.parts else {},
                   "embed stage": embed_stage(max(2, args.rounds // 2)) if "stage" in args.parts else {}}
        return report(results)
    small = frames(args.frames)
    large = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in small]
    chip_batch = chips()
    from facenet_pytorch import MTCNN

    model = MTCNN(keep_all=True, device="cpu", min_face_size=MTCNN_MIN_FACE, thresholds=MTCNN_THRESHOLDS)
    model.to(memory_format=torch.channels_last)  # as FacenetDetector runs it on a CPU
    torch.set_num_threads(1)
    recorders = [Recorder(getattr(model, net)) for net in NETS]
    cascade = MTCNNCascade(*recorders, MTCNN_MIN_FACE, MTCNN_THRESHOLDS)
    for rgb in large:
        cascade.detect(rgb, 0.5)
    levels = recorders[0].batches[: len(recorders[0].batches) // len(large)]  # the first frame's pyramid
    picked = {"pnet": [(f"{b.shape[2]}x{b.shape[1]}", b) for b in levels]}
    for net, rec in zip(NETS[1:], recorders[1:]):
        ordered = sorted(rec.batches, key=len)
        middle, largest = ordered[len(ordered) // 2], ordered[-1]
        picked[net] = [(f"n={len(middle)} (median)", middle), (f"n={len(largest)} (largest)", largest)]
    sizes = {net: [len(b) for b in rec.batches] for net, rec in zip(NETS, recorders)}
    rows = []
    frame_rounds = max(3, args.rounds // 2)
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows += network_rows(threads, model, recorders, picked, args.rounds)
        rows.append(frame_row(threads, "720p frame, facepipe's cascade (auto)", 0.5,
                              lambda d, rgb: d.opencv_cascade.detect(rgb, 0.5), large, frame_rounds))
        rows.append(frame_row(threads, "360p frame, facenet-pytorch's cascade (auto)", 1.0, facenet_faces, small,
                              frame_rounds))
        rows.append(dlib_row(threads, chip_batch, args.rounds))
    results = {"machine": machine(), "frames": len(large), "rows": rows,
               "startup": startup(frame_rounds) if "startup" in args.parts else {},
               "embed stage": embed_stage(max(2, args.rounds // 2)) if "stage" in args.parts else {},
               "batch sizes": {k: {"calls": len(v), "median": statistics.median(v)} for k, v in sizes.items()}}
    return report(results)


def report(results: dict) -> int:
    (OUT / "engines.json").write_text(json.dumps(results, indent=1))
    print(f"machine: {results['machine']}")
    if results["rows"]:
        n = results["frames"]
        print(f"frames: {n} of {VIDEO.name} (720p: upscaled); batches per frame: "
              + ", ".join(f"{k} {v['calls'] / n:.1f} (median n {v['median']:.0f})"
                          for k, v in results["batch sizes"].items()))
    print(f"{'T':>2} {'network, input':<48} {'torch ms':>9} {'ORT ms':>8} {'torch/ORT':>9}  outputs")
    for r in results["rows"]:
        extra = f"max abs diff {r['max abs diff']:.1e}"
        if "min cosine" in r:
            extra += f", min cosine {r['min cosine']:.7f} ({r['chips']} chips)"
        if "boxes" in r:
            extra = (f"boxes {r['boxes']:.1e} px, scores {r['scores']:.1e}, landmarks {r['landmarks']:.1e} px; "
                     f"{r['faces']} faces, {r['frames differing']} frames differing in count")
        print(f"{r['threads']:>2} {r['what']:<48} {r['torch']:>9.2f} {r['onnxruntime']:>8.2f} "
              f"{r['torch'] / r['onnxruntime']:>9.2f}  {extra}")
    print("start-up in a fresh process, models from their warm caches (median):")
    for name, s in results["startup"].items():
        print(f"  {name:<20} import {s['import']:.2f} s, model {s['load']:.2f} s, process wall {s['wall']:.2f} s"
              f"{'' if s['torch imported'] else ' (torch never imported)'}")
    print("the embed stage, 2 workers, in a fresh process (median of runs):")
    for engine, r in results["embed stage"].items():
        print(f"  {engine:<12} {r['stills']} stills: {r['seconds']:.1f} s, first batch back after {r['start']:.1f} s, "
              f"{r['steady']:.0f} stills/s once running; min cosine to the other engine {r['min cosine']:.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

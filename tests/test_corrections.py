"""Corrections that stick: the records (base.corrections), applying them to an episode's clusters
and as constraints on a season, finding their tracks again after tracks change, and the file's
safety under concurrent writers and a full disk."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facepipe.base import corrections as rec
from facepipe.base.errors import FacepipeError
from facepipe.stages.cluster import TrackIndex, apply_corrections
from facepipe.stages.season import link


def track(tid, t0, t1, x, fps=4.0, y=50.0, size=60.0):
    """A synthetic track: one detection per sampled frame from t0 to t1, its box drifting right."""
    n = int(round((t1 - t0) * fps)) + 1
    dets = []
    for k in range(n):
        t = round(t0 + k / fps, 3)
        dx = 2.0 * k / fps
        dets.append({"frame": int(round(t * 25)), "t": t, "box": [x + dx, y, x + dx + size, y + size], "score": 0.99})
    return {"track_id": tid, "detections": dets}


def episode(fps=4.0):
    """Six tracks of four people on screen one after another (two of them side by side)."""
    tracks = [track(0, 0, 2, 10, fps), track(1, 3, 5, 10, fps), track(2, 0, 2, 300, fps),
              track(3, 6, 8, 300, fps), track(4, 9, 11, 150, fps), track(5, 12, 14, 150, fps)]
    return {"episode": "EP", "sample_fps": fps, "tracks": tracks}


def machine_clusters():
    """What clustering made of episode(): tracks 0+1 one person, 2 and 3 two (a split), 4+5 one."""
    clusters = [[0, 1], [2], [3], [4, 5]]
    return {"episode": "EP", "embedder": "dlib", "method": "agglomerative", "threshold": 0.08,
            "clusters": [{"cluster_id": k, "track_ids": c, "screen_time_s": 2.0 * len(c)}
                         for k, c in enumerate(clusters)],
            "unassigned_track_ids": []}


def anchors(tracks, ids):
    by = {t["track_id"]: t for t in tracks["tracks"]}
    return [rec.anchor(by[i]) for i in ids]


def records_file(tmp_path, *records):
    path = tmp_path / "EP.jsonl"
    for r in records:
        rec.append(path, r)
    return rec.effective(rec.parse(path))


def groups_of(result):
    return sorted(sorted(c["track_ids"]) for c in result["clusters"])


def test_each_operation_changes_exactly_what_it_says(tmp_path):
    tracks = episode()
    merge = rec.new_record("merge", groups=[anchors(tracks, [2]), anchors(tracks, [3])])
    result = apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "m", merge))
    assert groups_of(result) == [[0, 1], [2, 3], [4, 5]]
    assert result["corrections"]["applied"] == [merge["id"]] and result["corrections"]["unmatched"] == []

    split = rec.new_record("split", tracks=anchors(tracks, [1]), into=None)
    assert groups_of(apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "s", split))) == \
        [[0], [1], [2], [3], [4, 5]]
    move = rec.new_record("split", tracks=anchors(tracks, [1]), into=anchors(tracks, [4, 5]))
    assert groups_of(apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "mv", move))) == \
        [[0], [1, 4, 5], [2], [3]]

    name = rec.new_record("name", tracks=anchors(tracks, [4, 5]), name="Ada Lovelace")
    hide = rec.new_record("hide", tracks=anchors(tracks, [0, 1]))
    result = apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "nh", name, hide))
    by_tracks = {tuple(c["track_ids"]): c for c in result["clusters"]}
    assert by_tracks[(4, 5)]["name"] == "Ada Lovelace" and by_tracks[(4, 5)]["named_by"] == "user"
    assert by_tracks[(0, 1)]["hidden"] is True and not by_tracks[(4, 5)]["hidden"]
    assert result["clusters"][-1]["track_ids"] == [0, 1]  # hidden people come last
    unhide = rec.new_record("unhide", tracks=anchors(tracks, [0, 1]))
    result = apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "u", hide, unhide))
    assert not any(c["hidden"] for c in result["clusters"])

    # not this person: track 5 leaves 4's person, and stays out however often clustering reruns
    not_her = rec.new_record("not", tracks=anchors(tracks, [5]), person=anchors(tracks, [4]))
    assert groups_of(apply_corrections(machine_clusters(), tracks, records_file(tmp_path / "n", not_her))) == \
        [[0, 1], [2], [3], [4], [5]]


def test_one_name_is_one_person_and_undo_restores_what_was_there(tmp_path):
    tracks = episode()
    a = rec.new_record("name", tracks=anchors(tracks, [2]), name="Grace Hopper")
    b = rec.new_record("name", tracks=anchors(tracks, [3]), name="Grace Hopper ")
    path = tmp_path / "EP.jsonl"
    for r in (a, b):
        rec.append(path, r)
    result = apply_corrections(machine_clusters(), tracks, rec.effective(rec.parse(path)))
    assert [c["track_ids"] for c in result["clusters"] if c.get("name") == "Grace Hopper"] == [[2, 3]]
    rec.append(path, rec.new_record("undo", record=b["id"]))
    result = apply_corrections(machine_clusters(), tracks, rec.effective(rec.parse(path)))
    assert groups_of(result) == [[0, 1], [2], [3], [4, 5]]
    undo_undo = rec.new_record("undo", record=rec.parse(path)[-1].id)  # undo the undo: b applies again
    rec.append(path, undo_undo)
    assert [r.id for r in rec.effective(rec.parse(path))] == [a["id"], b["id"]]
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(ln)["at"] for ln in lines)  # history kept, each record timed


def test_a_correction_that_finds_nothing_is_reported_never_applied_to_someone_else(tmp_path):
    tracks = episode()
    gone = {"episode": "EP", "sample_fps": 4.0, "tracks": [track(9, 30, 32, 500)]}
    r = rec.new_record("name", tracks=anchors(gone, [9]), name="Nobody Here")
    result = apply_corrections(machine_clusters(), tracks, records_file(tmp_path, r))
    assert not any(c.get("name") for c in result["clusters"])
    assert result["corrections"]["unmatched"] == [{"id": r["id"], "op": "name", "line": 1,
                                                   "why": "none of its tracks is there any more"}]


def test_anchors_find_their_tracks_again_at_another_sampling_rate():
    before, after = episode(fps=4.0), episode(fps=2.5)
    index = TrackIndex(after)
    for t in before["tracks"]:
        assert index.match(rec.anchor(t)) == [t["track_id"]]
    # a track cut in two by new settings: the anchor finds both pieces
    cut = {"episode": "EP", "sample_fps": 4.0, "tracks": [track(7, 0, 0.75, 10), track(8, 1.0, 2.0, 12)]}
    assert TrackIndex(cut).match(rec.anchor(before["tracks"][0])) == [7, 8]
    # the next shot at the same place on screen is someone else
    shots = {"episode": "EP", "sample_fps": 4.0, "tracks": [track(1, 0, 1.75, 10), track(2, 2.0, 3.75, 10)]}
    assert TrackIndex(shots).match(rec.anchor(shots["tracks"][0])) == [1]
    assert TrackIndex(shots).match(rec.anchor(shots["tracks"][1])) == [2]
    # the same times somewhere else on screen are someone else
    elsewhere = {"episode": "EP", "sample_fps": 4.0, "tracks": [track(1, 0, 2, 400)]}
    assert TrackIndex(elsewhere).match(rec.anchor(before["tracks"][0])) == []


@pytest.mark.parametrize("line, why", [
    ("{not json", "not JSON"),
    ('{"id": "r1", "at": "2026-12-01T00:00:00Z", "op": "rename"}', "'op' 'rename' is none of"),
    ('{"id": "r1", "at": "2026-12-01T00:00:00Z", "op": "name", "tracks": [], "name": "X"}', "'tracks' is not"),
    ('{"id": "r1", "at": "2026-12-01T00:00:00Z", "op": "undo", "record": "r0"}', "which no earlier line holds"),
    ('{"id": "r1", "at": "2026-12-01T00:00:00Z", "op": "hide", "tracks": [{"start_s": 3, "end_s": 1, '
     '"samples": [[1, 0, 0, 5, 5]]}]}', "ends before it starts"),
])
def test_a_bad_hand_edit_is_refused_naming_the_file_the_line_and_the_fix(tmp_path, line, why):
    path = tmp_path / "EP.jsonl"
    good = rec.new_record("hide", tracks=anchors(episode(), [0]))
    path.write_text("# my corrections\n\n" + json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(FacepipeError) as err:
        rec.parse(path)
    message = str(err.value)
    assert message.startswith(f"{path}:4: ") and why in message and "fix the line" in message
    assert "\n" not in message


def _append_many(args):
    path, worker, count = args
    tracks = episode()
    for k in range(count):
        rec.append(path, rec.new_record("name", tracks=anchors(tracks, [worker % 6]), name=f"w{worker}-{k}"))


def test_concurrent_writers_lose_nothing_and_readers_never_see_half_a_line(tmp_path):
    path = tmp_path / "EP.jsonl"
    workers, each = 8, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        reads = pool.map_async(_append_many, [(path, w, each) for w in range(workers)])
        seen = 0
        while not reads.ready():  # a reader meanwhile: every read parses whole
            seen = max(seen, len(rec.parse(path)))
        reads.get()
    names = {r.data["name"] for r in rec.parse(path)}
    assert names == {f"w{w}-{k}" for w in range(workers) for k in range(each)}


def test_a_full_disk_while_recording_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "EP.jsonl"
    rec.append(path, rec.new_record("hide", tracks=anchors(episode(), [0])))
    before = path.read_bytes()
    # A child whose file size limit is what the file holds now: the next write fails as on a
    # full disk (EFBIG where ENOSPC would be).
    code = (f"import resource, signal, sys\n"
            f"signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 10}, {len(before) + 10}))\n"
            f"from facepipe.base import corrections as rec\n"
            f"from test_corrections import anchors, episode\n"
            f"rec.append({str(path)!r}, rec.new_record('name', tracks=anchors(episode(), [1, 2, 3]), name='x'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(Path(__file__).parent))
    assert proc.returncode != 0 and "File too large" in proc.stderr, proc.stderr[-2000:]
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_season_linking_keeps_what_the_user_put_together_and_apart():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(3, 16))
    points = np.concatenate([base + 0.01 * rng.normal(size=(3, 16)) for _ in range(2)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert link(points, {}, 0.05) == [[0, 3], [1, 4], [2, 5]]
    # the user merged two cast members (0+3 and 1+4: far apart) and split 5 off 2
    assert link(points, {2: {5}, 5: {2}}, 0.05, [[0, 1, 3, 4]]) == [[0, 1, 3, 4], [2], [5]]


@pytest.mark.parametrize("truth, pred, count", [
    ("aabbcc", [0, 0, 1, 1, 2, 2], 0),   # right already
    ("aabbcc", [0, 0, 0, 0, 1, 1], 1),   # two people in one cluster: one split
    ("aaaabb", [0, 0, 1, 1, 2, 2], 1),   # one person in two clusters: one merge
    ("aaaaaa", [0, 1, 2, 3, 4, 5], 1),   # in six: still one merge (it takes them all)
    ("aab", [0, 1, 1], 1),               # a tie: move the stray a into the other a's cluster
    ("aabbab", [0, 0, 1, 1, 2, 2], 2),   # cluster 2 holds an a and a b: split b into 1, merge 2 into 0
])
def test_corrections_to_truth_counts_what_a_perfect_user_would_do(truth, pred, count):
    from facepipe.tools.evaluate import corrections_to_truth

    assert corrections_to_truth(list(truth), pred)["total"] == count

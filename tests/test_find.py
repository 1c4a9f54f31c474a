"""facepipe find: a face's episodes and seasons from the embeddings already built.

The unit tests below build tiny data roots by hand (no models, no media); the real ones search
the season_run fixture (LFW_S01 and JOHNS_S01, built with the defaults: dlib) with shared photos.
make_season deals every photo of a person to the episodes, so no photo of theirs is left out of
the slideshows: a person in every episode is searched with one photo, shown in one episode only,
and must be found in the two where other photos of them are shown; a person absent from one
episode must not be found there; the reference photos (biden, Alex Lacamoire) are of people in
none of the episodes.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from facepipe.base.errors import FacepipeError
from facepipe.base.layout import EpisodePaths, SeasonPaths
from facepipe.tools import find as F
from facepipe.tools.cli import main
from helpers import SHARED

LFW, JOHNS, REFERENCE = SHARED / "faces" / "lfw10", SHARED / "faces" / "johns", SHARED / "faces" / "reference"


# --- without media: photos checked, the index, the text -----------------------------------------

def test_a_photo_is_checked_before_any_model_loads(tmp_path, monkeypatch, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a jpeg")
    for path, says in ((tmp_path / "missing.jpg", "photo not found"), (text, r"not a photo \(\.bmp"),
                       (fake, "not an image facepipe can read")):
        with pytest.raises(FacepipeError, match=says):
            F.read_photo(path)
        assert main(["find", str(path), "--data-root", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"facepipe: {path}: ") and "; give " in err, err
    with pytest.raises(FacepipeError, match="upload.png: not an image"):
        F.decode_photo(b"\x89PNG broken", "upload.png")
    monkeypatch.setattr(F, "MAX_PHOTO_BYTES", 4)
    with pytest.raises(FacepipeError, match="big.jpg: .* MB, more than the .* a search photo may be"):
        F.decode_photo(b"12345", "big.jpg")


def test_stays_on_screen_are_merged_where_they_touch():
    assert F.merge_spans([(5.0, 6.0), (0.0, 1.0), (1.0, 2.5), (2.0, 3.0)]) == [[0.0, 3.0], [5.0, 6.0]]
    assert F.merge_spans([]) == []


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _episode(root, ep, clusters, hidden=()):
    """clusters: cluster id -> [(track id, [still vectors], start_s, end_s)]."""
    paths = EpisodePaths(root, ep)
    paths.harvest.mkdir(parents=True)
    vectors, tids, files, quality, out, rows = [], [], [], [], [], ["cluster_id,person_id,name,track_id,start_s,end_s,"
                                                                    "seconds,hidden"]
    for cid, tracks in clusters.items():
        for tid, stills, start, end in tracks:
            for k, v in enumerate(stills):
                vectors.append(v)
                tids.append(tid)
                files.append(f"track{tid:05d}_{k}.jpg")
                quality.append(0.5 + 0.1 * k)
            rows.append(f"{cid},p{cid},,{tid},{start:.3f},{end:.3f},{end - start:.3f},false")
        out.append({"cluster_id": cid, "track_ids": [t[0] for t in tracks], "screen_time_s": 1.0,
                    **({"hidden": True} if cid in hidden else {}), **({"name": "Ada"} if cid == 0 else {})})
    np.savez(paths.embeddings, vectors=np.asarray(vectors, np.float32), track_ids=np.asarray(tids),
             files=np.asarray(files), quality=np.asarray(quality, np.float32), embedder=np.array("dlib"))
    paths.clusters.write_text(json.dumps({"episode": ep, "embedder": "dlib", "clusters": out}))
    paths.appearances.write_text("\n".join(rows) + "\n")


def test_the_index_finds_the_nearest_clusters_and_reads_again_only_what_changed(tmp_path):
    root = tmp_path / "data"
    face, other = _unit([1, 0, 0, 0]), _unit([0, 1, 0, 0])
    near, nearer = _unit([1, 0.2, 0, 0]), _unit([1, 0.1, 0, 0])  # about 0.020 and 0.005 from the face
    _episode(root, "S_S01_E01", {0: [(1, [other, near], 10.0, 12.0), (4, [near], 11.5, 13.0), (7, [near], 20.0, 21.0)],
                                 1: [(2, [other], 0.0, 1.0)]})
    _episode(root, "S_S01_E02", {0: [(3, [nearer, other], 5.0, 6.0)], 1: [(5, [nearer], 7.0, 8.0)]}, hidden={1})
    (EpisodePaths(root, "S_S01_E03").harvest).mkdir(parents=True)  # not clustered yet: not searched
    _episode(root, "S_S01_E04", {})  # no face at all: searched, found nowhere
    cast = SeasonPaths(root, "S_S01").cast
    cast.parent.mkdir(parents=True)
    cast.write_text(json.dumps({"season": "S_S01", "cast": [
        {"cast_id": 0, "name": "Ada", "hidden": False, "appearances": [{"episode": "S_S01_E01", "cluster_ids": [0]},
                                                                        {"episode": "S_S01_E02", "cluster_ids": [0]}]},
        {"cast_id": 1, "hidden": True, "appearances": [{"episode": "S_S01_E01", "cluster_ids": [1]}]}]}))
    index = F.FaceIndex(root).refresh()
    assert index.episodes == ["S_S01_E01", "S_S01_E02", "S_S01_E04"] and index.reads == 3
    query = {"dlib": np.stack([face]).astype(np.float32)}
    found = index.search(query, {"dlib": 0.07}, ["me.jpg"])
    assert [(m["episode"], m["cluster_id"]) for m in found] == [("S_S01_E02", 0), ("S_S01_E01", 0)]  # nearest first
    e2, e1 = found
    assert e2["distance"] == pytest.approx(1 - nearer[0], abs=1e-4) and e2["distance"] < e1["distance"]
    assert e1["start_s"] == 10.0 and e1["end_s"] == 21.0 and e1["appearances"] == [[10.0, 13.0], [20.0, 21.0]]
    assert e1["best_still"] == "harvest/S_S01_E01/stills/track00001_1.jpg"  # the highest quality of its stills
    assert e1["season"] == {"season": "S_S01", "cast_id": 0, "name": "Ada"} and e1["name"] == "Ada"
    assert e1["photo"] == "me.jpg" and tuple(e1) == F.MATCH_FIELDS
    # beyond the threshold: nothing; the hidden cluster and the hidden cast member never
    assert index.search(query, {"dlib": 0.001}) == []
    assert not [m for m in index.search({"dlib": np.stack([other]).astype(np.float32)}, {"dlib": 0.07})
                if m["cluster_id"] == 1]
    # warm: nothing read again; one episode changed: that one; one removed: gone; one broken: skipped, named
    index.refresh()
    assert index.reads == 3
    clusters = EpisodePaths(root, "S_S01_E02").clusters
    os.utime(clusters, ns=(clusters.stat().st_mtime_ns + 10**9,) * 2)
    assert index.refresh().reads == 4
    EpisodePaths(root, "S_S01_E02").embeddings.write_bytes(b"broken")
    index.refresh()
    assert index.episodes == ["S_S01_E01", "S_S01_E04"] and index.skipped[0][0] == "S_S01_E02"
    assert "run snakemake cluster_target" in index.skipped[0][1]
    EpisodePaths(root, "S_S01_E01").clusters.unlink()
    assert index.refresh().episodes == ["S_S01_E04"] and index.search(query, {"dlib": 0.07}) == []


def test_the_text_fits_80_columns_and_says_when_the_face_is_nowhere():
    match = {"episode": "RHOBH_S05_E03_11062025", "cluster_id": 12, "person_id": "p1",
             "name": "Lisa Vanderpump-Todd of Beverly Hills", "distance": 0.0213, "start_s": 65.0, "end_s": 2590.5,
             "appearances": [[65.0, 70.0], [2580.0, 2590.5]], "screen_time_s": 15.5,
             "best_still": "harvest/RHOBH_S05_E03_11062025/stills/track00012_0_f001234.jpg", "photo": "a.jpg",
             "season": {"season": "RHOBH_S05", "cast_id": 3, "name": "Lisa"}}
    found = F.Search([match], 22, "/data", ["a.jpg"], {"dlib": 0.07},
                     [{"season": "RHOBH_S05", "cast_id": 3, "name": "Lisa", "episodes": [match["episode"]] * 9,
                       "distance": 0.0213}])
    lines = F.render_text(found)
    print("\n".join(lines))
    assert all(len(line) <= F.WIDTH for line in lines), lines
    assert lines[2].startswith("0.021  RHOBH_S05_E03_11062025  #12 Lisa") and lines[2].endswith("1:05-43:10 (2x)")
    assert lines[3] == " " * 7 + "track00012_0_f001234.jpg"  # a long episode id: the still on a line of its own
    assert lines[4].startswith("season RHOBH_S05: cast member 3")
    short = F.render_text(F.Search([{**match, "episode": "LFW_S01_E01"}], 22, "/data", ["a.jpg"], {"dlib": 0.07}))
    assert len(short) == 3 and short[2].startswith("0.021  LFW_S01_E01  #12 Lisa")
    assert short[2].endswith("  1:05-43:10 (2x)  track00012_0_f001234.jpg") and len(short[2]) <= F.WIDTH
    empty = F.render_text(F.Search([], 22, "/data", ["a.jpg"], {"dlib": 0.07}))
    assert empty == ["no match: this face appears in none of the 22 episodes under /data"]


# --- on a built season --------------------------------------------------------------------------

def _find(work, *photos) -> list[dict]:
    return F.find(list(photos), work / "data", None, F.FaceIndex(work / "data")).matches


def _overlaps(span, shots) -> bool:
    return any(span[0] < s["t1"] and s["t0"] < span[1] for s in shots)


def _shots(labels, ep, person):
    return [s for s in labels["episodes"][ep]["shots"] if s["name"] == person]


@pytest.mark.parametrize("person, photo, season, episodes", [
    # in every episode; this photo is shown in E01 only, other photos of his in E02 and E03
    ("Ariel_Sharon", LFW / "Ariel_Sharon" / "Ariel_Sharon_0001.jpg", "LFW_S01", ["E01", "E02", "E03"]),
    ("Arnold_Schwarzenegger", LFW / "Arnold_Schwarzenegger" / "Arnold_Schwarzenegger_0002.jpg", "LFW_S01",
     ["E01", "E03"]),  # not in E02
    ("John_Simm", JOHNS / "John_Simm" / "000297_00470170.jpg", "JOHNS_S01", ["E01", "E03"]),  # not in E02
])
def test_a_person_is_found_in_the_episodes_they_are_in_nearest_first(season_run, person, photo, season, episodes):
    work, labels = season_run
    matches = _find(work, photo)
    print(person, [(m["episode"], m["cluster_id"], m["distance"]) for m in matches])
    assert sorted({m["episode"] for m in matches}) == [f"{season}_{e}" for e in episodes]
    assert [m["distance"] for m in matches] == sorted(m["distance"] for m in matches)
    assert all(m["distance"] < 0.07 for m in matches)
    for ep in {m["episode"] for m in matches}:
        shots, mine = _shots(labels[season], ep, person), [m for m in matches if m["episode"] == ep]
        spans = [span for m in mine for span in m["appearances"]]
        # every stay found is one of theirs, and most of their shots are found
        assert all(_overlaps(span, shots) for span in spans), (ep, spans, shots)
        assert sum(_overlaps([s["t0"], s["t1"]], [{"t0": a, "t1": b} for a, b in spans]) for s in shots) \
            >= 0.75 * len(shots), (ep, spans, shots)
        for m in mine:
            assert m["start_s"] == m["appearances"][0][0] and m["end_s"] == max(b for _a, b in m["appearances"])
            assert (work / "data" / m["best_still"]).is_file()
    cast_ids = {m["season"]["cast_id"] for m in matches if m["season"]}
    assert {m["season"]["season"] for m in matches} == {season} and len(cast_ids) == 1  # one cast member


def test_someone_in_no_episode_is_found_nowhere_and_the_text_says_so(season_run, capsys):
    work, _labels = season_run
    data = str(work / "data")
    config = ["--config", str(work / "test-config.yaml"), "--data-root", data]
    for photo in (REFERENCE / "biden.jpg", REFERENCE / "alex-lacamoire.png"):
        assert main(["find", str(photo), "--json", *config]) == 0
        assert json.loads(capsys.readouterr().out) == []
        assert main(["find", str(photo), *config]) == 0
        assert capsys.readouterr().out == f"no match: this face appears in none of the 6 episodes under {data}\n"


def test_find_json_lists_the_matches(season_run, capsys, tmp_path):
    work, _labels = season_run
    config = ["--config", str(work / "test-config.yaml"), "--data-root", str(work / "data")]
    photos = [str(LFW / "Tony_Blair" / "Tony_Blair_0003.jpg"), str(LFW / "Tony_Blair" / "Tony_Blair_0005.jpg")]
    assert main(["find", *photos, "--json", *config]) == 0
    matches = json.loads(capsys.readouterr().out)
    assert matches and isinstance(matches, list)
    for m in matches:
        assert set(m) == set(F.MATCH_FIELDS)
        assert isinstance(m["episode"], str) and isinstance(m["cluster_id"], int)
        assert isinstance(m["distance"], float) and 0 <= m["distance"] < 0.07
        assert 0 <= m["start_s"] < m["end_s"] and all(a < b for a, b in m["appearances"])
        assert m["photo"] in photos and m["season"]["season"] == "LFW_S01"
    assert main(["find", *photos, *config]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith(f"{len(matches)} match") and all(len(line) <= 80 for line in text[1:]), text
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    assert main(["find", str(blank), *config]) == 2
    assert capsys.readouterr().err == f"facepipe: {blank}: no face found; give a photo where the face is clear " \
                                      "and not too small\n"

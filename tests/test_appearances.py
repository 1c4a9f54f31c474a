"""Who is on screen when, and charts people can read.

- appearances: one row per track, the timeline and the WebVTT cues of an episode, on synthetic
  episodes (a 44-minute one with 30 people) and on the built shared videos; a correction redraws
  them, as make would.
- the season's screen for everyone: every person with screen time is in the cast, recurring first,
  then those seen in one episode; two clusters of one episode are never one cast member unless the
  user merged them.
- the charts, drawn for 22 episodes x 40 people and for the 44-minute episode, saved under
  test-artifacts/ ($FACEPIPE_ARTIFACTS) for a person to look at, and checked for what a reader
  needs: the whole title inside the figure, no two labels on top of each other, names where known,
  seconds to the data's precision.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re

import cv2
import numpy as np
import pytest

from facepipe.base import chart, sheet
from facepipe.stages import appearances as app
from facepipe.stages.cluster import track_screen_time
from facepipe.stages.season import EpisodeClusters, build_cast, cast_summary, link, report, write_csv
from helpers import ARTIFACTS, facepipe, jobs, paths, snakemake

NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra", "Barbara Liskov",
         "Donald Knuth", "Maximilian Alexander von Humboldt-Sternberg", "Frances Allen", "Margaret Hamilton"]


def artifact(name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# --- synthetic episodes --------------------------------------------------------------------------

def detections(t0: float, seconds: float, fps: float = 4.0, x: float = 10.0) -> list[dict]:
    return [{"frame": int(round((t0 + k / fps) * 25)), "t": round(t0 + k / fps, 3), "box": [x, 10, x + 40, 50],
             "score": 0.99} for k in range(max(2, int(round(seconds * fps))))]


def long_episode(minutes: int = 44, people: int = 30, seed: int = 0):
    """A TV-length episode: `people` people, a few on screen most of the time, the others briefly,
    every third named, the last hidden, and some unassigned faces: (clusters, tracks, video)."""
    rng = random.Random(seed)
    length, fps = minutes * 60.0, 4.0
    tracks, groups = [], []
    for p in range(people):
        mine = []
        for _ in range(max(2, int(120 / (p + 1)))):
            tracks.append({"track_id": len(tracks),
                           "detections": detections(round(rng.uniform(0, length - 20), 2), rng.uniform(1, 15))})
            mine.append(tracks[-1]["track_id"])
        groups.append(mine)
    unassigned = []
    for _ in range(15):
        tracks.append({"track_id": len(tracks), "detections": detections(round(rng.uniform(0, length - 5), 2), 0.5)})
        unassigned.append(tracks[-1]["track_id"])
    by_id = {t["track_id"]: t for t in tracks}
    clusters = [{"track_ids": g, "screen_time_s": round(sum(track_screen_time(by_id[t], fps) for t in g), 3)}
                for g in groups]
    clusters.sort(key=lambda c: -c["screen_time_s"])
    for k, c in enumerate(clusters):
        c.update(cluster_id=k, person_id=f"p{k:06x}", hidden=k == people - 1)
        if k % 3 == 0 and k // 3 < len(NAMES):
            c.update(name=NAMES[k // 3], named_by="user")
    ep = "RHOBH_S05_E03_11062025"
    return ({"episode": ep, "embedder": "dlib", "clusters": clusters, "unassigned_track_ids": unassigned},
            {"episode": ep, "sample_fps": fps, "tracks": tracks}, {"fps": 25.0, "frame_count": int(length * 25)})


def small_episode():
    """Three people: Ada (cluster 0) and person 1 side by side, a hidden person 2, an unassigned face."""
    tracks = [{"track_id": 0, "detections": detections(0.0, 4.0)},
              {"track_id": 1, "detections": detections(2.0, 4.0, x=300)},
              {"track_id": 2, "detections": detections(4.25, 2.0)},  # Ada again, one sample after her last
              {"track_id": 3, "detections": detections(10.0, 2.0)},
              {"track_id": 4, "detections": detections(20.0, 0.5)}]
    clusters = {"episode": "EP", "embedder": "dlib", "unassigned_track_ids": [4], "clusters": [
        {"cluster_id": 0, "track_ids": [0, 2], "screen_time_s": 6.0, "person_id": "pa", "name": "Ada <&>",
         "named_by": "user", "hidden": False},
        {"cluster_id": 1, "track_ids": [1], "screen_time_s": 4.0, "person_id": "pb", "hidden": False},
        {"cluster_id": 2, "track_ids": [3], "screen_time_s": 2.0, "person_id": "pc", "hidden": True}]}
    return clusters, {"episode": "EP", "sample_fps": 4.0, "tracks": tracks}, {"fps": 25.0, "frame_count": 25 * 30}


def test_one_row_per_track_with_its_person_and_times(tmp_path):
    clusters, tracks, _video = small_episode()
    rows = app.appearances(clusters, tracks)
    app.write_csv(rows, tmp_path / "a.csv")
    read = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert list(read[0]) == app.COLUMNS
    assert [r["track_id"] for r in read] == ["0", "1", "2", "3", "4"]  # in time order
    by_track = {int(r["track_id"]): r for r in read}
    assert (by_track[0]["cluster_id"], by_track[0]["person_id"], by_track[0]["name"]) == ("0", "pa", "Ada <&>")
    assert by_track[4]["cluster_id"] == by_track[4]["person_id"] == by_track[4]["name"] == ""  # unassigned
    assert by_track[3]["hidden"] == "true" and by_track[0]["hidden"] == "false"
    for t in tracks["tracks"]:
        r = by_track[t["track_id"]]
        assert float(r["seconds"]) == pytest.approx(track_screen_time(t, 4.0), abs=1e-3)
        assert float(r["start_s"]) == t["detections"][0]["t"]
        assert float(r["end_s"]) == pytest.approx(float(r["start_s"]) + float(r["seconds"]), abs=1e-3)
    for c in clusters["clusters"]:  # the rows add up to the clusters' screen time
        assert sum(float(r["seconds"]) for r in read if r["cluster_id"] == str(c["cluster_id"])) == \
            pytest.approx(c["screen_time_s"], abs=1e-3)


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT\n\n")
    def seconds(stamp):
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.splitlines()
        if lines[0].startswith("NOTE"):
            continue
        m = re.fullmatch(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)", lines[1])
        assert lines[0].isdigit() and m and len(lines) == 3, block
        cues.append((seconds(m.group(1)), seconds(m.group(2)), lines[2]))
    return cues


def test_the_webvtt_says_who_is_on_screen_leaving_hidden_people_out():
    clusters, tracks, _video = small_episode()
    cues = parse_vtt(app.vtt(clusters, app.appearances(clusters, tracks), 4.0))
    # Ada's two tracks, one sample apart, are one stay; person 1 joins her at 2 s; the hidden
    # person at 10 s and the unassigned face at 20 s are no one's cue.
    assert cues == [(0.0, 2.0, "Ada &lt;&amp;&gt;"), (2.0, 6.0, "Ada &lt;&amp;&gt;, person 1"),
                    (6.0, 6.25, "Ada &lt;&amp;&gt;")]
    # on the file's clock: a video stream that starts 0.852 s into its file moves every cue
    later = parse_vtt(app.vtt(clusters, app.appearances(clusters, tracks), 4.0, 0.852))
    assert [(a, b) for a, b, _ in later] == [(0.852, 2.852), (2.852, 6.852), (6.852, 7.102)]
    # one shot's track counts a sample interval past its last detection, into the next shot's
    # first 0.01 s: no cue of 0.01 s with both people
    rows = [{"cluster_id": 0, "hidden": False, "start_s": 0.0, "end_s": 1.01},
            {"cluster_id": 1, "hidden": False, "start_s": 1.0, "end_s": 2.01}]
    assert app.cues(clusters, rows, 4.0) == [(0.0, 1.0, ["Ada <&>"]), (1.0, 2.01, ["person 1"])]
    long_clusters, long_tracks, _video = long_episode()
    cues = parse_vtt(app.vtt(long_clusters, app.appearances(long_clusters, long_tracks), 4.0))
    assert all(a < b for a, b, _ in cues) and all(b1 <= a2 for (_a1, b1, _), (a2, _b2, _) in zip(cues, cues[1:]))
    hidden = app.person_label(long_clusters["clusters"][-1])
    assert not any(hidden in text.split(", ") for _a, _b, text in cues)
    assert any(", " in text for _a, _b, text in cues) and any(NAMES[0] in text for _a, _b, text in cues)


def test_the_timeline_of_a_44_minute_episode_with_30_people_is_readable():
    plt = chart.pyplot()
    clusters, tracks, video = long_episode()
    rows = app.appearances(clusters, tracks)
    fig = app.draw_timeline(clusters, rows, video)
    ax = fig.axes[0]
    fig.canvas.draw()
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    shown = [c for c in clusters["clusters"] if not c["hidden"]]
    assert lanes == [chart.shorten(app.person_label(c), app.NAME_CHARS) for c in shown] + ["unassigned faces"]
    assert lanes[0] == NAMES[0] and "person 1" in lanes and NAMES[7][:10] in " ".join(lanes)
    right = ax.child_axes[0].get_yticklabels()  # the seconds on screen, on the right
    assert right[0].get_text() == chart.clock(shown[0]["screen_time_s"], 2)
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks[0] == "0:00" and ticks[-1] == "40:00" and all(re.fullmatch(r"\d+:\d\d", t) for t in ticks)
    for texts in (ax.get_yticklabels(), right, ax.get_xticklabels()):
        assert chart.collisions(fig, texts) == []
    heading = fig.texts[0]  # the title
    assert chart.outside(fig, [heading, *ax.get_yticklabels(), *right, ax.xaxis.label]) == []
    assert heading.get_text().endswith("who is on screen when (29 people, 44:00)")
    width, height = fig.canvas.get_width_height()
    assert width >= 1200 and height / len(lanes) >= 25  # a lane at least 25 px high
    fig.savefig(artifact("timeline-44min-30people.png"), dpi=chart.DPI)
    plt.close(fig)
    clusters, tracks, video = small_episode()
    app.write_timeline(clusters, app.appearances(clusters, tracks), video, artifact("timeline-small.png"))
    assert cv2.imread(str(artifact("timeline-small.png"))) is not None


# --- the season: everyone with screen time -----------------------------------------------------

def season_of(people_per_episode: list[list[int]], dims: int = 16, seed: int = 0, split: dict | None = None):
    """Synthetic episodes: episode k shows the people people_per_episode[k] (one cluster each, a
    person's clusters near each other); `split` {(episode, person): n} gives a person n clusters in
    that episode. Returns EpisodeClusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1 + max(p for e in people_per_episode for p in e), dims))
    episodes = []
    for k, people in enumerate(people_per_episode):
        clusters, points = [], []
        for p in people:
            for _ in range((split or {}).get((k, p), 1)):
                v = centres[p] + 0.03 * rng.normal(size=dims)
                points.append(v / np.linalg.norm(v))
                tid = len(clusters)
                clusters.append({"cluster_id": tid, "track_ids": [tid], "screen_time_s": 10.0 + p, "person": p})
        tracks = {"episode": f"S_S01_E{k + 1:02d}", "sample_fps": 4.0,
                  "tracks": [{"track_id": c["cluster_id"], "detections": detections(10.0 * c["cluster_id"], 2.0)}
                             for c in clusters]}
        episodes.append(EpisodeClusters(f"S_S01_E{k + 1:02d}", {"episode": f"S_S01_E{k + 1:02d}", "embedder": "dlib",
                                                                 "clusters": clusters},
                                        np.asarray(points), [np.asarray([pt]) for pt in points],
                                        [None] * len(clusters), [], tracks))
    return episodes


def people_of(cast, episodes):
    person = {(e.episode, c["cluster_id"]): c["person"] for e in episodes for c in e.clusters["clusters"]}
    return [sorted({person[(a["episode"], cid)] for a in m["appearances"] for cid in a["cluster_ids"]})
            for m in cast["cast"]]


def test_six_people_in_two_episodes_are_all_on_screen_and_said_so(tmp_path):
    episodes = season_of([[0, 1, 2], [3, 4, 5]])
    cast = build_cast("S_S01", episodes, 0.08)
    assert len(cast["cast"]) == 6 and not any(m["recurring"] for m in cast["cast"])
    assert cast_summary(cast) == cast["summary"] == "0 recurring cast members, 6 seen in one episode"
    write_csv(cast, tmp_path / "screen_time.csv")
    rows = list(csv.reader((tmp_path / "screen_time.csv").open()))
    assert rows[0] == ["cast_id", "name", "recurring", "total_s", "S_S01_E01", "S_S01_E02"] and len(rows) == 7
    episodes = season_of([[0, 1, 2, 3], [0, 1, 4], [2, 3, 5]], seed=1)
    cast = build_cast("S_S01", episodes, 0.08)
    assert [m["recurring"] for m in cast["cast"]] == [True] * 4 + [False] * 2  # recurring first
    assert cast_summary(cast) == "4 recurring cast members, 2 seen in one episode"
    for part in (cast["cast"][:4], cast["cast"][4:]):
        assert [m["screen_time_s"] for m in part] == sorted((m["screen_time_s"] for m in part), reverse=True)


def test_two_clusters_of_one_episode_are_never_one_cast_member_unless_the_user_says_so():
    # person 1 is split in two clusters in episode 1 (very near each other); people 2 and 3 are near
    episodes = season_of([[0, 1, 2], [0, 1, 3]], split={(1, 1): 2}, seed=2)
    cast = build_cast("S_S01", episodes, 0.5)  # so loose a threshold that, without the rule, all would join
    assert all(len(a["cluster_ids"]) == 1 for m in cast["cast"] for a in m["appearances"])
    assert all(len(p) == 1 for p in people_of(cast, episodes))  # no cast member holds two people
    loose = build_cast("S_S01", episodes, 0.5, within_episode=True)  # the rule before
    assert any(len(a["cluster_ids"]) > 1 for m in loose["cast"] for a in m["appearances"])
    # link() on its own: items of one episode stay apart, unless a `together` group joins them
    points = np.asarray([[1.0, 0.0], [0.999, 0.045], [0.998, 0.063]])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert link(points, {}, 0.1) == [[0, 1, 2]]
    assert link(points, {}, 0.1, apart=np.array(["E1", "E1", "E2"])) in ([[0, 2], [1]], [[0], [1, 2]])
    assert link(points, {}, 0.1, [[0, 1]], apart=np.array(["E1", "E1", "E2"])) == [[0, 1, 2]]


# --- the charts ------------------------------------------------------------------------------------

def synthetic_cast(episodes: int = 22, people: int = 40, once: int = 10, seed: int = 1, prefix: str = "RHOBH_S05_E"):
    rng = random.Random(seed)
    eps = [f"{prefix}{k + 1:02d}" for k in range(episodes)]
    members = []
    for p in range(people + once):
        present = (sorted(rng.sample(range(episodes), rng.randint(2, episodes))) if p < people
                   else [rng.randrange(episodes)])
        apps = [{"episode": eps[k], "cluster_ids": [0], "screen_time_s": rng.randint(4, 2400) * 0.25,
                 "best_still": None} for k in present]
        m = {"screen_time_s": round(sum(a["screen_time_s"] for a in apps), 3), "recurring": p < people,
             "appearances": apps, "hidden": p == people + once - 1}
        if p % 2 == 0 and p // 2 < len(NAMES):
            m["name"] = NAMES[p // 2]
        members.append(m)
    members.sort(key=lambda m: (m["hidden"], not m["recurring"], -m["screen_time_s"]))
    return {"season": prefix[:-2], "episodes": eps, "embedder": "dlib", "threshold": 0.08,
            "cast": [{"cast_id": k, **m} for k, m in enumerate(members)]}


@pytest.mark.parametrize("episodes, people, once", [(22, 40, 10), (3, 8, 4), (1, 0, 2), (0, 0, 0)])
def test_the_screen_time_chart_is_readable(episodes, people, once, tmp_path):
    plt = chart.pyplot()
    cast = synthetic_cast(episodes, people, once, prefix="RHOBH_S05_E" if episodes > 3 else "LFW_S01_E")
    fig = report.draw_chart(cast)
    fig.canvas.draw()
    ax = fig.axes[0]
    heading = fig.texts[0]  # the title
    assert chart.outside(fig, [heading, *ax.get_yticklabels(), *ax.get_xticklabels(), ax.xaxis.label]) == []
    assert cast["season"] in heading.get_text() and "seen in one episode" in heading.get_text()
    assert chart.collisions(fig, [heading, *ax.get_xticklabels(), ax.xaxis.label]) == []
    assert chart.collisions(fig, ax.get_yticklabels()) == []
    cells = [t for t in ax.texts]
    assert chart.collisions(fig, cells) == []
    shown = [m for m in cast["cast"] if not m["hidden"]][:report.CHART_MAX_CAST]
    assert [t.get_text() for t in ax.get_yticklabels()] == [report.label(m) for m in shown]
    if shown:
        assert any(NAMES[0] in t.get_text() for t in ax.get_yticklabels())  # names where known
        values = {f"{a['screen_time_s']:.2f}" for m in shown for a in m["appearances"]}
        assert {t.get_text() for t in cells} <= values and len(cells) == sum(len(m["appearances"]) for m in shown)
        assert any(t.get_text().endswith((".25", ".75")) for t in cells)  # quarter seconds, as the data has them
        if episodes > 1:
            assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["E01", "E02"]
    width, height = fig.canvas.get_width_height()
    assert width <= 3000 and height <= 1600 and width >= 600
    fig.savefig(artifact(f"screen_time-{episodes}ep-{people + once}people.png"), dpi=chart.DPI)
    plt.close(fig)
    report.write_chart(cast, tmp_path / "chart.png")
    assert cv2.imread(str(tmp_path / "chart.png")) is not None


def test_the_csv_and_the_cast_sheet_keep_the_data_s_precision_and_use_their_width(tmp_path):
    cast = synthetic_cast(3, 8, 4, prefix="LFW_S01_E")
    write_csv(cast, tmp_path / "st.csv")
    rows = list(csv.reader((tmp_path / "st.csv").open()))
    shown = [m for m in cast["cast"] if not m["hidden"]]
    assert len(rows) == len(shown) + 1 and [r[0] for r in rows[1:]] == [str(m["cast_id"]) for m in shown]
    assert rows[1][3] == f"{shown[0]['screen_time_s']:.2f}"  # 2.75 stays 2.75
    assert [r[2] for r in rows[1:]] == ["true"] * 8 + ["false"] * 3
    report.write_cast_sheet(cast, tmp_path, artifact("cast-3ep.jpg"))
    img = cv2.imread(str(artifact("cast-3ep.jpg")))
    most = max(len(m["appearances"]) for m in shown)
    assert img.shape[1] == sheet.sheet_width(sheet.fit_columns(f"{cast['season']}: {cast_summary(cast)} (dlib)", most,
                                                               report.MAX_EPISODES))
    assert img.shape[1] < sheet.sheet_width(report.MAX_EPISODES) / 2  # no empty half
    assert img.shape[0] == sheet.HEADER_H + len(shown) * (sheet.THUMB + 2 * sheet.PAD + sheet.CAPTION_H)
    report.write_cast_sheet(synthetic_cast(22, 40, 10), tmp_path, artifact("cast-22ep.jpg"))
    assert cv2.imread(str(artifact("cast-22ep.jpg"))).shape[1] == sheet.sheet_width(report.MAX_EPISODES)


# --- real runs -------------------------------------------------------------------------------------

@pytest.mark.media
def test_the_built_episodes_say_who_is_on_screen_and_a_correction_redraws_it(run_copy):
    for ep in ("hamilton_clip", "walking_and_pause"):
        p = paths(run_copy, ep)
        clusters = json.loads(p.clusters.read_text())
        rows = list(csv.DictReader(p.appearances.open()))
        tracks = json.loads(p.tracks.read_text())
        assert sorted(int(r["track_id"]) for r in rows) == sorted(t["track_id"] for t in tracks["tracks"])
        for c in clusters["clusters"]:
            mine = [r for r in rows if r["cluster_id"] == str(c["cluster_id"])]
            assert {r["person_id"] for r in mine} == {c["person_id"]}
            assert sum(float(r["seconds"]) for r in mine) == pytest.approx(c["screen_time_s"], abs=0.01)
        unassigned = {str(t) for t in clusters["unassigned_track_ids"]}
        assert {r["track_id"] for r in rows if r["cluster_id"] == ""} == unassigned
        assert parse_vtt(p.appearances_vtt.read_text())
        timeline = cv2.imread(str(p.timeline))
        assert timeline is not None and timeline.shape[1] >= 1200
        assert "people on screen in" in p.log("appearances").read_text() and p.benchmark("appearances").is_file()
    ep = "walking_and_pause"
    p = paths(run_copy, ep)
    before = {r["track_id"]: r for r in csv.DictReader(p.appearances.open())}
    facepipe("correct", ep, "hide", "0", "--data-root", str(run_copy / "data"))
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {("cluster", ep), ("appearances", ep)}, planned
    snakemake(run_copy, "cluster_target")
    clusters = json.loads(p.clusters.read_text())
    hidden = next(c for c in clusters["clusters"] if c["hidden"])
    after = {r["track_id"]: r for r in csv.DictReader(p.appearances.open())}
    assert {t for t, r in after.items() if r["hidden"] == "true"} == {str(t) for t in hidden["track_ids"]}
    assert before.keys() == after.keys()
    label = app.person_label(hidden)
    assert not any(label in text.split(", ") for _a, _b, text in parse_vtt(p.appearances_vtt.read_text()))


def test_a_title_wider_than_its_figure_is_wrapped_to_fit_inside_it():
    plt = chart.pyplot()
    fig = plt.figure(figsize=(4, 2), dpi=chart.DPI)
    words = "a season of very long episode names and a summary of who is in it " * 3
    heading = fig.suptitle(words.strip(), x=0.01, ha="left")
    chart.fit_title(fig, heading)
    assert heading.get_text().count("\n") >= 2 and heading.get_text().split() == words.split()
    assert chart.outside(fig, [heading]) == []
    plt.close(fig)


def test_long_episode_ids_are_turned_or_thinned_never_overlapping():
    plt = chart.pyplot()
    cast = synthetic_cast(22, 40, 10)
    dated = {ep: f"{ep}_{11062025 + 7 * k:08d}" for k, ep in enumerate(cast["episodes"])}
    cast["episodes"] = [dated[ep] for ep in cast["episodes"]]
    for m in cast["cast"]:
        for a in m["appearances"]:
            a["episode"] = dated[a["episode"]]
    fig = report.draw_chart(cast)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = ax.get_xticklabels()
    assert labels[0].get_text() == "E01_11062025" and labels[0].get_rotation() == 90
    assert chart.collisions(fig, [fig.texts[0], *labels, ax.xaxis.label]) == []
    assert chart.outside(fig, [fig.texts[0], *labels, *ax.get_yticklabels()]) == []
    fig.savefig(artifact("screen_time-22ep-dated-ids.png"), dpi=chart.DPI)
    plt.close(fig)

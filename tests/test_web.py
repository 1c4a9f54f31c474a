"""facepipe serve: its API and its security rules, through Starlette's TestClient on the real app
(its watcher, its planner's dry run, snakemake where a test starts a run), over a data root of
small stand-in outputs. The browser and whole runs: test_web_browser.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="facepipe serve needs the web extra: pip install -e '.[web]'")

from starlette.testclient import TestClient  # noqa: E402

from facepipe.base import clock  # noqa: E402
from facepipe.base.config import load  # noqa: E402
from facepipe.base.errors import FacepipeError  # noqa: E402
from facepipe.base.layout import STEP_OUTPUTS, EpisodePaths  # noqa: E402
from facepipe.base.unit import Unit  # noqa: E402
from facepipe.runtime import procinfo  # noqa: E402
from facepipe.runtime.registry import Registry  # noqa: E402
from facepipe.runtime.steps import STEPS  # noqa: E402
from facepipe.tools.web.app import create_app  # noqa: E402
from facepipe.tools.web.board import Plan, chips  # noqa: E402
from facepipe.tools.web.settings import Settings, checked_token, is_loopback  # noqa: E402
from helpers import REPO, SHARED_VIDEOS, need_media, wait_for  # noqa: E402

BASE = "http://127.0.0.1:8765"
ORIGIN = {"Origin": BASE}
ACTIONS = [f"/api/episodes/Ep_1/build/{s.name}" for s in STEPS] + ["/api/episodes/Ep_1/cancel"] + [
    "/api/episodes/Ep_1/corrections", "/api/seasons/other/corrections", "/api/seasons/other/build",
    "/api/seasons/other/cancel", "/api/find"]


def stand_in(root: Path) -> dict:
    """A site: videos Ep_1 (hamilton) and Ep_3 (the gif); Ep_1 with a still, a contact sheet and
    its manifest (which also lists a link leading out, and a name with `..`); Ep_2 (no video) with
    a half-written state and a garbage registry; a secret file outside the data root."""
    need_media()
    videos = root / "videos"
    videos.mkdir()
    (videos / "Ep_1.mp4").symlink_to(SHARED_VIDEOS / "hamilton_clip.mp4")
    (videos / "Ep_3.gif").symlink_to(SHARED_VIDEOS / "walking_and_pause.gif")
    data = root / "data"
    secret = root / "secret.txt"
    secret.write_text("not for the web")
    ep1 = EpisodePaths(data, "Ep_1")
    ep1.stills_dir.mkdir(parents=True)
    image = np.full((40, 40, 3), 128, np.uint8)
    cv2.imwrite(str(ep1.stills_dir / "track00000_0_f000001.jpg"), image)
    cv2.imwrite(str(ep1.stills_dir / "unlisted.jpg"), image)
    cv2.imwrite(str(ep1.contact_sheet), image)
    (ep1.stills_dir / "escape.jpg").symlink_to(secret)
    ep1.stills_manifest.write_text(json.dumps({"episode": "Ep_1", "stills": [
        {"file": "track00000_0_f000001.jpg", "track_id": 0, "quality": 0.9},
        {"file": "escape.jpg", "track_id": 0, "quality": 0.1},
        {"file": "../../../secret.txt", "track_id": 0, "quality": 0.1}]}))
    ep1.clusters.write_text(json.dumps({"episode": "Ep_1", "clusters": [
        {"cluster_id": 0, "track_ids": [0], "screen_time_s": 2.5, "name": "Someone"}], "unassigned_track_ids": []}))
    ep2 = EpisodePaths(data, "Ep_2")
    ep2.pipeline_state.parent.mkdir(parents=True)
    ep2.pipeline_state.write_text('{"episode": "Ep_2", "status": "runn')
    ep2.runtime.parent.mkdir(parents=True)
    ep2.runtime.write_bytes(b"\x00\x17garbage")
    config = root / "serve-config.yaml"
    config.write_text(f"videos_dir: {videos}\ndata_root: data\n")
    return {"root": root, "data": data, "config": config, "secret": secret}


def settings_for(site: dict, **options) -> Settings:
    return Settings.from_config(load(site["config"]), site["config"], workdir=site["root"], **options)


def rows(client) -> dict:
    return {r["episode"]: r for r in client.get("/api/episodes").json()["episodes"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    return stand_in(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(site):
    with TestClient(create_app(settings_for(site)), base_url=BASE) as c:
        wait_for(lambda: len(rows(c)) == 3, timeout=30, what="the watcher's first look")
        yield c


def test_episodes_come_from_the_videos_folder_and_the_data_root(client):
    shown = rows(client)
    assert sorted(shown) == ["Ep_1", "Ep_2", "Ep_3"]
    assert shown["Ep_1"]["video"] and shown["Ep_3"]["video"] and not shown["Ep_2"]["video"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/episodes/Ep_3").status_code == 200
    assert [r["episode"] for r in client.get("/api/episodes?status=new").json()["episodes"]] == ["Ep_1", "Ep_3"]


def test_damaged_state_files_are_a_warning_on_their_row_never_a_crash(client, site):
    ep2 = rows(client)["Ep_2"]
    assert sum("damaged" in w for w in ep2["warnings"]) == 2, ep2["warnings"]
    detail = client.get("/api/episodes/Ep_2")
    assert detail.status_code == 200 and detail.json()["row"]["warnings"] == ep2["warnings"]
    # A state file damaged while the server runs: the row says so, the server goes on.
    state = EpisodePaths(site["data"], "Ep_3").pipeline_state
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{\"status\": \"running\", \"pct\": 0.4")
    wait_for(lambda: any("damaged" in w for w in rows(client)["Ep_3"]["warnings"]), timeout=10,
             what="the damaged state on Ep_3's row")
    assert client.get("/").status_code == 200 and client.get("/api/episodes/Ep_3").status_code == 200
    state.unlink()


def test_unknown_episodes_are_404(client):
    for url in ("/api/episodes/Nope", "/episodes/Nope", "/api/episodes/Nope/plan", "/api/episodes/Nope/history",
                "/files/Nope/clusters.jpg", "/files/Nope/stills/a.jpg", "/api/episodes/..%2Fdata", "/episodes/Ep%201"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] and "\n" not in response.json()["error"]
    refused = client.post("/api/episodes/Nope/build/cluster", headers=ORIGIN)
    assert refused.status_code == 404 and "no episode 'Nope'" in refused.json()["error"]


@pytest.mark.parametrize("url", [
    "/files/Ep_1/stills/..%2F..%2F..%2Fsecret.txt",  # listed in the manifest, with ..
    "/files/Ep_1/stills/%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
    "/files/Ep_1/stills/..%252F..%252Fsecret.txt",  # encoded twice
    "/files/Ep_1/stills/%2Fetc%2Fpasswd",  # absolute
    "/files/Ep_1/stills//etc/passwd",
    "/files/Ep_1/stills/escape.jpg",  # a link in stills/ leading out of the data root, listed
    "/files/Ep_1/stills/unlisted.jpg",  # in the folder but not in the manifest
    "/files/Ep_1/stills/manifest.json",
    "/files/Ep_1/stills/",  # no listing
    "/files/Ep_1/",
    "/files/Ep_1/clusters.json",
    "/files/..%2F..%2Fsecret.txt/clusters.jpg",
    "/files/Ep_1/video/..%2F..%2F..%2Fsecret.txt",  # the video's address holds the episode id only
    "/files/Ep_1/Ep_1.mp4",
    "/files/Ep_1/video%2F..%2F..%2Fsecret.txt",
    "/files/..%2Fvideos%2FEp_1/video",
    "/files/Ep_2/video",  # no video
    "/files/Ep_1/appearances.csv",
    "/files/Ep_1/appearances.vtt",  # not built
    "/static/",
    "/static/..%2Fapp.py",
    "/static/%2E%2E/app.py",
])
def test_files_resolve_only_to_the_episodes_own_outputs(client, url):
    response = client.get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert b"not for the web" not in response.content and b"root:" not in response.content


def test_a_failed_state_shows_its_logs_tail_but_never_another_file(client, site):
    paths = EpisodePaths(site["data"], "Ep_3")
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    paths.log("track").write_text("facepipe track of Ep_3: starting\nTrackError: no detections\n")
    state = paths.pipeline_state
    cases = ((f"data/harvest/Ep_3/logs/{paths.log('track').name}", ["TrackError: no detections"]),
             (str(site["secret"]), []), ("/etc/passwd", []), (f"{paths.logs_dir}/../../../../secret.txt", []))
    for named, shown in cases:
        state.write_text(json.dumps({"episode": "Ep_3", "status": "error", "message": "Track failed", "log": named}))
        wait_for(lambda named=named: rows(client)["Ep_3"]["log"] == named, timeout=10,
                 what="the failed state on the row")
        tail = client.get("/api/episodes/Ep_3").json()["log_tail"]
        assert tail[-len(shown):] == shown if shown else tail == [], (named, tail)
    state.unlink()


def test_a_listed_still_and_the_contact_sheet_are_served(client):
    still = client.get("/files/Ep_1/stills/track00000_0_f000001.jpg")
    assert still.status_code == 200 and still.headers["content-type"] == "image/jpeg"
    assert still.content[:2] == b"\xff\xd8"
    assert client.get("/files/Ep_1/clusters.jpg").status_code == 200
    detail = client.get("/api/episodes/Ep_1").json()
    assert detail["clusters"][0]["name"] == "Someone" and detail["clusters"][0]["tracks"] == 1
    assert detail["clusters"][0]["stills"] == ["/files/Ep_1/stills/track00000_0_f000001.jpg"]
    assert detail["contact_sheet"].startswith("/files/Ep_1/clusters.jpg?v=")


def test_the_episodes_own_video_is_served_in_byte_ranges(client):
    whole = (SHARED_VIDEOS / "hamilton_clip.mp4").read_bytes()
    size = len(whole)
    full = client.get("/files/Ep_1/video")
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4" and full.content == whole
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get("/files/Ep_1/video", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert part.content == whole[1000:2000]
    tail = client.get("/files/Ep_1/video", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == whole[-100:]
    past = client.get("/files/Ep_1/video", headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    assert "the video has" in past.json()["error"]
    bad = client.get("/files/Ep_1/video", headers={"Range": "lines=1-2"})
    assert bad.status_code == 400 and "\n" not in bad.json()["error"]
    assert client.head("/files/Ep_1/video").headers["content-length"] == str(size)
    gif = client.get("/files/Ep_3/video", headers={"Range": "bytes=0-5"})
    assert gif.status_code == 206 and gif.headers["content-type"] == "image/gif" and gif.content == b"GIF89a"
    moments = client.get("/api/episodes/Ep_3/appearances").json()
    assert moments["video"] == {"url": "/files/Ep_3/video", "name": "Ep_3.gif", "type": "image/gif", "start_s": 0.0}
    clip = client.get("/api/episodes/Ep_1/appearances").json()["video"]
    assert clip["start_s"] == pytest.approx(0.852, abs=1e-3), "its audio starts first: frame 0 is 0.85 s in"
    assert not moments["built"] and moments["lanes"] == [] and moments["vtt"] is None
    assert client.get("/api/episodes/Ep_2/appearances").json()["video"] is None


def test_the_timeline_has_a_lane_per_person_shown_longest_first_and_the_captions_are_served(tmp_path):
    from facepipe.stages import appearances
    from facepipe.tools.web import moments

    paths = EpisodePaths(tmp_path / "data", "Ep_9")
    paths.harvest.mkdir(parents=True)
    tracks = {"episode": "Ep_9", "sample_fps": 4.0, "tracks": [_track(t, 3.0 * t, 20.0) for t in range(5)]}
    clusters = {"episode": "Ep_9", "unassigned_track_ids": [4], "clusters": [
        {"cluster_id": 0, "track_ids": [0], "screen_time_s": 2.0, "name": "Ada"},
        {"cluster_id": 1, "track_ids": [1, 2], "screen_time_s": 4.0},
        {"cluster_id": 2, "track_ids": [3], "screen_time_s": 2.0, "hidden": True}]}
    paths.clusters.write_text(json.dumps(clusters))
    paths.video_info.write_text(json.dumps({"fps": 25.0, "frame_count": 600}))
    rows = appearances.appearances(clusters, tracks)
    appearances.write_csv(rows, paths.appearances)
    appearances.write_vtt(clusters, rows, 4.0, paths.appearances_vtt)
    video = tmp_path / "Ep_9.webm"
    video.write_bytes(b"")
    shown = moments.timeline(paths, video)
    assert shown["built"] and shown["duration_s"] == 24.0 and shown["people"] == 2
    assert [(lane["label"], [t["track_id"] for t in lane["tracks"]]) for lane in shown["lanes"]] == [
        ("person 1", [1, 2]), ("Ada", [0]), ("unassigned faces", [4])], "longest first, the hidden one left out"
    assert shown["lanes"][0]["tracks"][0] == {"track_id": 1, "start_s": 3.0, "end_s": 5.0, "label": "person 1"}
    assert shown["video"]["type"] == "video/webm" and shown["vtt"].startswith("/files/Ep_9/appearances.vtt?v=")
    os.utime(paths.clusters)  # clusters.json newer than appearances.csv: being built again
    assert not moments.timeline(paths, video)["built"]


def test_the_captions_are_served_as_webvtt(client, site):
    vtt = EpisodePaths(site["data"], "Ep_1").appearances_vtt
    vtt.write_text("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nSomeone\n")
    try:
        served = client.get("/files/Ep_1/appearances.vtt")
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/vtt")
        assert served.text.startswith("WEBVTT")
    finally:
        vtt.unlink()


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


@pytest.mark.parametrize("body, kind, status, words", [
    (b"", "image/jpeg", 400, "no photo in the request"),
    (b"hello, not a photo", "image/jpeg", 415, "x.jpg: not a photo (its bytes are no JPEG, PNG, WebP or BMP)"),
    (b"GIF89a" + b"\x00" * 40, "image/gif", 415, "x.jpg: sent as image/gif, not as a photo"),
    (JPEG, "text/html", 415, "x.jpg: sent as text/html"),
    (b"\xff" * (21 * 2**20), "image/jpeg", 413, "photo refused: over 20 MB"),
], ids=["empty", "text", "gif", "html", "too big"])
def test_a_search_photo_is_checked_for_size_and_type_before_any_model_loads(client, monkeypatch, body, kind,
                                                                              status, words):
    from facepipe.tools import find

    monkeypatch.setattr(find, "find", lambda *a, **k: pytest.fail("searched a photo that should be refused"))
    response = client.post("/api/find", headers={**ORIGIN, "Content-Type": kind, "X-Photo-Name": "x.jpg"},
                           content=body)
    assert response.status_code == status and response.json()["error"].startswith(words), response.text
    assert "\n" not in response.json()["error"]


def test_a_search_answers_with_links_to_each_moment_stills_and_seasons(client, monkeypatch):
    from facepipe.tools import find

    match = {"episode": "Ep_1", "cluster_id": 0, "person_id": "p1", "name": "Someone", "distance": 0.031,
             "start_s": 2.5, "end_s": 9.0, "appearances": [[2.5, 4.0], [7.0, 9.0]], "screen_time_s": 3.5,
             "best_still": "harvest/Ep_1/stills/track00000_0_f000001.jpg", "photo": "up load.png",
             "season": {"season": "other", "cast_id": 3, "name": "Someone"}}
    seen = {}

    def fake(photos, data_root, cfg=None, index=None):
        seen.update(photos=photos, cfg=cfg)
        cast = {"season": "other", "cast_id": 3, "name": "Someone", "episodes": ["Ep_1"], "distance": 0.031}
        return find.Search([match], 2, str(data_root), ["up load.png"], {"dlib": 0.07}, [cast])

    monkeypatch.setattr(find, "find", fake)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 30
    response = client.post("/api/find", content=png,
                           headers={**ORIGIN, "Content-Type": "image/png", "X-Photo-Name": "up%20load.png"})
    assert response.status_code == 200, response.text
    found = response.json()
    assert seen["photos"] == [("up load.png", png)] and set(seen["cfg"]) == {"embed", "stills", "cluster"}
    m = found["matches"][0]
    assert m["link"] == "/episodes/Ep_1#t=2.5" and [a["link"] for a in m["appearances"]] == [
        "/episodes/Ep_1#t=2.5", "/episodes/Ep_1#t=7"]
    assert m["still"] == "/files/Ep_1/stills/track00000_0_f000001.jpg" and client.get(m["still"]).status_code == 200
    assert m["season"]["link"] == "/seasons/other" and found["seasons"][0]["link"] == "/seasons/other"
    assert found["episodes"] == 2 and found["photo"] == "up load.png"
    assert client.post("/api/find", headers={"Origin": "http://evil.example", "Content-Type": "image/png"},
                       content=png).status_code == 403


def test_a_season_casts_stills_have_the_episode_pages_quoted_address(tmp_path):
    from facepipe.base.layout import SeasonPaths
    from facepipe.tools.web import seasons

    site = stand_in(tmp_path)
    paths = SeasonPaths(site["data"], "S_Q1")
    paths.cast.parent.mkdir(parents=True, exist_ok=True)
    appearance = {"episode": "Ep_1", "screen_time_s": 1.0, "best_still": "data/harvest/Ep_1/stills/a b#1.jpg"}
    paths.cast.write_text(json.dumps({"episodes": ["Ep_1"], "cast": [
        {"cast_id": 0, "screen_time_s": 1.0, "appearances": [appearance]}]}))
    table = seasons.detail(settings_for(site), "S_Q1", {"season": "S_Q1"})["table"]
    assert table[0]["stills"] == [{"episode": "Ep_1", "url": "/files/Ep_1/stills/a%20b%231.jpg"}]


def _nothing_started(site, launcher) -> None:
    assert launcher.launches == {}, "a run was started"
    for ep in ("Ep_1", "Ep_3"):
        paths = EpisodePaths(site["data"], ep)
        assert not paths.launch_log.exists() and not paths.runtime.exists()
    assert not (site["data"] / "corrections").exists(), "a correction was recorded"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
    {"Origin": "https://127.0.0.1:8765"},
    {"Sec-Fetch-Site": "cross-site"},  # a browser that sent no Origin
    {"Sec-Fetch-Site": "same-site"},
], ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_a_foreign_origin_can_neither_start_nor_cancel_a_run(client, site, headers):
    for url in ACTIONS:
        response = client.post(url, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                               content=b"a=1")
        assert response.status_code == 403, (url, response.status_code, response.text)
        assert "refused" in response.json()["error"]
    _nothing_started(site, client.app.state.launcher)


def test_host_header_must_name_the_loopback(client):
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "192.168.1.20:8765"):
        response = client.get("/api/episodes", headers={"Host": host})
        assert response.status_code == 403 and "loopback" in response.json()["error"], host
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765", "127.0.0.2:8765"):
        assert client.get("/api/episodes", headers={"Host": host}).status_code == 200, host


def test_one_loopback_rule_for_the_host_given_and_the_host_header():
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.20", "127.0.0.1.evil.example", "evil.example", ""))


def test_bad_requests_get_a_one_line_json_error(client, site):
    cases = [("post", "/api/episodes/Ep_1/build/everything", 400), ("get", "/api/episodes/Ep_1/build/cluster", 405),
             ("get", "/api/nothing", 404), ("post", "/api/episodes/Ep_2/build/cluster", 409),
             ("post", "/api/episodes/Ep_3/cancel", 409)]
    for method, url, status in cases:
        response = getattr(client, method)(url, **({"headers": ORIGIN} if method == "post" else {}))
        assert response.status_code == status, (url, response.text)
        reason = response.json()["error"]
        assert reason and "\n" not in reason, reason
    big = client.post("/api/episodes/Ep_1/build/cluster", headers=ORIGIN, content=b"x" * 100_000)
    assert big.status_code == 413
    _nothing_started(site, client.app.state.launcher)


def test_a_click_on_an_episode_a_live_run_holds_is_refused_naming_the_holder(client, site):
    holder = subprocess.Popen(["sleep", "60"])
    registry = Registry(site["data"], Unit.episode("Ep_3"), heartbeat_s=5)
    try:
        with registry.edit() as data:
            data["runs"]["cluster"] = {"job_id": "cluster_Ep_3", "pid": holder.pid, "host": procinfo.hostname(),
                                       "pid_start_time": procinfo.start_time(holder.pid),
                                       "started_at": "2026-11-29T10:00:00Z", "heartbeat_at": "2026-11-29T10:00:00Z"}
        response = client.post("/api/episodes/Ep_3/build/cluster", headers=ORIGIN)
        assert response.status_code == 409
        reason = response.json()["error"]
        assert f"already being built by cluster_Ep_3 (pid {holder.pid} on {procinfo.hostname()}" in reason
        assert "facepipe cancel Ep_3" in reason
        assert "Ep_3" not in client.app.state.launcher.launches
    finally:
        holder.kill()
        holder.wait()
        registry.path.unlink()


def test_the_plan_is_made_again_when_a_run_has_ended_not_when_its_last_job_says_done(client, site, monkeypatch):
    """The last job writes "done" before snakemake has recorded it: the plan waits for the run to let
    go of the episode."""
    from facepipe.base import clock
    from facepipe.runtime.progress import PipelineState

    asked = []
    monkeypatch.setattr(client.app.state.planner, "request", lambda: asked.append(time.monotonic()))
    state = PipelineState(site["data"], Unit.episode("Ep_3"))
    holder = subprocess.Popen(["sleep", "60"])
    registry = Registry(site["data"], Unit.episode("Ep_3"), heartbeat_s=5)
    try:
        with registry.edit() as data:
            data["runs"]["cluster"] = {"job_id": "cluster_Ep_3", "pid": holder.pid, "host": procinfo.hostname(),
                                       "pid_start_time": procinfo.start_time(holder.pid),
                                       "started_at": clock.utc_now(), "heartbeat_at": clock.utc_now()}
        state.update(status="running", pct=0.8, message="Clustering", run_id="r-plan")
        wait_for(lambda: rows(client)["Ep_3"]["busy"] and rows(client)["Ep_3"]["status"] == "running", timeout=10,
                 what="the run on Ep_3's row")
        state.update(status="done", pct=1.0, message="Clustering complete")
        wait_for(lambda: rows(client)["Ep_3"]["status"] == "done", timeout=10, what="done on the row")
        time.sleep(4 * client.app.state.settings.poll_s)
        assert not asked, "planned while the run still held the episode"
    finally:
        holder.kill()
        holder.wait()
        registry.path.unlink()
    wait_for(lambda: asked, timeout=10, what="the plan to be asked for once the run let go")
    state.path.unlink()


def test_two_quick_clicks_start_one_run_and_cancel_stops_it(tmp_path):
    site = stand_in(tmp_path)
    with TestClient(create_app(settings_for(site)), base_url=BASE) as client:
        wait_for(lambda: len(rows(client)) == 3, timeout=30, what="the watcher's first look")
        _two_clicks_then_cancel(client, site)


def _two_clicks_then_cancel(client, site):
    results = []

    def click():
        results.append(client.post("/api/episodes/Ep_1/build/detect", headers=ORIGIN))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [202, 409], [r.text for r in results]
    started = next(r.json() for r in results if r.status_code == 202)
    refused = next(r.json()["error"] for r in results if r.status_code == 409)
    assert f"already being built by detect_Ep_1 (pid {started['pid']}" in refused
    launch = client.app.state.launcher.launches["Ep_1"]
    assert launch.proc.args[launch.proc.args.index("--configfile") + 1] == str(site["config"])
    assert "videos_dir=" + str(site["root"] / "videos") in launch.proc.args
    head = next(i for i, arg in enumerate(launch.proc.args) if arg.endswith("/snakemake"))
    assert launch.proc.args[:head] == ["nice", "-n", "10"]  # the page's builds yield the CPU to the page
    assert launch.proc.args[head + 1:head + 3] == ["data/harvest/Ep_1/detections.jsonl", "data/harvest/Ep_1/video.json"]
    assert os.getpgid(launch.proc.pid) == launch.proc.pid, "not in its own process group"
    cancelled = client.post("/api/episodes/Ep_1/cancel", headers=ORIGIN)
    assert cancelled.status_code == 200, cancelled.text
    wait_for(lambda: launch.returncode is not None, timeout=60, what="snakemake to stop")
    assert not procinfo.group(launch.proc.pid)
    row = wait_for(lambda: (r := rows(client)["Ep_1"]) and not r["busy"] and r, timeout=15, what="the row to settle")
    assert row["launch"]["alive"] is False
    reg, _ = Registry(site["data"], Unit.episode("Ep_1"), 5).read()
    assert not reg["runs"] and not reg["jobs"]
    # The next click starts a new run, and the one after is refused naming that one.
    again = client.post("/api/episodes/Ep_1/build/track", headers=ORIGIN)
    assert again.status_code == 202 and again.json()["pid"] != started["pid"]
    third = client.post("/api/episodes/Ep_1/build/track", headers=ORIGIN)
    assert third.status_code == 409 and f"(pid {again.json()['pid']} on" in third.json()["error"]
    assert client.post("/api/episodes/Ep_1/cancel", headers=ORIGIN).status_code == 200
    wait_for(lambda: client.app.state.launcher.launches["Ep_1"].returncode is not None, timeout=60,
             what="the second run to stop")


def test_builds_beyond_max_builds_wait_in_a_queue_that_cancel_empties(tmp_path):
    site = stand_in(tmp_path)
    with TestClient(create_app(settings_for(site, max_builds=1)), base_url=BASE) as client:
        wait_for(lambda: len(rows(client)) == 3, timeout=30, what="the watcher's first look")
        launcher = client.app.state.launcher
        first = client.post("/api/episodes/Ep_1/build/detect", headers=ORIGIN)
        assert first.status_code == 202 and first.json()["pid"] and not first.json()["queued"], first.text
        queued = client.post("/api/episodes/Ep_3/build/detect", headers=ORIGIN)
        assert queued.status_code == 202 and queued.json()["queued"] == 1 and queued.json()["pid"] is None
        row = wait_for(lambda: (r := rows(client)["Ep_3"]) and r["status"] == "queued" and r, timeout=15,
                       what="the queued row")
        assert row["busy"] and "place 1 in the queue" in row["message"], row
        again = client.post("/api/episodes/Ep_3/build/detect", headers=ORIGIN)
        assert again.status_code == 409 and "already queued" in again.json()["error"], again.text
        # Cancel takes it off the queue: it never starts, and the row says so.
        off = client.post("/api/episodes/Ep_3/cancel", headers=ORIGIN)
        assert off.status_code == 200 and "taken off the queue" in off.json()["report"][0], off.text
        row = wait_for(lambda: (r := rows(client)["Ep_3"]) and not r["busy"] and r, timeout=15, what="Ep_3 to settle")
        assert row["status"] == "new" and row["launch"]["note"] == "cancelled while queued: it never started"
        assert launcher.launches["Ep_3"].proc is None
        # Queued again, it starts by itself when the running build ends.
        assert client.post("/api/episodes/Ep_3/build/detect", headers=ORIGIN).json()["queued"] == 1
        assert client.post("/api/episodes/Ep_1/cancel", headers=ORIGIN).status_code == 200
        wait_for(lambda: launcher.launches["Ep_3"].proc is not None, timeout=60, what="the queued build to start")
        assert launcher.launches["Ep_1"].returncode is not None and not launcher.queue
        assert rows(client)["Ep_3"]["launch"]["pid"] == launcher.launches["Ep_3"].proc.pid
        wait_for(lambda: client.app.state.watcher.view.rows["Ep_3"]["busy"] and
                 client.post("/api/episodes/Ep_3/cancel", headers=ORIGIN).status_code == 200, timeout=60,
                 what="Ep_3's run to register and be cancelled")
        wait_for(lambda: launcher.launches["Ep_3"].returncode is not None, timeout=60, what="Ep_3 to stop")


def test_a_queued_build_that_a_terminal_run_holds_by_its_turn_is_not_started_and_says_why(tmp_path):
    site = stand_in(tmp_path)
    holder = subprocess.Popen(["sleep", "60"])
    registry = Registry(site["data"], Unit.episode("Ep_3"), heartbeat_s=5)
    try:
        with TestClient(create_app(settings_for(site, max_builds=1)), base_url=BASE) as client:
            wait_for(lambda: len(rows(client)) == 3, timeout=30, what="the watcher's first look")
            launcher = client.app.state.launcher
            assert client.post("/api/episodes/Ep_1/build/detect", headers=ORIGIN).status_code == 202
            assert client.post("/api/episodes/Ep_3/build/detect", headers=ORIGIN).json()["queued"] == 1
            with registry.edit() as data:  # meanwhile a run from the terminal takes Ep_3
                data["runs"]["cluster"] = {"job_id": "cluster_Ep_3", "pid": holder.pid, "host": procinfo.hostname(),
                                           "pid_start_time": procinfo.start_time(holder.pid),
                                           "started_at": clock.utc_now(), "heartbeat_at": clock.utc_now()}
            wait_for(lambda: client.app.state.watcher.view.rows["Ep_1"]["busy"] and
                     client.post("/api/episodes/Ep_1/cancel", headers=ORIGIN).status_code == 200, timeout=60,
                     what="Ep_1's run to be cancelled")
            wait_for(lambda: launcher.launches["Ep_1"].returncode is not None, timeout=60, what="Ep_1 to stop")
            queued = launcher.launches["Ep_3"]
            assert queued.proc is None and not queued.alive and not launcher.queue
            assert queued.error.startswith("not started from the queue: ")
            assert f"already being built by cluster_Ep_3 (pid {holder.pid}" in queued.error
            assert "facepipe cancel Ep_3" in queued.error
            row = wait_for(lambda: (r := rows(client)["Ep_3"])["launch"]["error"] and r, timeout=15, what="the row")
            assert row["status"] != "queued" and row["launch"]["error"] == queued.error
    finally:
        holder.kill()
        holder.wait()


def test_the_page_runs_as_many_builds_at_once_as_the_machine_has_cores_unless_told(site):
    assert settings_for(site).max_builds == os.cpu_count()
    assert settings_for(site, max_builds=0).max_builds is None
    assert settings_for(site, max_builds=3).max_builds == 3
    assert settings_for(site, profile=REPO / "workflow/profiles/slurm").max_builds is None
    with pytest.raises(FacepipeError, match="--max-builds -1"):
        settings_for(site, max_builds=-1)


def test_chips_read_the_plan_and_the_live_state(tmp_path):
    paths = EpisodePaths(tmp_path, "Ep_1")
    plan = Plan({"Ep_1": {"steps": ["stills", "cluster"], "jobs": [
        {"rule": "stills", "reason": "Params have changed since last execution"},
        {"rule": "embed", "reason": "Missing output files: data/harvest/Ep_1/embeddings.npz"},
        {"rule": "cluster", "reason": "Input files updated by another job: data/harvest/Ep_1/embeddings.npz"}]}})

    def shown(state, has_video=True, p=plan):
        return [c["status"] for c in chips(paths, has_video, p, state)]

    assert shown({}) == ["built", "built", "out of date", "missing"]
    assert shown({}, p=Plan()) == ["unknown"] * 4, "no plan yet"
    assert shown({}, p=Plan(None, "planning failed")) == ["unknown"] * 4
    running = {"status": "running", "plan": ["stills", "cluster"], "step_index": 4}
    assert shown(running) == ["built", "built", "built", "running"]
    failed = {"status": "error", "plan": ["detect", "track", "stills", "cluster"], "step_index": 2}
    assert shown(failed) == ["built", "failed", "out of date", "missing"]
    assert shown({}, has_video=False) == ["missing"] * 4, "no video, no outputs on disk"


def test_the_pages_read_the_steps_from_the_boards_meta(client):
    meta = client.get("/api/episodes").json()["meta"]
    assert meta["steps"] == [{"name": s.name, "title": s.title, "index": s.index, "band": list(s.band)}
                             for s in STEPS]
    for script in (REPO / "src" / "facepipe" / "tools" / "web" / "static").glob("*.js"):
        text = script.read_text()
        for step in STEPS:
            for word in (step.name, step.title):
                assert f'"{word}"' not in text and f"'{word}'" not in text, \
                    f"{script.name} restates the step {word!r}: read FP.steps() (the board's meta) instead"


def test_the_step_outputs_have_one_home_read_by_the_workflow(tmp_path):
    """What the workflow does, however the Snakefile is written: in Snakemake's own dry run of the
    four targets, each target's job asks for its step's outputs (base.layout.step_targets, what a
    button builds) of every episode with a video, and for nothing else."""
    import contextlib
    import io
    import logging

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    from facepipe.base.layout import step_targets
    from facepipe.base.project import SNAKEFILE

    assert list(STEP_OUTPUTS) == [s.name for s in STEPS]
    site = stand_in(tmp_path)
    asked: dict[str, list[str]] = {}

    class TargetInputs(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if str(getattr(record, "event", "")) == "job_info" and record.rule_name.endswith("_target"):
                asked[record.rule_name] = sorted(map(str, record.input))

    collector, snake_logger = TargetInputs(), logging.getLogger("snakemake")
    with contextlib.chdir(site["root"]), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()), SnakemakeApi(OutputSettings(dryrun=True, nocolor=True)) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=SNAKEFILE,
                                config_settings=ConfigSettings(configfiles=[site["config"]]))
        dag = workflow.dag(DAGSettings(targets={s.target for s in STEPS}))
        snake_logger.addHandler(collector)
        try:
            dag.execute_workflow(executor="dryrun")
        finally:
            snake_logger.removeHandler(collector)
    assert asked == {s.target: sorted(t for ep in ("Ep_1", "Ep_3") for t in step_targets("data", ep, s.name))
                     for s in STEPS}
    snakefile = (REPO / "workflow" / "Snakefile").read_text()
    assert "_OUTPUTS =" not in snakefile and "layout.TRACKS" not in snakefile, "the Snakefile lists outputs itself"


def test_the_event_stream_sends_a_snapshot_then_each_change(client, site):
    with client.stream("GET", "/api/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        kind, data = _event(lines)
        assert kind == "snapshot" and {r["episode"] for r in data["rows"]} == {"Ep_1", "Ep_2", "Ep_3"}
        from facepipe.runtime.progress import PipelineState

        state = PipelineState(site["data"], Unit.episode("Ep_3"))
        for k in range(3):  # faster than the watcher looks: the last is the row, all three are sent
            state.update(status="running", pct=0.3 + k / 10, message=f"from elsewhere {k}", run_id="r")
        t0, sent = time.monotonic(), []
        while True:
            kind, data = _event(lines)
            sent += [u["message"] for u in data.get("updates", {}).get("Ep_3", [])]
            if kind == "rows" and any(r["episode"] == "Ep_3" and r["message"] == "from elsewhere 2"
                                      for r in data["rows"]):
                break
            # Seen at all, not how soon: the latency is bench/web.py's figure (a look every poll_s,
            # 0.25 s); 30 s leaves a loaded machine's looks time to wait their turn.
            assert time.monotonic() - t0 < 30, "no event for the change within 30 s"
        assert sent == [f"from elsewhere {k}" for k in range(3)]
    EpisodePaths(site["data"], "Ep_3").pipeline_state.unlink()


def _event(lines) -> tuple[str, dict]:
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            return kind, json.loads(line[6:])


def test_a_token_is_required_off_the_loopback(tmp_path):
    site = stand_in(tmp_path)
    token = "correct-horse-battery"
    with TestClient(create_app(settings_for(site, host="0.0.0.0", token=token)), base_url="http://10.1.2.3:8765",
                    follow_redirects=False) as c:
        assert c.get("/api/episodes").status_code == 401
        assert c.get("/").status_code == 401
        assert c.get("/api/episodes", headers={"Authorization": "Bearer wrong-token-here"}).status_code == 401
        assert c.get("/?token=wrong").status_code == 401
        fix = c.post("/api/episodes/Ep_1/corrections", headers={"Origin": "http://10.1.2.3:8765"},
                     json={"op": "hide", "clusters": [0]})
        assert fix.status_code == 401, "a correction without the token"
        assert c.get("/api/episodes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        first = c.get(f"/?token={token}")
        assert first.status_code == 303 and first.headers["location"] == "/"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
        assert c.get("/api/episodes").status_code == 200, "the cookie is enough from then on"
        foreign = c.post("/api/episodes/Ep_1/build/cluster", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403, "the cookie does not make a foreign origin welcome"
        _nothing_started(site, c.app.state.launcher)
    assert checked_token("127.0.0.1", None) is None
    assert len(checked_token("0.0.0.0", "auto")) >= 24


def test_a_badly_named_video_is_a_banner_and_hides_no_other_episode(tmp_path):
    site = stand_in(tmp_path)
    (tmp_path / "videos" / "Ep 4.mp4").symlink_to(SHARED_VIDEOS / "hamilton_clip.mp4")
    with TestClient(create_app(settings_for(site)), base_url=BASE) as c:
        wait_for(lambda: len(rows(c)) == 3, timeout=30, what="the watcher's first look")
        meta = c.get("/api/episodes").json()["meta"]
        assert "episode id 'Ep 4' may only use letters" in meta["videos_problem"]
        assert rows(c)["Ep_1"]["video"] and rows(c)["Ep_3"]["video"]


def test_the_server_refuses_to_start_off_the_loopback_without_a_token(site):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "FACEPIPE_WEB_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "facepipe.tools.cli", "serve", "--config", str(site["config"]),
                           "--host", "0.0.0.0", "--port", str(port)], cwd=site["root"], capture_output=True,
                          text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a loopback address" in lines[0] and "--token" in lines[0], proc.stderr
    with socket.socket() as again:  # nothing took the port
        again.bind(("0.0.0.0", port))


# --- corrections from the pages -----------------------------------------------------------------
def _track(tid: int, t0: float, x: float) -> dict:
    return {"track_id": tid, "detections": [{"frame": int((t0 + k / 4) * 25), "t": t0 + k / 4,
                                             "box": [x, 40.0, x + 60.0, 100.0], "score": 0.99} for k in range(8)]}


def corrections_site(root: Path) -> dict:
    """stand_in(), with Ep_1 and Ep_3 clustered (tracks.json, clusters.json, embeddings.npz) and
    season `other` (both episodes) linked into a cast; reference photos of two people."""
    site = stand_in(root)
    refs = root / "refs"
    refs.mkdir()
    for name in ("ada_lovelace.jpg", "grace_hopper.jpg"):
        cv2.imwrite(str(refs / name), np.full((40, 40, 3), 200, np.uint8))
    site["config"].write_text(site["config"].read_text() + f"cluster:\n  references: {refs}\n")
    # Ep_1: cluster 0 (tracks 0, 1), 1 (track 2), 2 (track 3): cluster 2 is nearer 0 than 1 is.
    unit = np.eye(4)
    vectors = {0: unit[0], 1: unit[0], 2: unit[1], 3: 0.8 * unit[0] + 0.6 * unit[2]}
    for ep, groups, names in (("Ep_1", [[0, 1], [2], [3]], ["Someone", None, None]), ("Ep_3", [[0]], [None])):
        paths = EpisodePaths(site["data"], ep)
        paths.harvest.mkdir(parents=True, exist_ok=True)
        tids = [t for g in groups for t in g]
        paths.tracks.write_text(json.dumps({"episode": ep, "sample_fps": 4.0,
                                            "tracks": [_track(t, 3.0 * t, 20.0 + 30 * t) for t in tids]}))
        paths.clusters.write_text(json.dumps({"episode": ep, "embedder": "dlib", "method": "agglomerative",
                                              "unassigned_track_ids": [], "clusters": [
            {"cluster_id": k, "track_ids": g, "screen_time_s": 2.0 * len(g), "hidden": False,
             **({"name": n, "named_by": "distance"} if n else {})} for k, (g, n) in enumerate(zip(groups, names))]}))
        np.savez(paths.embeddings, vectors=np.stack([vectors[t] for t in tids]), track_ids=np.array(tids),
                 files=np.array([f"t{t}.jpg" for t in tids]), quality=np.ones(len(tids), np.float32),
                 embedder=np.array("dlib"))
    from facepipe.base.layout import SeasonPaths

    cast = SeasonPaths(site["data"], "other").cast
    cast.parent.mkdir(parents=True, exist_ok=True)
    cast.write_text(json.dumps({"season": "other", "episodes": ["Ep_1", "Ep_3"], "threshold": 0.08, "embedder": "dlib",
                                "summary": "1 recurring cast member, 1 seen in one episode", "cast": [
        {"cast_id": 0, "screen_time_s": 6.0, "name": "Someone", "named_by": "distance", "hidden": False,
         "appearances": [{"episode": "Ep_1", "cluster_ids": [0], "screen_time_s": 4.0},
                         {"episode": "Ep_3", "cluster_ids": [0], "screen_time_s": 2.0}]},
        {"cast_id": 1, "screen_time_s": 2.0, "hidden": False,
         "appearances": [{"episode": "Ep_1", "cluster_ids": [1], "screen_time_s": 2.0}]}]}))
    return site


class FakeBuilds:
    """The launcher's build, recorded instead of run (a real one: test_web_browser.py); `busy`
    makes it refuse as a live run would."""

    def __init__(self):
        self.calls, self.busy = [], False

    async def __call__(self, name, step, kind="episode"):
        from facepipe.runtime.registry import RegistryBusy

        if self.busy:
            raise RegistryBusy(f"{kind} {name} is already being built by cluster_{name} (pid 1)")
        self.calls.append((name, step, kind))

        class Started:
            proc = type("P", (), {"pid": 4242})()

            @staticmethod
            def public():
                return {"step": step, "pid": 4242, "alive": True}

        return Started()


@pytest.fixture(scope="module")
def fixing(tmp_path_factory):
    site = corrections_site(tmp_path_factory.mktemp("fixing"))
    app = create_app(settings_for(site))
    builds = FakeBuilds()
    app.state.launcher.build = builds
    with TestClient(app, base_url=BASE) as c:
        wait_for(lambda: len(rows(c)) == 3 and c.get("/api/seasons").json()["seasons"], timeout=30,
                 what="the watcher's first look")
        yield c, site, builds


def _history(client, url: str) -> list[dict]:
    return client.get(url).json()["corrections"]["history"]


def test_the_episode_page_gets_each_tracks_still_merge_suggestions_and_the_names_to_offer(fixing):
    client, _site, _builds = fixing
    detail = client.get("/api/episodes/Ep_1").json()
    first = detail["clusters"][0]
    assert [t["track_id"] for t in first["track_stills"]] == [0, 1]
    assert first["track_stills"][0]["still"] == "/files/Ep_1/stills/track00000_0_f000001.jpg"
    assert first["track_stills"][1]["still"] is None, "a track without a still is still pickable"
    near = [(s["cluster_id"], s["distance"]) for s in first["similar"]]
    assert [c for c, _d in near] == [2, 1] and near[0][1] == pytest.approx(0.2, abs=1e-3), "closest first"
    assert detail["names"] == ["ada_lovelace", "grace_hopper", "Someone"], "the season's names and the references'"
    assert detail["season"] == "other" and detail["corrections"]["history"] == []
    assert detail["clusters_version"]


def test_the_season_says_what_was_found_and_marks_people_seen_in_one_episode(fixing):
    client, _site, _builds = fixing
    row = client.get("/api/seasons").json()["seasons"][0]
    assert row["cast_summary"] == "1 recurring cast member, 1 seen in one episode"
    table = client.get("/api/seasons/other").json()["table"]
    assert [m["recurring"] for m in table] == [True, False]


def test_a_correction_is_recorded_and_its_cluster_build_started(fixing):
    client, site, builds = fixing
    builds.calls.clear()
    version = client.get("/api/episodes/Ep_1").json()["clusters_version"]
    done = client.post("/api/episodes/Ep_1/corrections", headers=ORIGIN,
                       json={"op": "merge", "clusters": [0, 2], "version": version})
    assert done.status_code == 202, done.text
    body = done.json()
    assert builds.calls == [("Ep_1", "cluster", "episode")] and body["build"]["pid"] == 4242
    assert body["record"]["op"] == "merge" and "merge cluster 0 (Someone), cluster 2" in body["record"]["note"]
    record = body["record"]["id"]
    assert [(h["id"], h["state"]) for h in _history(client, "/api/episodes/Ep_1")] == [(record, "pending")]
    # Every page hears of it: the row carries the corrections file's stamp.
    wait_for(lambda: rows(client)["Ep_1"]["corrections"], timeout=10, what="the corrections stamp on the row")
    undo = client.post("/api/episodes/Ep_1/corrections", headers=ORIGIN, json={"op": "undo", "record": record})
    assert undo.status_code == 202, undo.text
    assert [h["state"] for h in _history(client, "/api/episodes/Ep_1")] == ["undone", "undo"]
    EpisodePaths(site["data"], "Ep_1").corrections.unlink()


@pytest.mark.parametrize("body, status, words", [
    ({"op": "merge", "clusters": [0, 7]}, 400, "has no cluster 7; its clusters are 0, 1, 2"),
    ({"op": "split", "clusters": [0], "tracks": [9]}, 400, "cluster 0 has no track 9; its tracks are 0, 1"),
    ({"op": "undo", "record": "r0"}, 400, "no record 'r0'"),
    ({"op": "name", "clusters": [1]}, 400, "name needs the name to give"),
    ({"op": "explode"}, 400, "'op' must be one of merge, split, name, hide, unhide, not, undo"),
    ({"op": "hide", "clusters": "0"}, 400, "'clusters' must be a list of integer ids"),
    ({"op": "hide", "cluster": [0]}, 400, "unknown key 'cluster'"),
    ([1, 2], 400, "the body must be a JSON object"),
    ({"op": "hide", "clusters": [0], "version": "1:2"}, 409, "changed since this page loaded them"),
], ids=lambda v: json.dumps(v)[:30] if not isinstance(v, int) else str(v))
def test_a_bad_correction_is_refused_with_one_line_saying_why(fixing, body, status, words):
    client, site, builds = fixing
    builds.calls.clear()
    response = client.post("/api/episodes/Ep_1/corrections", headers=ORIGIN, json=body)
    assert response.status_code == status, response.text
    reason = response.json()["error"]
    assert words in reason and "\n" not in reason, reason
    assert not builds.calls and not EpisodePaths(site["data"], "Ep_1").corrections.exists()


def test_a_correction_made_while_a_run_holds_the_episode_is_built_when_it_ends(fixing):
    client, site, builds = fixing
    builds.calls.clear()
    builds.busy = True
    held = client.post("/api/episodes/Ep_1/corrections", headers=ORIGIN, json={"op": "hide", "clusters": [1]})
    assert held.status_code == 202, held.text
    assert held.json()["waiting"] and "this page starts the Cluster build that applies it" in held.json()["message"]
    detail = client.get("/api/episodes/Ep_1").json()["corrections"]
    assert detail["waiting"] and [h["state"] for h in detail["history"]] == ["pending"]
    builds.busy = False  # the run ended
    wait_for(lambda: builds.calls == [("Ep_1", "cluster", "episode")], timeout=10, what="the waiting rebuild")
    assert not client.get("/api/episodes/Ep_1").json()["corrections"]["waiting"]
    EpisodePaths(site["data"], "Ep_1").corrections.unlink()


def test_a_seasons_corrections_are_recorded_and_its_build_started(fixing):
    client, site, builds = fixing
    from facepipe.base.layout import SeasonPaths

    builds.calls.clear()
    detail = client.get("/api/seasons/other").json()
    assert detail["cast_version"] and detail["corrections"]["history"] == []
    assert [m["episodes"] for m in detail["table"]] == [["Ep_1", "Ep_3"], ["Ep_1"]]
    for body, words in (({"op": "merge", "cast": [0, 5]}, "has no cast member 5; its cast ids are 0, 1"),
                        ({"op": "split", "cast": [1], "episode": "Ep_1"}, "appears only in Ep_1"),
                        ({"op": "split", "cast": [0], "episode": "Ep_2"}, "appears in Ep_1, Ep_3"),
                        ({"op": "not", "cast": [0]}, "'op' must be one of merge, split, name, hide, unhide, undo")):
        refused = client.post("/api/seasons/other/corrections", headers=ORIGIN, json=body)
        assert refused.status_code == 400 and words in refused.json()["error"], refused.text
    assert not builds.calls
    split = client.post("/api/seasons/other/corrections", headers=ORIGIN,
                        json={"op": "split", "cast": [0], "episode": "Ep_3", "version": detail["cast_version"]})
    assert split.status_code == 202, split.text
    assert builds.calls == [("other", "season", "season")]
    assert [h["state"] for h in _history(client, "/api/seasons/other")] == ["pending"]
    wait_for(lambda: client.get("/api/seasons").json()["seasons"][0]["corrections"], timeout=10,
             what="the corrections stamp on the season's row")
    assert client.post("/api/seasons/nowhere/corrections", headers=ORIGIN, json={"op": "undo"}).status_code == 404
    SeasonPaths(site["data"], "other").corrections.unlink()

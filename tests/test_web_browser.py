"""facepipe serve end to end: a real headless Chromium (selenium, the system's chromedriver) on a
real `facepipe serve`, building episodes of the shared Hamilton clip with real snakemake runs.

One server for the module, over a copy of the session's built run (hamilton_clip and
walking_and_pause built) and three new episodes linked to the Hamilton clip (Ep_A, Ep_B, Ep_C).
The tests run in file order; the last one stops the server with Ctrl-C. Screenshots go to
$FACEPIPE_ARTIFACTS (default test-artifacts/ at the repository root).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from facepipe.base.unit import Unit
from facepipe.runtime import procinfo
from facepipe.runtime.registry import Registry
from facepipe.tools.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium, start_server
from helpers import REPO, SHARED_VIDEOS, copy_workdir, paths, read_json, start_snakemake, wait_for, write_config

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)
pytest.importorskip("selenium", reason="needs selenium: pip install -e '.[test]'")
pytest.importorskip("starlette", reason="facepipe serve needs the web extra: pip install -e '.[web]'")

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = Path(os.environ.get("FACEPIPE_ARTIFACTS") or REPO / "test-artifacts")
NEW = ("Ep_A", "Ep_B", "Ep_C")
STEP_ORDER = ["Detect", "Track", "Stills", "Cluster"]

# What a person sees of one row, read from the DOM.
READ_ROW = """
const read = (ep) => {
  const tr = document.querySelector(`tr[data-episode="${ep}"]`);
  if (!tr) return null;
  const text = (sel) => tr.querySelector(sel).textContent;
  return {status: tr.dataset.status, pct: tr.dataset.pct === "" ? null : Number(tr.dataset.pct),
          step: text(".step"), message: text(".message"), notice: text(".notice"), warn: text(".warn"),
          jobs: text(".jobs"), actions: [...tr.querySelectorAll(".actions button")].map((b) => b.dataset.action),
          live: document.body.dataset.live};
};
"""
# Records every state of a row the page shows (a MutationObserver), between our samples too.
RECORD = READ_ROW + """
const ep = arguments[0];
window.__seen = [];
new MutationObserver(() => {
  const s = read(ep), last = window.__seen[window.__seen.length - 1];
  if (s && (!last || ["step", "message", "status", "pct"].some((k) => last[k] !== s[k]))) window.__seen.push(s);
}).observe(document.getElementById("rows"), {subtree: true, childList: true, characterData: true, attributes: true});
"""


@pytest.fixture(scope="module")
def site(built_run, tmp_path_factory):
    """The server's folder (a copy of the built run), its videos, and the running server."""
    root = copy_workdir(built_run, tmp_path_factory.mktemp("serve") / "site")
    videos = root / "episodes"
    videos.mkdir()
    for name in ("hamilton_clip.mp4", "walking_and_pause.gif"):  # built, from another folder: out of date
        (videos / name).symlink_to(SHARED_VIDEOS / name)
    for ep in NEW:
        (videos / f"{ep}.mp4").symlink_to(SHARED_VIDEOS / "hamilton_clip.mp4")
    config = root / "serve-config.yaml"
    config.write_text(f"videos_dir: {videos}\ndata_root: data\n")
    server, url = start_server(root, config)
    try:
        yield {"root": root, "data": root / "data", "url": url, "server": server, "log": root / "serve.log"}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=180)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def open_board(driver, site, ep: str | None = None):
    driver.get(site["url"])
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), timeout=30,
             what="the episodes page to render")
    if ep:
        driver.execute_script(RECORD, ep)


def row(driver, ep: str) -> dict | None:
    return driver.execute_script(READ_ROW + "return read(arguments[0]);", ep)


def click(driver, ep: str, action: str) -> None:
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, f'tr[data-episode="{ep}"] button[data-action="{action}"]').click()
            return
        except StaleElementReferenceException:  # the row's buttons were redrawn meanwhile
            time.sleep(0.1)
    raise AssertionError(f"could not click {action} of {ep}")


def wait_row(driver, ep: str, predicate, timeout: float, what: str) -> dict:
    return wait_for(lambda: (r := row(driver, ep)) and predicate(r) and r, timeout=timeout, interval=0.2, what=what)


def api(site, path: str):
    with urllib.request.urlopen(site["url"].rstrip("/") + path, timeout=10) as response:
        return json.loads(response.read())


def registry_clear(site, ep: str) -> bool:
    reg = read_json(paths(site["root"], ep).runtime) or {}
    return not reg.get("runs") and not reg.get("jobs")


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / name))


def test_cluster_button_builds_the_episode_live_from_nothing_to_the_contact_sheet(site, browser):
    open_board(browser, site, "Ep_A")
    first = row(browser, "Ep_A")
    assert first["status"] == "new" and first["live"] == "1"
    wait_row(browser, "Ep_A", lambda r: "cluster" in r["actions"], 30, "the Cluster button")
    click(browser, "Ep_A", "cluster")
    samples, refused, reloaded, seen_before = [], None, False, []
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        s = row(browser, "Ep_A")
        samples.append(s)
        if refused is None and "detect_chunk" in s["jobs"]:
            click(browser, "Ep_A", "cluster")  # a second click during the run
            refused = wait_row(browser, "Ep_A", lambda r: "refused" in r["notice"], 15, "the refusal")["notice"]
        if not reloaded and s["step"] == "Track":
            seen_before = browser.execute_script("return window.__seen")
            shot(browser, "episodes-running.png")
            browser.refresh()  # a reload mid-run: the same live state, still updating
            open_board(browser, site, "Ep_A")
            again = row(browser, "Ep_A")
            assert again["status"] == "running" and again["live"] == "1" and again["pct"] >= s["pct"]
            reloaded = True
        if s["status"] in ("done", "error", "cancelled"):
            break
        time.sleep(0.2)
    seen = seen_before + browser.execute_script("return window.__seen")
    assert samples[-1]["status"] == "done", samples[-1]
    assert samples[-1]["message"] == "Clustering complete" and samples[-1]["pct"] == 1.0
    assert reloaded, "the run never showed Track"
    assert refused and "already being built by cluster_Ep_A (pid" in refused and "facepipe cancel Ep_A" in refused
    messages = [s["message"] for s in seen + samples]
    assert "Auto-running Detect -> Track -> Stills before clustering..." in messages
    assert any(m.startswith("Detecting faces: frame") for m in messages)
    assert any(m.startswith("Embedding stills") for m in messages)
    log_lines = paths(site["root"], "Ep_A").progress_log.read_text().splitlines()
    written = {json.loads(line)["message"] for line in log_lines}
    assert set(messages) - {""} <= written, "the page showed a message no state held"
    # What the page showed and what the state file held are each in time order (a step of a second,
    # now Stills, may come and go between two of the page's frames): each in the pipeline's order,
    # and every step seen in one or the other.
    for source in (seen, samples):
        steps = [s["step"] for s in source if s["status"] == "running"]
        firsts = [steps.index(step) for step in STEP_ORDER if step in steps]
        assert firsts == sorted(firsts), f"steps out of order: {steps}"
    shown = {s["step"] for s in seen + samples if s["status"] == "running"}
    assert set(STEP_ORDER) <= shown, shown
    pcts = [s["pct"] for s in samples + seen if s["status"] in ("running", "done") and s["pct"] is not None]
    ordered = [s["pct"] for s in samples if s["pct"] is not None and s["status"] != "new"]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(ordered)), f"pct went down: {ordered}"
    assert len(set(pcts)) >= 8, "the bar hardly moved"
    # Every chip built once the plan is made again after the run.
    done = wait_row(browser, "Ep_A", lambda r: browser.execute_script(
        "return [...document.querySelectorAll('tr[data-episode=\"Ep_A\"] .chip')]"
        ".every((c) => c.dataset.status === 'built')"),
        60, "the chips to turn built")
    assert done["status"] == "done"
    # The seasons table offers each season's Build (Cancel only while it runs).
    build = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#seasons button[data-action="build-season"]'),
                     timeout=15, what="the seasons' Build buttons")
    assert build[0].is_enabled() and not browser.find_elements(By.CSS_SELECTOR, '#seasons button[data-action="cancel"]')
    shot(browser, "episodes.png")

    browser.get(site["url"] + "episodes/Ep_A")
    sheet = wait_for(lambda: browser.execute_script(
        "const i = document.getElementById('contact-sheet'); return i && i.complete && i.naturalWidth"),
        timeout=30, what="the contact sheet")
    assert sheet > 100
    cards = browser.find_elements(By.CSS_SELECTOR, "#clusters .card")
    assert cards and "on screen" in cards[0].text and "track" in cards[0].text
    assert browser.execute_script(
        "return [...document.querySelectorAll('#clusters img')].every((i) => i.complete && i.naturalWidth > 0)")
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('#chart polyline')].map((p) => p.dataset.step)")
    order = ["detect", "track", "stills", "cluster"]
    assert [s for s in order if s in drawn] == order
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1440, min(height + 120, 2600))  # the whole page, contact sheet included
    shot(browser, "episode.png")
    browser.set_window_size(1440, 900)


def test_cancel_ends_a_run_cancelled_with_nothing_half_written(site, browser):
    open_board(browser, site, "Ep_B")
    click(browser, "Ep_B", "cluster")
    wait_row(browser, "Ep_B", lambda r: "detect_chunk" in r["jobs"] and "cancel" in r["actions"], 120,
             "Ep_B's detect job")
    click(browser, "Ep_B", "cancel")
    ended = wait_row(browser, "Ep_B", lambda r: r["status"] == "cancelled" and "cancel" not in r["actions"], 120,
                     "Ep_B to end cancelled")
    assert ended["message"].startswith("Cancelled")
    wait_for(lambda: not api(site, "/api/episodes/Ep_B")["row"]["launch"]["alive"], timeout=120,
             what="the run to end")
    h = paths(site["root"], "Ep_B").harvest
    assert not (h / "detections.jsonl").exists() and not list(h.glob("detect_chunks/chunk*"))
    assert not list(h.rglob(".*.tmp*")), "a half-written file was left"
    assert registry_clear(site, "Ep_B")


def test_a_run_started_from_the_terminal_appears_live(site, browser, tmp_path):
    open_board(browser, site, "Ep_C")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "Ep_C.mp4").symlink_to(SHARED_VIDEOS / "hamilton_clip.mp4")
    write_config(tmp_path, videos)
    config = tmp_path / "test-config.yaml"
    config.write_text(config.read_text().replace("data_root: data", f"data_root: {site['data']}"))
    run = start_snakemake(tmp_path, "cluster_target")
    try:
        live = wait_row(browser, "Ep_C", lambda r: f"pid {run.pid}" in r["jobs"], 120, "the terminal's run")
        assert live["status"] in ("pending", "running")
        later = wait_row(browser, "Ep_C", lambda r: r["message"] != live["message"] and r["status"] == "running", 120,
                         "the terminal's run to move on")
        assert later["step"].startswith(("Detect", "Cluster"))
        click(browser, "Ep_C", "cancel")  # the page stops a run it did not start
        wait_row(browser, "Ep_C", lambda r: r["status"] == "cancelled", 60, "Ep_C to end cancelled")
    finally:
        assert run.wait(timeout=120) != 0
    assert registry_clear(site, "Ep_C")


def test_sigkill_of_the_servers_snakemake_shows_the_error_and_retry_works(site, browser):
    ep = "Ep_A"  # built by the first test: only Cluster is left to build once its outputs are gone
    built = paths(site["root"], ep)
    for output in (built.embeddings, built.clusters, built.contact_sheet):
        output.unlink()
    open_board(browser, site, ep)
    click(browser, ep, "cluster")
    wait_row(browser, ep, lambda r: "embed" in r["jobs"], 120, "the embed job")
    head = api(site, f"/api/episodes/{ep}")["row"]["launch"]["pid"]
    os.kill(head, signal.SIGKILL)
    failed = wait_row(browser, ep, lambda r: r["status"] == "error" and "retry" in r["actions"], 90,
                      "the row to show the error")
    assert f"snakemake (pid {head}) was killed by SIGKILL" in failed["message"]
    assert "stale run cluster" in failed["warn"], "the dead run's entry is shown as stale until the next run"
    assert not procinfo.group(head), "the killed run's jobs are still running"
    assert site["server"].poll() is None, "the server died with its child"
    shot(browser, "episodes-killed.png")
    browser.get(site["url"] + f"episodes/{ep}")  # the failure's log, on the episode's page
    shown = wait_for(lambda: browser.execute_script(
        "return !document.getElementById('log-section').hidden && document.getElementById('log').textContent"),
        timeout=30, what="the log of the failed run")
    assert browser.find_element(By.ID, "log-path").text.endswith("logs/snakemake.log") and "rule" in shown
    open_board(browser, site, ep)
    click(browser, ep, "retry")
    done = wait_row(browser, ep, lambda r: r["status"] == "done", 240, "the retry to finish")
    assert done["message"] == "Clustering complete"
    wait_for(lambda: registry_clear(site, ep), timeout=60, what="the retry to clear the killed run's stale entry")
    assert built.contact_sheet.exists()


# What a person sees of an episode page's clusters and corrections.
READ_FIXES = """
const cards = (sel) => [...document.querySelectorAll(sel)].map((c) => ({id: Number(c.dataset.cluster),
  name: c.querySelector('.name').textContent, facts: c.querySelector('.facts').textContent,
  tracks: [...c.querySelectorAll('.face')].map((f) => Number(f.dataset.track)).sort((a, b) => a - b)}));
return {cards: cards('#clusters .card'), hidden: cards('#hidden-clusters .card'),
        fixes: [...document.querySelectorAll('#fixes li.fix')].map((li) => ({id: li.dataset.record,
          state: li.dataset.state, text: li.querySelector('.fix-note').textContent})),
        notice: document.getElementById('fix-notice').textContent,
        status: document.getElementById('fixes-status').textContent,
        rebuilding: document.getElementById('clusters-section').classList.contains('rebuilding'),
        busy: !!document.querySelector('#actions button[data-action=cancel]'), live: document.body.dataset.live};
"""


def fixes_view(driver) -> dict:
    return driver.execute_script(READ_FIXES)


def wait_view(driver, predicate, timeout: float, what: str) -> dict:
    return wait_for(lambda: (v := fixes_view(driver)) and predicate(v) and v, timeout=timeout, interval=0.2, what=what)


def press(driver, css: str) -> None:
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:  # the cards were drawn again meanwhile
            time.sleep(0.1)
    raise AssertionError(f"could not click {css}")


def by_tracks(site, ep: str) -> dict:
    """The episode's clusters as its detail says, by their (sorted) track ids."""
    clusters = api(site, f"/api/episodes/{ep}")["clusters"]
    return {tuple(sorted(t["track_id"] for t in c["track_stills"])): c for c in clusters}


def settled(v: dict) -> bool:
    done = all(f["state"] in ("applied", "undone", "undo") for f in v["fixes"])
    return done and not v["busy"] and not v["rebuilding"]


def test_corrections_on_the_episode_page_are_built_shown_live_everywhere_and_stay(site, browser):
    """Merge, name, split, hide and undo through the page: each rebuilds Cluster only; the three
    made while a run holds the episode wait for it and are built together when it ends; a second
    window sees every change live, and a reload shows the same."""
    ep = "Ep_A"
    built = paths(site["root"], ep)
    if not built.clusters.exists():  # run on its own: build what the first tests built
        open_board(browser, site, ep)
        click(browser, ep, "cluster")
        wait_row(browser, ep, lambda r: r["status"] == "done", 400, "Ep_A to be built")
    page = site["url"] + f"episodes/{ep}"
    browser.set_window_size(1280, 900)
    browser.get(page)
    first = browser.current_window_handle
    browser.switch_to.new_window("window")  # a second page, never reloaded, that must see it all live
    second = browser.current_window_handle
    browser.get(page)
    start = wait_view(browser, lambda v: v["cards"] and v["live"] == "1", 30, "the second window's clusters")
    browser.switch_to.window(first)
    wait_view(browser, lambda v: v["cards"] == start["cards"] and v["live"] == "1", 30, "the clusters")
    singles = [c for c in start["cards"] if len(c["tracks"]) == 1]
    pair = next(c for c in start["cards"] if len(c["tracks"]) == 2)
    assert len(singles) >= 3, start["cards"]

    # Merge two clusters (ticked), built at once.
    a, b, hide = singles[0], singles[1], singles[2]
    for c in (a, b):
        press(browser, f'#clusters .card[data-cluster="{c["id"]}"] input.pick')
    press(browser, '#fix-actions button[data-action="merge"]')
    merged = tuple(sorted(a["tracks"] + b["tracks"]))
    after = wait_view(browser, lambda v: "applied" in v["notice"] and settled(v), 120, "the merge to be built")
    assert merged in [tuple(c["tracks"]) for c in after["cards"]] and len(after["cards"]) == len(start["cards"]) - 1

    # While a run holds the episode: name, split off and hide are recorded, and wait for it.
    holder = subprocess.Popen(["sleep", "300"])
    registry = Registry(site["data"], Unit.episode(ep), heartbeat_s=5)
    try:
        with registry.edit() as data:
            data["runs"]["cluster"] = {"job_id": f"cluster_{ep}", "pid": holder.pid, "host": procinfo.hostname(),
                                       "pid_start_time": procinfo.start_time(holder.pid),
                                       "started_at": "2026-12-01T10:00:00Z", "heartbeat_at": "2026-12-01T10:00:00Z"}
        wait_view(browser, lambda v: v["busy"], 30, "the page to show the run that holds the episode")
        card = {t: f'#clusters .card[data-cluster="{c["cluster_id"]}"]' for t, c in by_tracks(site, ep).items()}
        press(browser, f'{card[merged]} button[data-action="name"]')
        box = browser.find_element(By.CSS_SELECTOR, "#clusters .name-form input")
        assert box.get_attribute("list") == "names"
        box.send_keys("Test Person")
        press(browser, '#clusters .name-form button[data-action="save-name"]')
        wait_view(browser, lambda v: "A run holds Ep_A now" in v["notice"] and len(v["fixes"]) == 2, 30,
                  "the name to wait for the run")
        split_off = pair["tracks"][1]
        press(browser, f'{card[tuple(pair["tracks"])]} .face[data-track="{split_off}"]')
        press(browser, '#fix-actions button[data-action="split"]')
        wait_view(browser, lambda v: len(v["fixes"]) == 3, 30, "the split to be recorded")
        press(browser, f'{card[tuple(hide["tracks"])]} button[data-action="hide"]')
        held = wait_view(browser, lambda v: len(v["fixes"]) == 4, 30, "the hide to be recorded")
        assert [f["state"] for f in held["fixes"]] == ["pending", "pending", "pending", "applied"], held["fixes"]
        assert "recorded while a run holds this episode" in held["status"]
        shot(browser, "episode-corrections-waiting.png")
    finally:
        holder.kill()
        holder.wait()
        with registry.edit() as data:
            data["runs"].pop("cluster", None)
    # The run ended: the page starts the Cluster build that applies all three.
    done = wait_view(browser, lambda v: settled(v) and v["hidden"], 180, "the waiting corrections to be built")
    named = next(c for c in done["cards"] if c["name"] == "Test Person")
    assert named["tracks"] == list(merged) and "named by you" in named["facts"]
    assert [c["tracks"] for c in done["hidden"]] == [hide["tracks"]]
    assert [split_off] in [c["tracks"] for c in done["cards"]], "the track split off is a person of its own"
    assert [t for t in pair["tracks"] if t != split_off] in [c["tracks"] for c in done["cards"]]

    # Undo the hide: the cluster is shown again.
    hidden_record = next(f["id"] for f in done["fixes"] if f["text"].startswith("hide"))
    press(browser, f'#fixes li[data-record="{hidden_record}"] button[data-action="undo"]')
    final = wait_view(browser, lambda v: settled(v) and not v["hidden"] and "done" in v["notice"], 120,
                      "the undo to be built")
    assert hide["tracks"] in [c["tracks"] for c in final["cards"]]
    assert next(f for f in final["fixes"] if f["id"] == hidden_record)["state"] == "undone"
    wait_for(lambda: browser.execute_script(  # the plan made after the last build: nothing left to do
        "return [...document.querySelectorAll('#chips .chip')].every((c) => c.dataset.status === 'built')"
        " && document.getElementById('plan').textContent.startsWith('Nothing to build')"),
        timeout=90, what="the plan to say every output is up to date")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(height + 120, 2600))
    shot(browser, "episode-corrections.png")

    # The second window saw it all live; a reload shows the same.
    browser.switch_to.window(second)
    seen = wait_view(browser, lambda v: v["cards"] == final["cards"] and v["fixes"] == final["fixes"], 30,
                     "the second window to show the corrections live")
    assert seen["hidden"] == []
    browser.close()
    browser.switch_to.window(first)
    browser.refresh()
    again = wait_view(browser, lambda v: v["cards"] and v["fixes"], 30, "the page after a reload")
    assert again["cards"] == final["cards"] and again["fixes"] == final["fixes"]
    browser.set_window_size(640, 900)  # about 80 columns: still readable, nothing cut off
    wide = browser.execute_script("return document.documentElement.scrollWidth")
    assert wide <= 640, f"the narrow page scrolls sideways ({wide} px)"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(640, min(height + 120, 3000))
    shot(browser, "episode-corrections-narrow.png")
    browser.set_window_size(1440, 900)


# The video as the page shows it now: its clock, whether it plays, and the frame on screen (a PNG).
VIDEO_NOW = """
const v = document.getElementById('video');
if (arguments[0]) v.pause();
const c = document.createElement('canvas');
c.width = 320; c.height = 180;
if (v.readyState >= 2) c.getContext('2d').drawImage(v, 0, 0, 320, 180);
return {t: v.currentTime, paused: v.paused, seeking: v.seeking, frame: c.toDataURL('image/png')};
"""


def clip_frames() -> list[tuple[float, object]]:
    """Every frame of the Hamilton clip, small, with the time facepipe gives it (its decoder's)."""
    import cv2

    cap = cv2.VideoCapture(str(SHARED_VIDEOS / "hamilton_clip.mp4"))
    frames = []
    while cap.grab():
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
        frames.append((t, cv2.resize(cap.retrieve()[1], (320, 180)).astype("float32")))
    return frames


def frame_time(frames, png: str) -> float:
    """The facepipe time of the clip's frame nearest the picture the page showed."""
    import base64

    import cv2
    import numpy as np

    shown = cv2.imdecode(np.frombuffer(base64.b64decode(png.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    return min(frames, key=lambda f: float(np.abs(f[1] - shown.astype("float32")).mean()))[0]


def test_the_timeline_and_a_stills_play_button_play_their_moment_with_captions(site, browser):
    """A click on a track plays the video from the track's start, and the frame shown is the one
    facepipe saw there (the clip's video starts 0.85 s into its file, after its audio); a click on
    the time axis plays from that time; a still's play button plays its track; the captions say who
    is on screen; the plan says why in the page's words. A GIF gets a note and the rest works."""
    ep = "hamilton_clip"
    moments = api(site, f"/api/episodes/{ep}/appearances")
    shift = moments["video"]["start_s"]
    assert moments["built"] and shift == pytest.approx(0.852, abs=1e-3)
    browser.set_window_size(1440, 900)
    browser.get(site["url"] + f"episodes/{ep}")
    wait_for(lambda: browser.execute_script(
        "const v = document.getElementById('video'); return document.body.dataset.video === 'ready'"
        " && document.querySelector('#timeline rect.tl-track') && v.textTracks.length && v.textTracks[0].cues"
        " && v.textTracks[0].cues.length && document.querySelector('#clusters .face-play')"), timeout=30,
        what="the video, the timeline, its captions and the clusters")
    plan = browser.find_element(By.ID, "plan").text
    assert plan and "would run" not in plan and str(site["root"]) not in plan, plan

    lane, track = next((lane, t) for lane in moments["lanes"] for t in lane["tracks"] if t["start_s"] > 1.5)
    rect = browser.find_element(By.CSS_SELECTOR, f'#timeline rect.tl-track[data-track="{track["track_id"]}"]')
    ActionChains(browser).move_to_element(rect).perform()
    tip = browser.find_element(By.CSS_SELECTOR, "#timeline .tl-tip").text
    assert tip.startswith(f"{lane['label']} · ") and f"(track {track['track_id']})" in tip, tip
    frames = clip_frames()
    rect.click()
    now = wait_for(lambda: (v := browser.execute_script(VIDEO_NOW, False)) and not v["seeking"]
                   and abs(v["t"] - shift - track["start_s"]) < 0.5 and v, timeout=10, interval=0.05,
                   what=f"the video at track {track['track_id']}'s start ({track['start_s']} s)")
    assert not now["paused"], "a click plays"
    shown = browser.execute_script(VIDEO_NOW, True)  # paused: the frame on screen and the clock agree
    assert abs(frame_time(frames, shown["frame"]) - (shown["t"] - shift)) < 0.07, "the frame is not facepipe's"
    cues = browser.execute_script("return [...document.getElementById('video').textTracks[0].cues]"
                                  ".map((c) => [c.startTime, c.text])")
    assert cues[0][0] == pytest.approx(shift, abs=1e-3) and "person" in cues[0][1], cues  # moved onto the clock
    shot(browser, "episode-moments.png")

    axis = browser.find_element(By.CSS_SELECTOR, "#timeline .tl-axis")
    ActionChains(browser).move_to_element_with_offset(axis, -axis.size["width"] // 4, 0).click().perform()
    wanted = moments["duration_s"] / 4
    wait_for(lambda: abs(browser.execute_script(VIDEO_NOW, False)["t"] - shift - wanted) < 0.5, timeout=10,
             interval=0.05, what=f"the video at a quarter of the episode ({wanted:.2f} s)")

    other = next(t for ln in moments["lanes"] for t in ln["tracks"] if t["track_id"] != track["track_id"]
                 and t["start_s"] > 0.5 and ln["cluster_id"] is not None)
    press(browser, f'#clusters .face-play[data-play="{other["track_id"]}"]')
    wait_for(lambda: abs(browser.execute_script(VIDEO_NOW, False)["t"] - shift - other["start_s"]) < 0.5,
             timeout=10, interval=0.05, what=f"the video at track {other['track_id']}'s start")

    browser.get(site["url"] + "episodes/walking_and_pause")
    note = wait_for(lambda: browser.execute_script(
        "return document.body.dataset.video === 'unplayable' && document.querySelector('#timeline rect.tl-track')"
        " && document.querySelector('#clusters .card') && document.getElementById('video-note').textContent"),
        timeout=30, what="the note on the GIF, with its timeline and clusters")
    assert "cannot play walking_and_pause.gif: it is a GIF" in note
    assert browser.execute_script("return document.getElementById('video').hidden")
    shot(browser, "episode-unplayable.png")


def test_a_photo_finds_the_person_and_a_time_plays_that_moment(site, browser, tmp_path):
    """The dashboard's search with a photo of the clip's longest-seen person (a still of theirs,
    from outside the data root): every episode where they appear, nearest first, and a click on a
    time opens that episode playing the moment; a file that is no photo is refused in one line."""
    clip = paths(site["root"], "hamilton_clip")
    biggest = max(read_json(clip.clusters)["clusters"], key=lambda c: c["screen_time_s"])
    still = max((s for s in read_json(clip.stills_manifest)["stills"] if s["track_id"] in biggest["track_ids"]),
                key=lambda s: s["quality"])
    photo = tmp_path / "who is this.jpg"
    photo.write_bytes((clip.stills_dir / still["file"]).read_bytes())
    for k in range(8):  # the pages left behind (kept for the back button) hold no connection open
        browser.get(site["url"] + f"episodes/{('hamilton_clip', 'walking_and_pause')[k % 2]}")
        wait_for(lambda: browser.execute_script("return document.body.dataset.video in {ready: 1, unplayable: 1}"
                                                " && document.body.dataset.live === '1'"), timeout=30,
                 what="the episode's video and stream")
    open_board(browser, site)
    browser.find_element(By.ID, "find-photo").send_keys(str(photo))
    wait_for(lambda: browser.execute_script("return document.body.dataset.found"), timeout=120,
             what="the search's answer (the first loads its models)")
    # Each match shows its still once the browser has loaded it (a broken one never gets a width).
    wait_for(lambda: browser.execute_script("""
      const imgs = [...document.querySelectorAll('#find-matches li.find-match img')];
      return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0)"""),
             timeout=30, what="the matches' stills to load")
    found = browser.execute_script("""
      return [...document.querySelectorAll('#find-matches li.find-match')].map((li) => ({
        episode: li.dataset.episode, cluster: Number(li.dataset.cluster),
        distance: Number(li.querySelector('.find-distance').textContent.split(' ')[1]),
        still: li.querySelector('img') && li.querySelector('img').naturalWidth,
        times: [...li.querySelectorAll('a.find-time')].map((a) => a.getAttribute('href'))}))""")
    mine = next(m for m in found if m["episode"] == "hamilton_clip")
    assert mine["cluster"] == biggest["cluster_id"] and mine["distance"] < 0.02 and mine["still"], found
    assert [m["distance"] for m in found] == sorted(m["distance"] for m in found), "nearest first"
    assert {m["episode"] for m in found} <= {"hamilton_clip", "Ep_A"}, "the clip's person is in no other episode"
    shot(browser, "find.png")
    wanted = mine["times"][-1]
    at = float(wanted.split("#t=")[1])
    press(browser, f'#find-matches li[data-episode="hamilton_clip"] a.find-time[href="{wanted}"]')
    shift = api(site, "/api/episodes/hamilton_clip/appearances")["video"]["start_s"]
    wait_for(lambda: (v := browser.execute_script(VIDEO_NOW, False)) and v["t"] > 0 and not v["seeking"]
             and abs(v["t"] - shift - at) < 0.5, timeout=30, interval=0.05,
             what=f"the episode page at the moment of the time clicked ({at} s)")
    assert browser.current_url.endswith(f"/episodes/hamilton_clip#t={at:g}")

    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    open_board(browser, site)
    browser.find_element(By.ID, "find-photo").send_keys(str(notes))
    status = "return document.getElementById('find-status').textContent"
    wait_for(lambda: "Searching" not in browser.execute_script(status), timeout=30, what="the refusal")
    said = browser.execute_script(status)
    assert said.startswith("notes.jpg: not a photo") and "; give" in said, said


def test_ctrl_c_stops_the_server_and_cancels_its_runs_cleanly(site, browser):
    open_board(browser, site, "Ep_B")
    click(browser, "Ep_B", "cluster")
    wait_row(browser, "Ep_B", lambda r: "detect_chunk" in r["jobs"], 120, "Ep_B's detect job")
    head = api(site, "/api/episodes/Ep_B")["row"]["launch"]["pid"]
    site["server"].send_signal(signal.SIGINT)
    assert site["server"].wait(timeout=180) == 0
    assert not procinfo.group(head), "a run the server started outlived it"
    state = read_json(paths(site["root"], "Ep_B").pipeline_state)
    assert state["status"] == "cancelled", state
    assert registry_clear(site, "Ep_B")
    h = paths(site["root"], "Ep_B").harvest
    assert not (h / "detections.jsonl").exists() and not list(h.rglob(".*.tmp*"))
    assert "stopping 1 run(s) started here" in site["log"].read_text()

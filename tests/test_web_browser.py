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
import time
import urllib.request
from pathlib import Path

import pytest

from facepipe.runtime import procinfo
from facepipe.tools.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium, start_server
from helpers import REPO, SHARED_VIDEOS, copy_workdir, paths, read_json, start_snakemake, wait_for, write_config

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)
pytest.importorskip("selenium", reason="needs selenium: pip install -e '.[test]'")
pytest.importorskip("starlette", reason="facepipe serve needs the web extra: pip install -e '.[web]'")

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
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
    written = {json.loads(line)["message"] for line in paths(site["root"], "Ep_A").progress_log.read_text().splitlines()}
    assert set(messages) - {""} <= written, "the page showed a message no state held"
    steps = [s["step"] for s in seen + samples if s["status"] == "running"]
    firsts = [steps.index(step) for step in STEP_ORDER]
    assert firsts == sorted(firsts), f"steps out of order: {steps}"
    pcts = [s["pct"] for s in samples + seen if s["status"] in ("running", "done") and s["pct"] is not None]
    ordered = [s["pct"] for s in samples if s["pct"] is not None and s["status"] != "new"]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(ordered)), f"pct went down: {ordered}"
    assert len(set(pcts)) >= 8, "the bar hardly moved"
    # Every chip built once the plan is made again after the run.
    done = wait_row(browser, "Ep_A", lambda r: browser.execute_script(
        "return [...document.querySelectorAll('tr[data-episode=\"Ep_A\"] .chip')].every((c) => c.dataset.status === 'built')"),
        60, "the chips to turn built")
    assert done["status"] == "done"
    shot(browser, "episodes.png")

    browser.get(site["url"] + "episodes/Ep_A")
    sheet = wait_for(lambda: browser.execute_script(
        "const i = document.getElementById('contact-sheet'); return i && i.complete && i.naturalWidth"),
        timeout=30, what="the contact sheet")
    assert sheet > 100
    cards = browser.find_elements(By.CSS_SELECTOR, "#clusters .card")
    assert cards and "on screen" in cards[0].text and "track" in cards[0].text
    assert browser.execute_script("return [...document.querySelectorAll('#clusters img')].every((i) => i.complete && i.naturalWidth > 0)")
    drawn = browser.execute_script("return [...document.querySelectorAll('#chart polyline')].map((p) => p.dataset.step)")
    assert [s for s in ("detect", "track", "stills", "cluster") if s in drawn] == ["detect", "track", "stills", "cluster"]
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

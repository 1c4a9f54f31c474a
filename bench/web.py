"""Bench 5: the web dashboard (`facepipe serve`), measured in a real headless Chromium.

1. latency: a state file written (PipelineState.update, as a job writes it) until the page's
   row shows it (a MutationObserver stamps the moment): median and maximum over 50 updates.
   Goal: under 1 s.
2. scale: 500 stand-in episodes (outputs as bench/planning.py makes them, each with a done state):
   `/` navigated to until its 500 rows are drawn, and GET /api/episodes. Goals: under 2 s, under 0.3 s.
3. clients: 50 Server-Sent Events clients on loopback for 60 s while one real run (the Hamilton
   clip, started with the page's Cluster action) progresses: every client must receive every event
   the server published (same ids, none missing) and the run's end; the server's CPU and memory
   (from /proc/<pid>) are sampled each second and must stay flat.
4. burst: 20 episodes (3 s clips) started with the page's build action within a second, on the
   workstation profile and (--profile) through the SLURM profile: every one completes, each is
   built exactly once (one run id in its progress log, one job per rule), the registry ends clean,
   and GET /api/episodes, asked every 0.2 s throughout, answers within 0.3 s (goal).

    python bench/web.py [--part latency|scale|clients|burst|all] [--episodes 500] [--clients 50] [--seconds 60]
                        [--burst 20] [--step cluster] [--profile workflow/profiles/slurm] [--max-builds N]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from benchlib import OUT, SHARED, episode, machine
from facepipe.base.unit import Unit
from facepipe.runtime.progress import PipelineState
from facepipe.tools.browser import chromium, click_all, start_server
from facepipe.tools.testmedia import make_video
from planning import stand_in_outputs, stand_in_videos

MARK = """
const ep = arguments[0];
window.__marks = {};
new MutationObserver(() => {
  const tr = document.querySelector(`tr[data-episode="${ep}"]`);
  const text = tr && tr.querySelector(".message").textContent;
  if (text && !(text in window.__marks)) window.__marks[text] = Date.now();
}).observe(document.getElementById("rows"), {subtree: true, childList: true, characterData: true});
"""


def site(name: str, videos) -> tuple:
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "serve-config.yaml"
    config.write_text(f"videos_dir: {videos}\ndata_root: data\n")
    return folder, config


def stop(server) -> None:
    server.send_signal(signal.SIGINT)
    server.wait(timeout=180)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def wait_ready(driver, rows: int | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = driver.execute_script("return document.body.dataset.ready === '1' && document.body.dataset.rows")
        if ready and (rows is None or int(ready) >= rows):
            return
        time.sleep(0.02)
    raise SystemExit("the page never became ready")


def wait_plan(url: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plan = get_json(url + "api/episodes")["meta"]["plan"]
        if plan["state"] != "planning" and not plan["refreshing"]:
            return plan
        time.sleep(0.5)
    raise SystemExit("the plan was never made")


def latency(updates: int) -> None:
    videos = OUT / "web-latency-videos"
    videos.mkdir(parents=True, exist_ok=True)
    folder, config = site("web-latency", videos)
    ep = "Bench_1"
    state = PipelineState(folder / "data", Unit.episode(ep))
    state.update(status="running", run_id="bench", message="start", pct=0.0)
    server, url = start_server(folder, config)
    driver = chromium()
    try:
        driver.get(url)
        wait_ready(driver, 1)
        driver.execute_script(MARK, ep)
        written = {}
        for k in range(updates):
            time.sleep(random.uniform(0.3, 0.8))  # never in step with the server's polling
            message = f"update {k}"
            written[message] = time.time() * 1000
            state.update(message=message, pct=k / updates)
        time.sleep(2)
        marks = driver.execute_script("return window.__marks")
    finally:
        driver.quit()
        stop(server)
    lags = [(marks[m] - t) / 1000 for m, t in written.items() if m in marks]
    print(f"latency, state file written -> row drawn, {len(lags)} of {updates} updates seen: "
          f"median {statistics.median(lags):.3f} s, max {max(lags):.3f} s (goal < 1 s)")


def scale(n: int, trials: int = 5) -> None:
    videos = OUT / f"standin-{n}"
    stand_in_videos(videos, n)
    folder, config = site(f"web-scale-{n}", videos)
    stand_in_outputs(folder, videos)
    for video in videos.iterdir():
        PipelineState(folder / "data", Unit.episode(video.stem)).update(
            status="done", pct=1.0, message="Clustering complete", current_step="Cluster", step_index=4, run_id="r")
    server, url = start_server(folder, config)
    try:
        plan = wait_plan(url)
        driver = chromium()
        try:
            pages = []
            for _ in range(trials):
                driver.get("about:blank")
                t0 = time.perf_counter()
                driver.get(url)
                wait_ready(driver, n)
                pages.append(time.perf_counter() - t0)
            drawn = driver.execute_script("return document.querySelectorAll('#rows tr').length")
        finally:
            driver.quit()
        apis = []
        for _ in range(20):
            t0 = time.perf_counter()
            body = get_json(url + "api/episodes")
            apis.append(time.perf_counter() - t0)
        cpu0, _rss = proc_sample(server.pid)
        time.sleep(10)
        cpu1, rss = proc_sample(server.pid)
    finally:
        stop(server)
    print(f"{n} episodes (plan made in {plan['seconds']} s in the background): `/` drawn in the browser "
          f"({drawn} rows): median {statistics.median(pages):.2f} s, max {max(pages):.2f} s of {trials} (goal < 2 s); "
          f"GET /api/episodes ({len(body['episodes'])} rows, {len(json.dumps(body)) // 1024} KiB): "
          f"median {statistics.median(apis):.3f} s, max {max(apis):.3f} s of 20 (goal < 0.3 s); idle, watching "
          f"the {n} episodes: {(cpu1 - cpu0) * 10:.1f} % of one core, {rss:.0f} MB")


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, resident memory MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    rss = next(int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
               if ln.startswith("VmRSS"))
    return (int(fields[11]) + int(fields[12])) / ticks, rss / 1024


class Listener(threading.Thread):
    """One SSE client: the ids of every event it gets, and the states of one episode."""

    def __init__(self, host: str, port: int, ep: str):
        super().__init__(daemon=True)
        self.host, self.port, self.ep = host, port, ep
        self.ids: list[int] = []
        self.states: list[tuple] = []  # the episode's row, as each event had it
        self.updates: list[str] = []  # every state of the episode written meanwhile (their updated_at)
        self.halt = threading.Event()
        self.error = None

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("GET", "/api/events")
            response = conn.getresponse()
            event = None
            while not self.halt.is_set():
                line = response.fp.readline().decode()
                if not line:
                    break
                if line.startswith("id: "):
                    self.ids.append(int(line[4:]))
                elif line.startswith("event: "):
                    event = line[7:].strip()
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    for row in data.get("rows", []):
                        if row["episode"] == self.ep:
                            self.states.append((event, row["status"], row["message"], row["pct"]))
                    self.updates += [u["updated_at"] for u in data.get("updates", {}).get(self.ep, [])]
            conn.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            self.error = repr(exc)


def clients(count: int, seconds: float) -> None:
    videos = OUT / "web-clients-videos"
    shutil.rmtree(videos, ignore_errors=True)
    videos.mkdir(parents=True)
    ep = "Bench_run"
    (videos / f"{ep}.mp4").symlink_to(SHARED / "videos" / "hamilton_clip.mp4")
    folder, config = site("web-clients", videos)
    server, url = start_server(folder, config)
    host, port = url.split("//")[1].rstrip("/").split(":")
    try:
        wait_plan(url)
        listeners = [Listener(host, int(port), ep) for _ in range(count)]
        listening = time.monotonic()
        for listener in listeners:
            listener.start()
        time.sleep(2)
        request = urllib.request.Request(url + f"api/episodes/{ep}/build/cluster", method="POST",
                                         headers={"Origin": url.rstrip("/")})
        urllib.request.urlopen(request, timeout=30).read()
        samples, t0 = [], time.monotonic()
        while time.monotonic() - t0 < seconds or get_json(url + f"api/episodes/{ep}")["row"]["busy"]:
            samples.append((time.monotonic() - t0, *proc_sample(server.pid)))
            time.sleep(1)
        time.sleep(2)
        listened = time.monotonic() - listening
        for listener in listeners:
            listener.halt.set()
    finally:
        stop(server)
    for listener in listeners:
        listener.join(timeout=35)
    errors = [x.error for x in listeners if x.error]
    first = listeners[0]
    same = all(x.ids == first.ids and x.states == first.states for x in listeners)
    gaps = sum(1 for x in listeners for a, b in itertools.pairwise(x.ids) if b != a + 1)
    writes = [json.loads(line)["updated_at"] for line in episode(folder, ep).progress_log.read_text().splitlines()]
    every = sum(1 for x in listeners if x.updates == writes)
    final = first.states[-1] if first.states else None
    cpu = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in itertools.pairwise(samples)]
    tenth = max(1, len(cpu) // 6)
    rss = [s[2] for s in samples]
    print(f"{count} SSE clients for {listened:.0f} s while a run of the Hamilton clip went from start to "
          f"{final[1] if final else '?'} ({final[2] if final else ''}): {len(first.ids)} events each, every client "
          f"the same events: {same}, gaps in event ids: {gaps}, client errors: {len(errors)}; the run wrote its state "
          f"{len(writes)} times: {every} of {count} clients got all {len(writes)}, in order (as `updates`)")
    print(f"server CPU: first {tenth} s {statistics.mean(cpu[:tenth]):.1f} %, last {tenth} s "
          f"{statistics.mean(cpu[-tenth:]):.1f} %, max {max(cpu):.1f} % of one core; memory (RSS) "
          f"{rss[0]:.0f} MB at start, {rss[-1]:.0f} MB at the end, max {max(rss):.0f} MB")


def burst(count: int, step: str, profile: str | None, max_builds: int | None = None) -> None:
    clip = make_video(OUT / "burst-clip" / "clip-3s.mp4", 640, 360, 3.0)
    videos = OUT / "web-burst-videos"
    shutil.rmtree(videos, ignore_errors=True)
    videos.mkdir(parents=True)
    names = [f"Burst_{k:02d}" for k in range(1, count + 1)]
    for name in names:
        (videos / f"{name}.mp4").symlink_to(clip)
    folder, config = site("web-burst", videos)
    options = (["--profile", str(Path(profile).resolve())] if profile else []) + \
        (["--max-builds", str(max_builds)] if max_builds is not None else [])
    server, url = start_server(folder, config, *options)
    where = (f"through {profile}" if profile else "on the workstation profile") + \
        (f", --max-builds {max_builds}" if max_builds is not None else "")
    try:
        wait_plan(url)
        t0 = time.monotonic()
        answers = click_all(url, [f"/api/episodes/{n}/build/{step}" for n in names])
        clicked = time.monotonic() - t0
        api, at, settled = [], [], None
        while time.monotonic() - t0 < 1800:
            a0 = time.monotonic()
            rows = {r["episode"]: r for r in get_json(url + "api/episodes")["episodes"]}
            api.append(time.monotonic() - a0)
            at.append(a0 - t0)
            if all(not rows[n]["busy"] and rows[n]["status"] in ("done", "error", "cancelled") for n in names):
                settled = time.monotonic() - t0
                break
            time.sleep(0.2)
    finally:
        stop(server)
    statuses = [rows[n]["status"] for n in names]
    runs = [len({json.loads(line).get("run_id") for line in episode(folder, n).progress_log.read_text().splitlines()})
            for n in names]
    clean = sum(1 for n in names if not any((json.loads(episode(folder, n).runtime.read_text()) or {}).get(k)
                                            for k in ("runs", "jobs", "active_jobs")))
    accepted = sum(1 for code, _ in answers if code == 202)
    print(f"burst of {count} {step} builds {where}: {accepted} of {count} clicks accepted in {clicked:.2f} s; "
          f"all settled after {settled or float('nan'):.0f} s: {statuses.count('done')} done, "
          f"{count - statuses.count('done')} not; run ids per episode: max {max(runs)} (1 = built exactly once); "
          f"registry clean: {clean} of {count}; GET /api/episodes over {len(api)} requests: median "
          f"{statistics.median(api):.3f} s, max {max(api):.3f} s (goal < 0.3 s); the slowest at "
          + ", ".join(f"{at[i]:.0f} s ({api[i]:.3f})" for i in sorted(range(len(api)), key=api.__getitem__)[-5:])
          + " after the clicks")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("latency", "scale", "clients", "burst", "all"), default="all")
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--step", default="cluster")
    ap.add_argument("--max-builds", type=int, help="the server's --max-builds (default: its own)")
    ap.add_argument("--profile", help="the burst's builds through this Snakemake profile too (e.g. the SLURM one)")
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--updates", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if args.part in ("latency", "all"):
        latency(args.updates)
    if args.part in ("scale", "all"):
        scale(args.episodes)
    if args.part in ("clients", "all"):
        clients(args.clients, args.seconds)
    if args.part in ("burst", "all"):
        burst(args.burst, args.step, None, args.max_builds)
        if args.profile:
            burst(args.burst, args.step, args.profile, args.max_builds)


if __name__ == "__main__":
    main()

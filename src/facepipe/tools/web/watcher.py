"""One watcher for all the browsers: it notices any change to any episode, whoever made it.

Every `poll_s` (a quarter of a second) it looks at the size, modification time and inode of every
episode's pipeline_state.json, runtime.json, progress.jsonl and corrections file (four stat calls
an episode; no file is read unless it changed). Every state a job writes is also appended to
progress.jsonl, so the states written between two looks are read from there and sent too
(`updates`): a client misses none, even those rewritten within a quarter of a second. Polling, not
inotify: jobs on other hosts (SLURM nodes writing to a shared data root) change files without any
local event. A row is also looked at again every RECHECK_S while its
episode is busy, so a job that froze or died (no more writes) shows as stale. The episode list
follows the videos folder and the data root (their listing is read again when they change).

The rows are computed in the watcher's own thread; the event loop publishes each change once, as
a pre-encoded Server-Sent Event that every client's queue shares (Hub). A client gets the whole
board on connect, then only the rows that changed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ...base import clock
from ...base.episodes import EPISODE_ID, survey
from ...base.layout import HARVEST, SEASONS, EpisodePaths
from ...base.unit import Unit
from ...runtime.progress import ACTIVE
from .board import PAGE_STEPS, Planner, encode, make_row
from .launcher import launch_key
from .seasons import files_of as season_files
from .seasons import make_row as make_season_row
from .seasons import seasons as season_list
from .settings import Settings

RECHECK_S = 1.0
RELIST_S = 10.0
# A client further behind than this many events is dropped; its browser reconnects and gets the
# whole board again (EventSource does so by itself).
CLIENT_BACKLOG = 500
# The most intermediate states sent for an episode in one event.
MAX_UPDATES = 200
UPDATE_FIELDS = ("updated_at", "status", "current_step", "step_index", "message", "pct", "run_id")
KEEPALIVE_S = 15.0


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event`, at most `timeout` seconds; True if it was set. (asyncio.wait_for, before
    Python 3.12, can swallow a cancellation that comes as the event is set: a task using it might
    never stop.)"""
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _pending = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


def _stat(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass(frozen=True)
class View:
    """The board as last published: rows by episode, and each row pre-encoded; rows by season."""
    seq: int = 0
    rows: dict = field(default_factory=dict)
    encoded: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    seasons: dict = field(default_factory=dict)


def event(kind: str, seq: int, payload: dict) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


class Client:
    def __init__(self):
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closed = False


class Hub:
    """The connected browsers: each gets every published event, in order."""

    def __init__(self):
        self.clients: set[Client] = set()
        self.closing = False

    def subscribe(self) -> Client:
        client = Client()
        client.closed = self.closing
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, text: str) -> None:
        for client in list(self.clients):
            if len(client.queue) >= CLIENT_BACKLOG:
                client.closed = True  # too slow: it reconnects and starts again from a snapshot
            else:
                client.queue.append(text)
            client.wake.set()

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closing = True
        for client in list(self.clients):
            client.closed = True
            client.wake.set()

    async def stream(self, client: Client, first: str):
        """The text/event-stream body of one client: `first` (its snapshot), then every event."""
        try:
            yield "retry: 1000\n" + first
            while not client.closed:
                if not client.queue:
                    client.wake.clear()
                    if not await wait_event(client.wake, KEEPALIVE_S):
                        yield ": keep-alive\n\n"
                        continue
                if client.closed:
                    break
                batch = "".join(client.queue)
                client.queue.clear()
                yield batch
        finally:
            self.unsubscribe(client)


class Watcher:
    def __init__(self, settings: Settings, planner: Planner, launches: dict, hub: Hub):
        self.settings = settings
        self.planner = planner
        self.launches = launches  # episode -> the launcher's public record of the page's latest launch
        self.hub = hub
        self._videos_problem: str | None = None
        self.view = View(meta=self._meta(0))
        self._sigs: dict[str, tuple] = {}
        self._status: dict[str, str] = {}
        self._settled: dict[str, bool] = {}  # no run going and nothing live holding the episode
        self._checked: dict[str, float] = {}
        self._paths: dict[str, tuple[Path, Path, Path, Path]] = {}
        self._offsets: dict[str, int] = {}
        self._videos: dict[str, Path] = {}
        self._harvest: set[str] = set()
        self._seasons: dict[str, list[str]] = {}  # season -> its episodes
        self._season_sigs: dict[str, tuple] = {}
        self._season_checked: dict[str, float] = {}
        self._season_pokes: set[str] = set()
        self._dir_sigs: tuple = ()
        self._listed_at = 0.0
        self._pokes: set[str] = set()
        self._all = True
        self._stopped = False
        self._wake: asyncio.Event | None = None
        self.ready = asyncio.Event()

    # --- asked from the event loop -------------------------------------------------------------
    def poke(self, episode: str | None = None) -> None:
        """Look at `episode` (None: every episode, e.g. a new plan) at once, changed files or not."""
        if episode is None:
            self._all = True
        else:
            self._pokes.add(episode)
        self.wake()

    def poke_season(self, season: str) -> None:
        """Make `season`'s row again at once (its launch changed, or its corrections)."""
        self._season_pokes.add(season)
        self.wake()

    def video(self, episode: str) -> Path | None:
        """The episode's video as episode discovery found it in the videos folder at the last look."""
        return self._videos.get(episode)

    def wake(self) -> None:
        """Look again now (only what changed)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="facepipe-watch") as pool:
            while not self._stopped:
                force, pokes, season_pokes = self._all, self._pokes, self._season_pokes
                self._all, self._pokes, self._season_pokes = False, set(), set()
                self._wake.clear()
                try:
                    changed, removed, updates, replan, meta = await loop.run_in_executor(pool, self._scan, force,
                                                                                          pokes)
                    seasons = await loop.run_in_executor(pool, self._scan_seasons, force, season_pokes)
                except Exception:  # a bug must not stop every page's updates: say it, look again
                    traceback.print_exc()
                    self._all = True
                else:
                    self._publish(changed, removed, updates, meta, seasons)
                    if replan:
                        self.planner.request()
                    self.ready.set()
                await wait_event(self._wake, self.settings.poll_s)

    def stop(self) -> None:
        self._stopped = True
        self.wake()

    def _publish(self, changed: dict, removed: list[str], updates: dict, meta: dict,
                 seasons: dict | None = None) -> None:
        old = self.view
        if not changed and not removed and not updates and meta == old.meta and seasons is None:
            return
        rows, encoded = dict(old.rows), dict(old.encoded)
        for ep in removed:
            rows.pop(ep, None)
            encoded.pop(ep, None)
        for ep, (row, text) in changed.items():
            rows[ep], encoded[ep] = row, text
        if any(ep not in old.rows for ep in changed):  # keep the episodes in order
            rows, encoded = dict(sorted(rows.items())), dict(sorted(encoded.items()))
        self.view = View(old.seq + 1, rows, encoded, meta, old.seasons if seasons is None else seasons)
        payload = {"now": clock.utc_now(), "rows": [row for row, _text in changed.values()], "removed": removed}
        if updates:
            payload["updates"] = updates
        if seasons is not None:
            payload["seasons"] = list(seasons.values())
        if meta != old.meta:
            payload["meta"] = meta
        self.hub.publish(event("rows", self.view.seq, payload))

    def listing(self, status: str | None = None) -> str:
        """GET /api/episodes: the board's rows (those of `status`, if given) as JSON, joined from the
        pre-encoded rows, so that a request encodes only the small meta."""
        view = self.view
        rows = ",".join(text for ep, text in view.encoded.items()
                        if status is None or view.rows[ep]["status"] == status)
        return f'{{"meta":{json.dumps(view.meta, separators=(",", ":"))},"episodes":[{rows}]}}'

    def snapshot(self) -> str:
        """The whole board as one event (a client's first), built from the pre-encoded rows."""
        view = self.view
        head = json.dumps({"now": clock.utc_now(), "meta": view.meta, "seasons": list(view.seasons.values())},
                          separators=(",", ":"))[:-1]
        return f"id: {view.seq}\nevent: snapshot\ndata: {head},\"rows\":[{','.join(view.encoded.values())}]}}\n\n"

    # --- in the watcher's thread ---------------------------------------------------------------
    def _meta(self, count: int) -> dict:
        s = self.settings
        return {"data_root": str(s.data_root), "videos_dir": str(s.videos_dir), "episodes": count,
                "plan": self.planner.plan.public(), "videos_problem": self._videos_problem, "steps": PAGE_STEPS}

    def _list(self, now: float) -> bool:
        """Read the videos folder and the data root's harvest/ again if either changed; True if the
        videos (or what is wrong with them) changed since the last listing."""
        harvest = self.settings.data_root / HARVEST
        sigs = (_stat(self.settings.videos_dir), _stat(harvest), _stat(self.settings.data_root / SEASONS))
        if sigs == self._dir_sigs and now - self._listed_at < RELIST_S:
            return False
        first = not self._listed_at
        self._dir_sigs, self._listed_at = sigs, now
        videos, problems = survey(self.settings.videos_dir)  # a badly named file hides no other episode
        problem = " · ".join(problems) or None
        news = set(videos) != set(self._videos) or problem != self._videos_problem
        self._videos, self._videos_problem = videos, problem
        try:
            self._harvest = {e.name for e in os.scandir(harvest) if e.is_dir() and EPISODE_ID.match(e.name)}
        except OSError:
            self._harvest = set()
        self._seasons = season_list(self.settings, self._videos)
        return news and not first

    def _files(self, ep: str) -> tuple[Path, Path, Path, Path]:
        if ep not in self._paths:
            paths = EpisodePaths(self.settings.data_root, ep)
            self._paths[ep] = (paths.pipeline_state, paths.runtime, paths.progress_log, paths.corrections)
        return self._paths[ep]

    def _new_states(self, ep: str, path: Path, st: tuple | None) -> list[dict]:
        """The states appended to progress.jsonl since the last look."""
        size, start = (st[1] if st else 0), self._offsets[ep]
        if size < start:  # a new, shorter file: start from its end
            self._offsets[ep] = size
            return []
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(size - start)
        except OSError:
            return []
        whole = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offsets[ep] = start + whole
        states = []
        for line in data[:whole].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                states.append({k: entry.get(k) for k in UPDATE_FIELDS})
        return states[-MAX_UPDATES:]

    def _scan(self, force: bool, pokes: set[str]):
        now = time.monotonic()
        replan = self._list(now)  # a video came or went: the plan changed
        plan = self.planner.plan
        shown = self.view.rows
        changed, updates = {}, {}
        visible = set()
        for ep in sorted(set(self._videos) | self._harvest):
            state_file, runtime_file, progress_file, corrections_file = self._files(ep)
            sig = (_stat(state_file), _stat(runtime_file), _stat(progress_file), _stat(corrections_file))
            if ep not in self._videos and sig[0] is None:
                continue  # a folder under harvest/ with no state: not an episode (yet)
            visible.add(ep)
            launch = self.launches.get(ep)
            busy = self._status.get(ep) in ACTIVE or self._busy(ep) or bool(launch and launch.get("alive"))
            due = busy and now - self._checked.get(ep, 0.0) >= RECHECK_S
            if not (force or due or ep in pokes or ep not in shown or sig != self._sigs.get(ep)):
                continue
            if ep not in self._offsets:  # what was written before the server looked is history
                self._offsets[ep] = sig[2][1] if sig[2] else 0
            elif sig[2] != self._sigs[ep][2]:
                states = self._new_states(ep, progress_file, sig[2])
                if states:
                    updates[ep] = states
            self._sigs[ep], self._checked[ep] = sig, now
            row = make_row(self.settings, ep, ep in self._videos, plan, launch)
            # A run ended, whoever ran it: its outputs changed, so the plan did. It has ended once its
            # state is no longer pending or running and nothing live holds the episode: the last job
            # writes "done" before snakemake has recorded it (its metadata, the incomplete markers), and
            # a plan made in between would be the plan from before the run.
            settled = row["status"] not in ACTIVE and not row["busy"]
            if self._settled.get(ep) is False and settled:
                replan = True
            self._status[ep], self._settled[ep] = row["status"], settled
            text = encode(row)
            if text != self.view.encoded.get(ep):
                changed[ep] = (row, text)
        removed = [ep for ep in shown if ep not in visible]
        return changed, removed, updates, replan, self._meta(len(visible))

    def _scan_seasons(self, force: bool, pokes: set[str] = frozenset()) -> dict | None:
        """Every season's row, or None when none changed (their files, their launches, or the list
        of seasons)."""
        shown, now = self.view.seasons, time.monotonic()
        rows, any_changed = {}, force or set(self._seasons) != set(shown)
        for season, episodes in self._seasons.items():
            sig = tuple(_stat(p) for p in season_files(self.settings, season))
            busy = bool(shown.get(season, {}).get("busy")) or shown.get(season, {}).get("status") in ACTIVE
            due = busy and now - self._season_checked.get(season, 0.0) >= RECHECK_S
            if season in shown and sig == self._season_sigs.get(season) and not due and not force \
                    and season not in pokes and shown[season]["episodes"] == episodes:
                rows[season] = shown[season]
                continue
            self._season_sigs[season], self._season_checked[season] = sig, now
            rows[season] = make_season_row(self.settings, season, episodes,
                                           self.launches.get(launch_key(Unit.season(season))))
            any_changed = any_changed or rows[season] != shown.get(season)
        return rows if any_changed else None

    def _busy(self, ep: str) -> bool:
        row = self.view.rows.get(ep)
        return bool(row and row["active"])

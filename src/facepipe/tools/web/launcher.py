"""The runs the page starts: one snakemake process per click, exactly as from the terminal.

A click on Cluster (or Detect, Track, Stills) runs `snakemake <that step's outputs of the
episode>` (base.layout.step_targets) with the project's workflow and profile, the server's config
file and its data root and videos folder (runtime.launch.snakemake_argv), in the folder the server
was started in, with the server's --profile if it was given one (on a login node, the SLURM
profile: every button then submits through SLURM, and Cancel is `scancel`), in its own process
group (start_new_session), its output going to harvest/{ep}/logs/snakemake.log. The run
registers in runtime.json through the workflow's onstart hook like any other, so the page,
`facepipe status` and `facepipe cancel` all see it. A season's build (the season page's, and the
rebuild of a season's correction) is the same with the season's outputs
(base.layout.SEASON_OUTPUTS) as targets, its output in seasons/{season}/logs/snakemake.log.

A click on an episode that a live run or job holds (or that this server is still starting, or
has queued) is refused with the registry's message naming the holder; launches are serialised per
episode, so two quick clicks cannot both pass that check.

At most `max_builds` builds run at once (Settings.max_builds: on the workstation profile, as many
as the machine has cores; through a --profile, no limit, the cluster's queue orders them). A click
beyond it is accepted and queued: the row shows "queued (k of n)", Cancel takes it off the queue,
and it starts, in the order clicked, when a running build ends; if a run from the terminal holds
the episode by then, it is not started and the row says so. Twenty clicks on a 2-core machine so
run two at a time rather than twenty snakemake processes and their jobs side by side (their memory
and the page's answers: bench/web.py, burst). The queue is the server's own: a stopped server
starts none of it.

When snakemake ends, its process group is emptied (its jobs stop if it was killed) and, if it was
killed before settling its episodes, the episode is marked `error` saying so
(runtime.run_events.head_died); if it ended before its run started, the row says why, from its log.
When the server stops, every run it started gets SIGINT on its process group, like Ctrl-C in a
terminal, and the server waits for them to end cancelled (stop_all).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...base import clock
from ...base.errors import FacepipeError
from ...base.layout import SEASON_OUTPUTS, EpisodePaths, SeasonPaths, step_targets
from ...base.unit import Unit
from ...runtime import procinfo, run_events
from ...runtime.cancel import cancel
from ...runtime.launch import snakemake_argv
from ...runtime.progress import ACTIVE, PipelineState
from ...runtime.registry import Registry
from ...runtime.snapshot import log_tail
from .settings import Settings, niced

# How long a stopping server waits for its runs after SIGINT, then after SIGTERM, then SIGKILL.
STOP_WAIT_S = (90.0, 20.0, 5.0)
# How long the jobs of a killed snakemake get to stop after SIGTERM, before SIGKILL.
ORPHAN_WAIT_S = 30.0
# Lines of snakemake's own output that never say why it failed.
_NOISE = ("Complete log", "Shutting down", "Exiting because", "Building DAG", "Using profile", "host:",
          "Select jobs", "Provided cores", "Rules claiming", "Job stats", "Assuming unrestricted", "Traceback",
          "  File ", "WorkflowError:", "Error in ", "Nothing to be done", "#")


class Refused(FacepipeError):
    """A launch or cancel that cannot be done now (HTTP 409)."""


@dataclass
class Launch:
    episode: str
    step: str
    proc: subprocess.Popen | None  # None while queued (and for a queued launch that never started)
    log: Path
    started_at: str  # when clicked, while queued; when its snakemake started, once it has
    run_id_before: str | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    returncode: int | None = None
    error: str | None = None  # why it failed, when the episode's state does not say
    note: str | None = None  # how it ended otherwise, when the state does not say
    stopping: bool = False  # stopped by the server (Ctrl-C) or by Cancel before it registered
    kind: str = "episode"  # or "season": `episode` then names the season, and `step` is "season"
    queued: int | None = None  # its place in the queue (1: next), while it waits for a free slot
    dropped: bool = False  # a queued launch that will never start (cancelled, the server stopped, held)

    @property
    def alive(self) -> bool:
        """Queued, or its snakemake not ended yet."""
        return not self.dropped and self.returncode is None

    @property
    def unit(self) -> Unit:
        return Unit(self.kind, self.episode)

    @property
    def key(self) -> str:
        return launch_key(self.unit)

    def holder(self) -> dict:
        """This launch as a registry entry, for the refusal of a second click."""
        return {"job_id": f"{self.step}_{self.episode}", "pid": self.proc.pid, "host": procinfo.hostname(),
                "started_at": self.started_at}

    def public(self) -> dict:
        return {"step": self.step, "pid": self.proc.pid if self.proc else None, "started_at": self.started_at,
                "log": str(self.log), "alive": self.alive, "queued": self.queued, "returncode": self.returncode,
                "error": self.error, "note": self.note}


def launch_key(unit: Unit) -> str:
    """Where a unit's launch is kept (Launcher.launches, .public): an episode by its id (the rows
    read it so), a season as "season:<name>" (no episode id has a colon)."""
    return unit.name if unit.kind == "episode" else f"season:{unit.name}"


def shown_status(status: str, message: str | None, launch: dict | None) -> tuple[str, str | None]:
    """A row's status and message, with a queued launch (Launch.public) shown as such."""
    if launch and launch.get("queued") and status not in ACTIVE:
        return "queued", f"waiting for a free build slot: place {launch['queued']} in the queue"
    return status, message


def last_reason(log: Path) -> str:
    """The line of snakemake's output that says why it stopped."""
    lines = [ln.strip() for ln in log_tail(log, 60) if ln.strip() and not ln.startswith(_NOISE)]
    return lines[-1] if lines else f"see {log}"


def stop_group(pgid: int, signum: int, wait_s: float) -> bool:
    """Send `signum` to process group `pgid`, and wait up to `wait_s` for it to empty; True if it did."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
    deadline = time.monotonic() + wait_s
    while procinfo.group(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Launcher:
    def __init__(self, settings: Settings, on_change: Callable[[Unit], None]):
        self.settings = settings
        self.on_change = on_change  # called on the event loop with the unit whose launch changed
        self.launches: dict[str, Launch] = {}  # by launch_key: an episode's id, or "season:<name>"
        self.queue: list[Launch] = []  # accepted while max_builds were running, in the order clicked
        self.public: dict[str, dict] = {}  # launch_key -> Launch.public(), read by the watcher's thread
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False

    def registry(self, episode: str, kind: str = "episode") -> Registry:
        return Registry(self.settings.data_root, Unit(kind, episode), self.settings.heartbeat_s)

    async def build(self, episode: str, step: str, kind: str = "episode") -> Launch:
        """Start snakemake on `step`'s outputs of `episode` (kind "season": the season `episode`'s
        outputs, step "season"); RegistryBusy if a live run holds it."""
        self._loop = asyncio.get_running_loop()
        key = launch_key(Unit(kind, episode))
        async with self._locks.setdefault(key, asyncio.Lock()):
            if self.stopping:
                raise Refused("the server is stopping; start the run from the terminal or restart the server")
            registry = self.registry(episode, kind)
            current = self.launches.get(key)
            if current is not None and current.queued:
                raise Refused(f"{Unit(kind, episode)} is already queued to build ({self._place(current)}); "
                              "it starts when a running build ends, or Cancel takes it off the queue")
            if current is not None and current.alive:
                raise registry.busy(current.holder())
            holder = await asyncio.to_thread(registry.holder)
            if holder is not None:
                raise registry.busy(holder)
            launch = Launch(episode, step, None, self._log_path(episode, kind), clock.utc_now(), None, kind=kind)
            self.launches[key] = launch
            if self._full():
                self.queue.append(launch)
                self._renumber()
            else:
                self._begin(launch)
        self._changed(launch)
        return launch

    def _running(self) -> int:
        return sum(1 for x in self.launches.values() if x.proc is not None and x.returncode is None)

    def _full(self) -> bool:
        limit = self.settings.max_builds
        return limit is not None and self._running() >= limit

    def _place(self, launch: Launch) -> str:
        return f"{launch.queued} of {len(self.queue)} waiting"

    def _renumber(self) -> None:
        for place, launch in enumerate(self.queue, 1):
            if launch.queued != place:
                launch.queued = place
                self._changed(launch)

    def _begin(self, launch: Launch) -> None:
        """Start the launch's snakemake, and the thread that waits for it."""
        self._start(launch)
        threading.Thread(target=self._wait, args=(launch,), name=f"facepipe-run-{launch.episode}",
                         daemon=True).start()

    def _start_queued(self) -> None:
        """Start the queue's first launches while fewer than max_builds run (on the event loop)."""
        while self.queue and not self.stopping and not self._full():
            launch = self.queue.pop(0)
            launch.queued = None
            registry = self.registry(launch.episode, launch.kind)
            holder = registry.holder()
            if holder is not None:  # started from the terminal while it waited
                launch.dropped, launch.error = True, f"not started from the queue: {registry.busy(holder)}"
            else:
                self._begin(launch)
            self._changed(launch)
        self._renumber()

    def argv(self, episode: str, step: str, kind: str = "episode") -> list[str]:
        s = self.settings
        targets = step_targets(s.data_root_arg, episode, step) if kind == "episode" else \
            [str(Path(s.data_root_arg) / pattern.format(season=episode)) for pattern in SEASON_OUTPUTS]
        return snakemake_argv(*targets, workdir=s.workdir,
                              configfiles=[s.config_file] if s.config_file else [],
                              config={"data_root": s.data_root_arg, "videos_dir": s.videos_dir_arg},
                              extra=s.snakemake_options)

    def _log_path(self, episode: str, kind: str) -> Path:
        return EpisodePaths(self.settings.data_root, episode).launch_log if kind == "episode" else \
            SeasonPaths(self.settings.data_root, episode).log("snakemake")

    def _start(self, launch: Launch) -> None:
        before = PipelineState(self.settings.data_root, launch.unit).read()[0] or {}
        argv = self.argv(launch.episode, launch.step, launch.kind)
        launch.log.parent.mkdir(parents=True, exist_ok=True)
        with open(launch.log, "w", encoding="utf-8") as log:
            log.write(f"# {clock.utc_now()} facepipe serve: {subprocess.list2cmdline(argv)}\n")
            log.flush()
            launch.proc = subprocess.Popen(niced(argv), cwd=self.settings.workdir, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        launch.started_at, launch.run_id_before = clock.utc_now(), before.get("run_id")

    def _wait(self, launch: Launch) -> None:
        """In the launch's own thread: wait for snakemake, settle what it left, tell the loop."""
        code = launch.proc.wait()
        pid = launch.proc.pid
        if not stop_group(pid, signal.SIGTERM, ORPHAN_WAIT_S):  # jobs of a killed run stop, cleaning up
            stop_group(pid, signal.SIGKILL, 5.0)
        launch.error, launch.note = self._outcome(launch, code)
        launch.returncode = code
        loop = self._loop
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server has stopped
            loop.call_soon_threadsafe(self._ended, launch)

    def _outcome(self, launch: Launch, code: int) -> tuple[str | None, str | None]:
        """(error, note) for the row, when the episode's state does not tell how the launch ended."""
        s = self.settings
        if code < 0 and not launch.stopping:
            how = f"was killed by {signal.Signals(-code).name}"
            if run_events.head_died(s.data_root, launch.unit, launch.proc.pid, how, s.heartbeat_s,
                                    str(launch.log)):
                return None, None
        state = PipelineState(s.data_root, launch.unit).read()[0] or {}
        if state.get("run_id") != launch.run_id_before:
            return None, None  # its run started, and settled the state itself
        if launch.stopping:
            return None, "stopped before its run started"
        if code == 0:
            return None, f"nothing to do: every {launch.step} output is up to date"
        return f"snakemake ended with code {code} before its run started: {last_reason(launch.log)}", None

    def _ended(self, launch: Launch) -> None:
        launch.ended.set()
        self._changed(launch)
        self._start_queued()

    def _changed(self, launch: Launch) -> None:
        if self.launches.get(launch.key) is launch:  # not one a later launch replaced
            self.public[launch.key] = launch.public()
            self.on_change(launch.unit)

    async def cancel(self, episode: str, kind: str = "episode") -> list[str]:
        """Stop the episode's (kind "season": the season's) build as `facepipe cancel` does; a run
        this server is still starting (not registered yet) gets SIGINT on its process group."""
        unit = Unit(kind, episode)
        launch = self.launches.get(launch_key(unit))
        if launch is not None and launch.queued:
            self.queue.remove(launch)
            launch.queued, launch.dropped, launch.note = None, True, "cancelled while queued: it never started"
            self._changed(launch)
            self._renumber()
            return [f"{launch.step}: taken off the queue before it started"]
        try:
            return await asyncio.to_thread(cancel, self.settings.data_root, unit, None, self.settings.heartbeat_s)
        except FacepipeError:
            launch = self.launches.get(launch_key(unit))
            if launch is None or launch.proc is None or launch.returncode is not None:
                raise
        launch.stopping = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launch.proc.pid, signal.SIGINT)
        return [f"{launch.step}: stopped snakemake pid {launch.proc.pid} before its run registered"]

    async def stop_all(self) -> None:
        """The server is stopping: end every run it started as Ctrl-C would, and wait for them."""
        self.stopping = True
        for launch in self.queue:
            launch.queued, launch.dropped, launch.note = None, True, "not started: the server stopped"
        if self.queue:
            print(f"facepipe serve: {len(self.queue)} queued build(s) not started: "
                  + ", ".join(x.episode for x in self.queue), file=sys.stderr, flush=True)
        self.queue = []
        live = [launch for launch in self.launches.values() if launch.proc is not None and launch.returncode is None]
        if not live:
            return
        print(f"facepipe serve: stopping {len(live)} run(s) started here (SIGINT, as Ctrl-C): "
              + ", ".join(f"{x.episode} (pid {x.proc.pid})" for x in live), file=sys.stderr, flush=True)
        for launch in live:
            launch.stopping = True
        waiting = live
        for signum, wait_s in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), STOP_WAIT_S):
            for launch in waiting:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(launch.proc.pid, signum)
            await asyncio.to_thread(self._join, waiting, wait_s)
            waiting = [launch for launch in waiting if launch.proc.poll() is None]
            if not waiting:
                break
        for launch in live:  # and for each one's end to be recorded
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(launch.ended.wait(), ORPHAN_WAIT_S + 10)
        stopped = ", ".join(f"{x.episode} (exit code {x.proc.returncode})" for x in live)
        print("facepipe serve: runs stopped: " + stopped, file=sys.stderr, flush=True)

    @staticmethod
    def _join(launches: list[Launch], wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        for launch in launches:
            with contextlib.suppress(subprocess.TimeoutExpired):
                launch.proc.wait(max(0.0, deadline - time.monotonic()))

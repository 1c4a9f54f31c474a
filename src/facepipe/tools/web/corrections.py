"""The pages' corrections: what POST /api/episodes/{ep}/corrections and
POST /api/seasons/{season}/corrections do, and what the pages show of the corrections.

A correction is recorded by tools.corrections (correct_episode, correct_season: the same records
`facepipe correct` writes), then built by the launcher as a Build button would: the episode's
Cluster step, or the season. The page shows its effect when that build ends, and every other
page sees the change live (the watcher looks at the corrections files too).

A correction made while a run holds the episode or the season is recorded anyway; the rebuild
that applies it waits (`Corrector.waiting`) and is started once nothing holds the unit any more.
A page that acts on what it loaded sends the `version` of clusters.json (cast.json) it saw: when
a build has renumbered the clusters since, the action is refused (409), never applied to others.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable
from pathlib import Path

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.layout import EpisodePaths, SeasonPaths
from ...base.unit import Unit
from .. import corrections as recording
from .detail import version
from .launcher import Launcher
from .security import MAX_BODY
from .settings import Settings

# What each kind of correction's JSON body may hold, and how each key is checked.
_INT_LIST, _INT, _TEXT = "a list of integer ids", "an integer id or null", "a string or null"
EPISODE_FIELDS = {"op": "op", "clusters": _INT_LIST, "tracks": _INT_LIST, "into": _INT, "name": _TEXT,
                  "record": _TEXT, "version": _TEXT}
SEASON_FIELDS = {"op": "op", "cast": _INT_LIST, "episode": _TEXT, "name": _TEXT, "record": _TEXT, "version": _TEXT}
# How often a correction waiting for a run to end looks again.
WAIT_S = 1.0


class BadRequest(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def checked_body(raw: bytes, fields: dict, ops: tuple[str, ...], url: str) -> dict:
    """The body's fields, checked; BadRequest (400) naming the key and what it must be."""
    example = '{"op": "merge", "clusters": [0, 3]}' if "clusters" in fields else '{"op": "merge", "cast": [0, 3]}'
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest(400, f"POST {url}: the body is not JSON; send an object like {example}") from None
    if not isinstance(body, dict):
        raise BadRequest(400, f"POST {url}: the body must be a JSON object like {example}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(400, f"POST {url}: unknown key {unknown[0]!r}; the keys are {', '.join(fields)}")
    if body.get("op") not in ops:
        raise BadRequest(400, f"POST {url}: 'op' must be one of {', '.join(ops)}, got {body.get('op')!r}")
    for key, rule in fields.items():
        value = body.get(key)
        ok = (rule == "op" or value is None
              or (rule == _INT_LIST and isinstance(value, list) and all(_is_int(v) for v in value))
              or (rule == _INT and _is_int(value)) or (rule == _TEXT and isinstance(value, str)))
        if not ok:
            raise BadRequest(400, f"POST {url}: {key!r} must be {rule}, got {json.dumps(value)[:60]}")
    return body


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def read_body(request) -> bytes:
    """The request's body, at most MAX_BODY bytes (a body sent without a length is cut there)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"request body refused: over {MAX_BODY} bytes; a correction is a small JSON object")
        chunks.append(chunk)
    return b"".join(chunks)


class Corrector:
    """Records the pages' corrections and starts (or waits to start) the builds that apply them."""

    def __init__(self, settings: Settings, launcher: Launcher, busy: Callable[[Unit], bool],
                 poke: Callable[[Unit], None]):
        self.settings = settings
        self.launcher = launcher
        self.busy = busy  # whether a run or a launch holds the unit now (the watcher's rows)
        self.poke = poke  # look at the unit's files at once
        self.waiting: set[Unit] = set()  # units with a correction no build has taken up yet
        self._stopped = False

    async def episode(self, row: dict, body: dict) -> dict:
        ep = row["episode"]
        paths = EpisodePaths(self.settings.data_root, ep)
        self._same_version(body, paths.clusters, f"the clusters of {ep}")
        fields = {k: body[k] for k in ("clusters", "tracks", "into", "name", "record") if body.get(k) is not None}
        record = await asyncio.to_thread(recording.correct_episode, self.settings.data_root, ep, body["op"], **fields)
        return await self._recorded(Unit.episode(ep), record, row["video"])

    async def season(self, row: dict, body: dict) -> dict:
        season = row["season"]
        paths = SeasonPaths(self.settings.data_root, season)
        self._same_version(body, paths.cast, f"the cast of {season}")
        fields = {k: body[k] for k in ("cast", "episode", "name", "record") if body.get(k) is not None}
        record = await asyncio.to_thread(recording.correct_season, self.settings.data_root, season, body["op"],
                                         **fields)
        return await self._recorded(Unit.season(season), record, True)

    @staticmethod
    def _same_version(body: dict, built: Path, what: str) -> None:
        seen = body.get("version")
        if seen is not None and body["op"] != "undo" and seen != version(built):
            raise BadRequest(409, f"{built}: {what} changed since this page loaded them (a build ended); "
                                  "look at them again and redo the correction")

    async def _recorded(self, unit: Unit, record: dict, can_build: bool) -> dict:
        self.poke(unit)
        what, button = ("Cluster build", "Cluster") if unit.kind == "episode" else ("season build", "Build season")
        out = {"record": record, "build": None, "waiting": False}
        if not can_build:
            return {**out, "message": f"Recorded {record['id']}; {unit.name} has no video here, so no build applies it"}
        try:
            launch = await self._build(unit)
        except FacepipeError:
            self.waiting.add(unit)
            return {**out, "waiting": True,
                    "message": f"Recorded {record['id']}. A run holds {unit.name} now: this page starts the "
                               f"{what} that applies it when that run ends (or press {button} then)"}
        self.waiting.discard(unit)
        started = f"has started (pid {launch.proc.pid})" if launch.proc else \
            f"is queued ({launch.queued} of {len(self.launcher.queue)} waiting for a free build slot)"
        return {**out, "build": launch.public(),
                "message": f"Recorded {record['id']}; the {what} that applies it {started}"}

    async def _build(self, unit: Unit):
        if unit.kind == "episode":
            return await self.launcher.build(unit.name, "cluster")
        return await self.launcher.build(unit.name, "season", kind="season")

    async def run(self) -> None:
        """Start the waiting rebuilds once nothing holds their unit."""
        while not self._stopped:
            await asyncio.sleep(WAIT_S)
            for unit in sorted(self.waiting):
                if self.busy(unit) or self.launcher.stopping:
                    continue
                try:
                    await self._build(unit)
                except FacepipeError:
                    continue  # taken again meanwhile: next time
                except Exception:  # a bug must not stop the other waiting rebuilds: say it, try again
                    traceback.print_exc()
                    continue
                self.waiting.discard(unit)

    def stop(self) -> None:
        self._stopped = True


# --- what the pages show ---------------------------------------------------------------------
def name_choices(settings: Settings, season: str | None, episodes: list[str]) -> list[str]:
    """The names to offer when naming: those of the season's cast and of its episodes' clusters
    (the user's and the reference photos'), and every reference photo's name (cluster.references)."""
    names = set()
    for ep in episodes:
        data, _problem = atomic.read_json(EpisodePaths(settings.data_root, ep).clusters)
        names.update(c.get("name") for c in (data or {}).get("clusters") or [] if isinstance(c, dict))
    if season:
        data, _problem = atomic.read_json(SeasonPaths(settings.data_root, season).cast)
        names.update(m.get("name") for m in (data or {}).get("cast") or [] if isinstance(m, dict))
    if settings.references:
        from ...stages.cluster import reference_photos  # cv2 and the photo types: only when asked

        try:
            names.update(name for name, _photo in reference_photos(settings.references))
        except FacepipeError:
            pass  # a bad folder is the workflow's to report
    return sorted((n for n in names if isinstance(n, str) and n.strip()), key=str.casefold)


def season_of(seasons: dict, episode: str) -> tuple[str | None, list[str]]:
    """The season an episode belongs to (the watcher's season rows) and its episodes."""
    for name, row in seasons.items():
        if episode in row.get("episodes", []):
            return name, list(row["episodes"])
    return None, [episode]

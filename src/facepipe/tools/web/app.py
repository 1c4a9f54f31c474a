"""The dashboard's routes: two pages, a JSON API, a Server-Sent Events stream and output files.

    GET  /                               the episodes page
    GET  /episodes/{ep}                  an episode's page
    GET  /api/episodes[?status=S]        every row (or those whose status is S) and the board's meta
    GET  /api/episodes/{ep}              one row, with its clusters, stills, plan and log tail
    GET  /api/episodes/{ep}/plan         what the cached dry run plans for it, and why
    GET  /api/episodes/{ep}/history      its last run's progress, for the chart
    GET  /api/episodes/{ep}/appearances  who is on screen when: the timeline's lanes of tracks
    GET  /api/events                     text/event-stream: a snapshot, then every changed row
    POST /api/episodes/{ep}/build/{step} run snakemake on the step's outputs (detect ... cluster)
    POST /api/episodes/{ep}/cancel       stop its build, as `facepipe cancel EP`
    POST /api/episodes/{ep}/corrections  record a correction ({op, clusters, tracks, into, name,
                                         record}) and start the Cluster build that applies it
    GET  /files/{ep}/clusters.jpg        its contact sheet
    GET  /files/{ep}/stills/{name}       a still listed in its stills/manifest.json
    GET  /files/{ep}/video               its own video (the file episode discovery names), with ranges
    GET  /files/{ep}/appearances.vtt     its captions: who is on screen (WebVTT)
    GET  /seasons/{season}               a season's page
    GET  /api/seasons                    every season's row
    GET  /api/seasons/{season}           one season: its row, cast.json, seconds table, corrections
    POST /api/seasons/{season}/corrections  record a correction ({op, cast, episode, name, record})
                                         and start the season build that applies it
    POST /api/seasons/{season}/build     build the season (snakemake on its outputs)
    POST /api/seasons/{season}/cancel    stop its build, as `facepipe cancel --season SEASON`
    GET  /files/seasons/{season}/{name}  its screen_time.png or cast.jpg
    POST /api/find                       find a person: a photo as the body; every episode and season
                                         where that face appears, nearest first

Errors are JSON {"error": "<one line>"} with a 4xx status; the rules of security.py apply first.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...base.episodes import EPISODE_ID
from ...base.errors import FacepipeError
from ...base.layout import EpisodePaths, SeasonPaths
from ...base.unit import Unit
from ...runtime.steps import BY_NAME
from . import corrections, detail, moments, search, seasons
from .board import Planner
from .launcher import Launcher, launch_key
from .security import FIND_PATH, Guard, contained_file, error
from .settings import Settings
from .watcher import Hub, Watcher

STATIC = Path(str(resources.files(__package__) / "static"))
NO_CACHE = {"Cache-Control": "no-cache"}


def _known(request: Request, param: str, noun: str, table: str, where: str) -> dict:
    """The row of the episode or season the path names; 404 for a name the watcher does not know."""
    name = request.path_params[param]
    row = getattr(request.app.state.watcher.view, table).get(name) if EPISODE_ID.match(name) else None
    if row is None:
        raise HTTPException(404, f"no {noun} {name!r} {where}")
    return row


def _episode(request: Request) -> dict:
    return _known(request, "ep", "episode", "rows", "in the videos folder or the data root")


def page(main: str, *scripts: str) -> str:
    """A page: the shell the pages share (page.html) around its own main part and scripts."""
    shell = (STATIC / "page.html").read_text(encoding="utf-8")
    tags = "\n".join(f'  <script src="/static/{script}"></script>' for script in scripts)
    return shell.replace("{main}", (STATIC / main).read_text(encoding="utf-8")).replace("{scripts}", tags)


async def index(request: Request) -> Response:
    return HTMLResponse(request.app.state.pages["episodes"], headers=NO_CACHE)


async def episode_page(request: Request) -> Response:
    _episode(request)
    return HTMLResponse(request.app.state.pages["episode"], headers=NO_CACHE)


async def list_episodes(request: Request) -> Response:
    listing = request.app.state.watcher.listing(request.query_params.get("status"))
    return Response(listing, media_type="application/json")


async def one_episode(request: Request) -> Response:
    row = _episode(request)
    state = request.app.state
    plan = _plan_of(state.planner.plan, row["episode"])
    season, episodes = corrections.season_of(state.watcher.view.seasons, row["episode"])

    def read() -> dict:
        body = detail.episode_detail(state.settings.data_root, row, plan, state.manifests, state.similar)
        body["corrections"]["waiting"] = Unit.episode(row["episode"]) in state.corrector.waiting
        return {**body, "season": season, "names": corrections.name_choices(state.settings, season, episodes)}

    return JSONResponse(await asyncio.to_thread(read))


def _plan_of(plan, episode: str) -> dict:
    """The cached plan of one episode: when it was made, and its steps, jobs and reasons (none: nothing
    to build, once the plan is ready)."""
    entry = (plan.episodes or {}).get(episode) or {"steps": [], "jobs": [], "reasons": []}
    return {"episode": episode, **plan.public(), **entry}


async def episode_plan(request: Request) -> Response:
    row = _episode(request)
    return JSONResponse(_plan_of(request.app.state.planner.plan, row["episode"]))


async def episode_appearances(request: Request) -> Response:
    row = _episode(request)
    state = request.app.state
    paths = EpisodePaths(state.settings.data_root, row["episode"])
    video = state.watcher.video(row["episode"]) if row["video"] else None
    return JSONResponse(await asyncio.to_thread(moments.timeline, paths, video))


async def episode_history(request: Request) -> Response:
    row = _episode(request)
    paths = EpisodePaths(request.app.state.settings.data_root, row["episode"])
    return JSONResponse(await asyncio.to_thread(detail.history, paths))


async def events(request: Request) -> Response:
    state = request.app.state
    await state.watcher.ready.wait()
    client = state.hub.subscribe()  # before the snapshot: no change can fall between the two
    return StreamingResponse(state.hub.stream(client, state.watcher.snapshot()), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def build(request: Request) -> Response:
    row = _episode(request)
    step = request.path_params["step"]
    if step not in BY_NAME:
        return error(400, f"unknown step {step!r}; one of: {', '.join(BY_NAME)}")
    if not row["video"]:
        return error(409, f"episode {row['episode']} has no video in {request.app.state.settings.videos_dir}; "
                          "put it there to build it")
    launch = await request.app.state.launcher.build(row["episode"], step)
    return JSONResponse({"episode": row["episode"], **launch.public()}, status_code=202)


async def cancel(request: Request) -> Response:
    row = _episode(request)
    report = await request.app.state.launcher.cancel(row["episode"])
    return JSONResponse({"episode": row["episode"], "report": report})


async def correct_episode(request: Request) -> Response:
    row = _episode(request)
    return await _correct(request, row, corrections.EPISODE_FIELDS, corrections.recording.EPISODE_OPS,
                          request.app.state.corrector.episode)


async def correct_season(request: Request) -> Response:
    row = _season(request)
    return await _correct(request, row, corrections.SEASON_FIELDS, corrections.recording.SEASON_OPS,
                          request.app.state.corrector.season)


async def _correct(request: Request, row: dict, fields: dict, ops: tuple, record) -> Response:
    """A correction: 202 once recorded (its rebuild started, or waiting for the run that holds the
    unit); 400 with the one-line reason for a bad body or ids that do not exist."""
    try:
        body = corrections.checked_body(await corrections.read_body(request), fields, ops, request.url.path)
        result = await record(row, body)
    except corrections.BadRequest as exc:
        return error(exc.status, str(exc))
    except FacepipeError as exc:
        return error(400, str(exc))
    return JSONResponse(result, status_code=202)


async def build_season(request: Request) -> Response:
    row = _season(request)
    launch = await request.app.state.launcher.build(row["season"], "season", kind="season")
    request.app.state.corrector.waiting.discard(Unit.season(row["season"]))
    return JSONResponse({"season": row["season"], **launch.public()}, status_code=202)


async def cancel_season(request: Request) -> Response:
    row = _season(request)
    report = await request.app.state.launcher.cancel(row["season"], kind="season")
    return JSONResponse({"season": row["season"], "report": report})


async def contact_sheet(request: Request) -> Response:
    row = _episode(request)
    paths = EpisodePaths(request.app.state.settings.data_root, row["episode"])
    return _file(request, paths.harvest, paths.contact_sheet.name, "contact sheet")


async def still(request: Request) -> Response:
    row = _episode(request)
    paths = EpisodePaths(request.app.state.settings.data_root, row["episode"])
    name = request.path_params["name"]
    if name not in request.app.state.manifests.get(paths):
        return error(404, f"no still {name!r} in the stills manifest of {row['episode']}")
    return _file(request, paths.stills_dir, name, "still")


def _file(request: Request, folder: Path, name: str, what: str, media_type: str = "image/jpeg") -> Response:
    real = contained_file(request.app.state.settings.data_root, folder, name)
    if real is None:
        return error(404, f"no {what} {name!r} among the outputs of {request.path_params['ep']}")
    return FileResponse(real, media_type=media_type, headers=NO_CACHE)


async def captions(request: Request) -> Response:
    row = _episode(request)
    paths = EpisodePaths(request.app.state.settings.data_root, row["episode"])
    return _file(request, paths.harvest, paths.appearances_vtt.name, "captions", "text/vtt; charset=utf-8")


async def video(request: Request) -> Response:
    """The episode's own video, the one file episode discovery names for it (the address holds the
    episode id only), in byte ranges as a player asks (206 with Content-Range; 416 past its end)."""
    row = _episode(request)
    settings = request.app.state.settings
    found = request.app.state.watcher.video(row["episode"]) if row["video"] else None
    real = moments.video_file(found)
    if real is None:
        return error(404, f"episode {row['episode']} has no video in {settings.videos_dir}; put it there to watch it")
    size = real.stat().st_size
    problem = moments.range_problem(request.headers.get("range"), size)
    if problem is not None:
        response = error(*problem)
        if problem[0] == 416:
            response.headers["content-range"] = f"bytes */{size}"
        return response
    return FileResponse(real, media_type=moments.video_type(found), headers=NO_CACHE)


def _season(request: Request) -> dict:
    return _known(request, "season", "season", "seasons", "among the episodes' seasons or the data root's")


async def season_page(request: Request) -> Response:
    _season(request)
    return HTMLResponse(request.app.state.pages["season"], headers=NO_CACHE)


async def list_seasons(request: Request) -> Response:
    return JSONResponse({"seasons": list(request.app.state.watcher.view.seasons.values())})


async def one_season(request: Request) -> Response:
    row = _season(request)
    state = request.app.state

    def read() -> dict:
        body = seasons.detail(state.settings, row["season"], row)
        body["corrections"]["waiting"] = Unit.season(row["season"]) in state.corrector.waiting
        return {**body, "names": corrections.name_choices(state.settings, row["season"], row["episodes"])}

    return JSONResponse(await asyncio.to_thread(read))


async def season_file(request: Request) -> Response:
    row = _season(request)
    name = request.path_params["name"]
    if name not in seasons.FILES:
        return error(404, f"no file {name!r} among the outputs of season {row['season']}")
    paths = SeasonPaths(request.app.state.settings.data_root, row["season"])
    real = contained_file(request.app.state.settings.data_root, paths.folder, name)
    if real is None:
        return error(404, f"season {row['season']} has no {name} yet; run snakemake season_target")
    return FileResponse(real, media_type="image/png" if name.endswith(".png") else "image/jpeg", headers=NO_CACHE)


async def find_person(request: Request) -> Response:
    """Find a person: the photo is the body (a JPEG, PNG, WebP or BMP, checked by its bytes), its
    name in X-Photo-Name; 400/413/415 with one line naming the photo and the fix."""
    state = request.app.state
    name = search.photo_name(request.headers.get("x-photo-name"))
    try:
        data = await search.read_photo(request)
        search.checked(data, request.headers.get("content-type"), name)
        async with state.finding:  # one search at a time: each embeds on one thread (tools.find)
            found = await asyncio.to_thread(search.search, state.settings.data_root, state.settings.search, name, data)
    except search.Refused as exc:
        return error(exc.status, str(exc))
    except FacepipeError as exc:
        return error(400, str(exc))
    return JSONResponse(found)


async def http_error(request: Request, exc: HTTPException) -> Response:
    reason = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else f"no such page: {request.url.path}"
    return error(exc.status_code, reason)


async def refused(request: Request, exc: FacepipeError) -> Response:
    """An action that cannot be done now: a live run holds the episode, nothing to cancel, ..."""
    return error(409, str(exc))


def create_app(settings: Settings) -> Starlette:
    hub = Hub()
    watcher: Watcher | None = None
    planner = Planner(settings, lambda rows: watcher.poke() if rows else watcher.wake())

    def poke(unit: Unit) -> None:  # look at the unit's files at once
        if unit.kind == "episode":
            watcher.poke(unit.name)
        else:
            watcher.poke_season(unit.name)

    launcher = Launcher(settings, poke)
    watcher = Watcher(settings, planner, launcher.public, hub)

    def busy(unit: Unit) -> bool:
        rows = watcher.view.rows if unit.kind == "episode" else watcher.view.seasons
        launch = launcher.launches.get(launch_key(unit))
        return bool((rows.get(unit.name) or {}).get("busy")) or bool(launch and launch.alive)

    corrector = corrections.Corrector(settings, launcher, busy, poke)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        tasks = [asyncio.create_task(watcher.run(), name="facepipe-watcher"),
                 asyncio.create_task(planner.run(), name="facepipe-planner")]
        follow = asyncio.create_task(corrector.run(), name="facepipe-corrections")
        try:
            yield
        finally:
            hub.close()
            corrector.stop()
            follow.cancel()
            planner.stop()
            await launcher.stop_all()
            watcher.stop()
            _done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()

    routes = [
        Route("/", index),
        Route("/episodes/{ep}", episode_page),
        Route("/api/episodes", list_episodes),
        Route("/api/episodes/{ep}", one_episode),
        Route("/api/episodes/{ep}/plan", episode_plan),
        Route("/api/episodes/{ep}/history", episode_history),
        Route("/api/episodes/{ep}/appearances", episode_appearances),
        Route("/api/events", events),
        Route("/api/episodes/{ep}/build/{step}", build, methods=["POST"]),
        Route("/api/episodes/{ep}/cancel", cancel, methods=["POST"]),
        Route("/api/episodes/{ep}/corrections", correct_episode, methods=["POST"]),
        Route("/files/seasons/{season}/{name}", season_file),  # before the stills: a season may be named so
        Route("/files/{ep}/clusters.jpg", contact_sheet),
        Route("/files/{ep}/stills/{name}", still),
        Route("/files/{ep}/video", video),
        Route("/files/{ep}/appearances.vtt", captions),
        Route("/seasons/{season}", season_page),
        Route("/api/seasons", list_seasons),
        Route("/api/seasons/{season}", one_season),
        Route("/api/seasons/{season}/corrections", correct_season, methods=["POST"]),
        Route("/api/seasons/{season}/build", build_season, methods=["POST"]),
        Route("/api/seasons/{season}/cancel", cancel_season, methods=["POST"]),
        Route(FIND_PATH, find_person, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Guard, settings=settings)],
                    exception_handlers={HTTPException: http_error, FacepipeError: refused})
    app.state.settings, app.state.hub, app.state.watcher = settings, hub, watcher
    app.state.planner, app.state.launcher, app.state.manifests = planner, launcher, detail.Manifests()
    app.state.corrector, app.state.similar, app.state.finding = corrector, detail.Similar(), asyncio.Lock()
    app.state.pages = {"episodes": page("episodes.part.html", "episodes.js", "find.js"),
                       "episode": page("episode.part.html", "moments.js", "episode.js"),
                       "season": page("season.part.html", "season.js")}
    return app

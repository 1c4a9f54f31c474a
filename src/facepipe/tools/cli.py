"""The `facepipe` command: status, plan, cancel, serve, and quality tools (make-slideshow, eval).

Every command reads the configuration a run from this folder would use (config/config.yaml over
the schema's defaults, or the file given with --config), with --data-root / --videos-dir on top.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..base.errors import FacepipeError


def _config(args) -> dict:
    from ..base.config import load

    return load(getattr(args, "config", None), {"data_root": getattr(args, "data_root", None),
                                                 "videos_dir": getattr(args, "videos_dir", None)})


def _print_log_tails(statuses) -> None:
    from .status_view import render_log_tails

    lines = render_log_tails(statuses)
    if lines:
        print("\n".join(lines))  # plain print: log lines are never folded to the terminal's width


def cmd_status(args) -> int:
    from rich.console import Console
    from rich.live import Live

    from ..base.unit import Unit
    from ..runtime.snapshot import is_running, known_episodes, known_seasons, unit_status
    from .status_view import render

    cfg = _config(args)
    root, hb = Path(cfg["data_root"]), float(cfg["progress"]["heartbeat_s"])

    def snapshot():
        if args.episodes:  # named: an episode, or else a season of that name
            seasons = set(known_seasons(root)) - set(known_episodes(root))
            return [unit_status(root, Unit.season(name) if name in seasons else Unit.episode(name), hb)
                    for name in args.episodes]
        return ([unit_status(root, Unit.episode(ep), hb) for ep in known_episodes(root)]
                + [unit_status(root, Unit.season(s), hb) for s in known_seasons(root)])

    console = Console()
    if not args.watch:
        statuses = snapshot()
        if args.json:
            print(json.dumps(statuses, indent=1))
        elif not statuses:
            console.print(f"no episodes with progress under {root}/harvest")
        else:
            console.print(render(statuses))
            _print_log_tails(statuses)
        return 1 if any(s["state"] and s["state"].get("status") == "error" for s in statuses) else 0
    # Watch: wait for a run to appear, follow it, and stop once everything seen running has ended.
    seen_running = False

    def ended(statuses) -> bool:
        nonlocal seen_running
        running = any(is_running(s) for s in statuses)
        seen_running = seen_running or running
        return seen_running and not running

    def view(statuses):
        if statuses:
            return render(statuses)
        return f"waiting for episodes to appear under {root}/harvest (Ctrl-C to stop)"

    if args.json:  # one JSON document per line
        while True:
            statuses = snapshot()
            print(json.dumps(statuses), flush=True)
            if ended(statuses):
                return 0
            time.sleep(args.interval)
    with Live(view(snapshot()), console=console, refresh_per_second=4) as live:
        while True:
            statuses = snapshot()
            live.update(view(statuses))
            if ended(statuses):
                break
            time.sleep(args.interval)
    _print_log_tails(statuses)
    return 1 if any(s["state"] and s["state"].get("status") == "error" for s in statuses) else 0


def cmd_plan(args) -> int:
    from ..runtime.planning import dry_run, plan_by_episode
    from ..runtime.steps import BY_NAME

    config = {k: v for k, v in (("videos_dir", args.videos_dir), ("data_root", args.data_root)) if v}
    plan = plan_by_episode(dry_run(args.target, args.snakefile, args.directory,
                                    [args.config] if args.config else None, config))
    if args.json:
        print(json.dumps(plan, indent=1))
        return 0
    if not plan:
        print(f"{args.target}: nothing to be done, every output is up to date")
    for ep, entry in plan.items():
        print(f"{ep}: {' -> '.join(BY_NAME[s].title for s in entry['steps'])}")
        for job in entry["jobs"]:
            print(f"  {job['rule']:8s} {job['reason']}")
    return 0


def cmd_cancel(args) -> int:
    from ..base.unit import Unit
    from ..runtime.cancel import cancel

    cfg = _config(args)
    unit = Unit.season(args.episode) if args.season else Unit.episode(args.episode)
    for line in cancel(cfg["data_root"], unit, args.stage, float(cfg["progress"]["heartbeat_s"])):
        print(line)
    print(f"{args.episode}: cancelled")
    return 0


def cmd_serve(args) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise FacepipeError(f"facepipe serve needs the web extra ({err.name} is missing): "
                            "pip install -e '.[web]'") from None
    from .web.server import serve
    from .web.settings import DEFAULT_PORT, Settings, checked_token

    cfg = _config(args)
    token = checked_token(args.host, args.token)
    port = DEFAULT_PORT if args.port is None else args.port
    return serve(Settings.from_config(cfg, args.config, host=args.host, port=port, token=token,
                                      profile=args.profile, max_builds=args.max_builds))


def cmd_make_slideshow(args) -> int:
    from .slideshow import make_slideshow

    labels = make_slideshow(args.photos, args.out, shot_s=args.shot_s)
    print(f"wrote {args.out} and {labels}")
    return 0


def cmd_make_season(args) -> int:
    from .slideshow import make_season

    made, labels = make_season(args.photos, args.videos, args.show, episodes=args.episodes, shot_s=args.shot_s)
    Path(args.labels).write_text(json.dumps(labels, indent=1) + "\n")
    print(f"wrote {', '.join(str(v) for v in made)} and {args.labels}")
    return 0


def cmd_eval(args) -> int:
    from ..base.layout import EpisodePaths, SeasonPaths
    from .evaluate import load_json, score, score_season

    cfg = _config(args)
    root = Path(cfg["data_root"])
    labels = load_json(args.labels, "labels file")
    if args.season:
        cast = load_json(SeasonPaths(root, args.episode).cast, "cast.json (run snakemake season_target first)")
        episodes = {ep: (load_json(EpisodePaths(root, ep).clusters, "clusters.json"),
                         load_json(EpisodePaths(root, ep).tracks, "tracks.json")) for ep in cast["episodes"]}
        result = score_season(cast, episodes, labels)
    else:
        paths = EpisodePaths(root, args.episode)
        result = score(load_json(paths.clusters, "clusters.json (run snakemake cluster_target first)"),
                       load_json(paths.tracks, "tracks.json"), labels)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def cmd_find(args) -> int:
    from .find import find, render_text

    cfg = _config(args)
    found = find(args.photos, cfg["data_root"], cfg)
    for _episode, why in found.skipped:
        print(f"facepipe: skipped {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(found.matches, indent=1))
    else:
        print("\n".join(render_text(found, skipped=False)))
    return 0


CORRECT_USAGE = """\
facepipe correct EP merge CLUSTER CLUSTER...     these clusters are one person
facepipe correct EP split CLUSTER TRACK... [--into CLUSTER]
                                                 these tracks are someone else
facepipe correct EP not CLUSTER TRACK...         these tracks are never them
facepipe correct EP name CLUSTER "Full Name"
facepipe correct EP hide|unhide CLUSTER
facepipe correct EP undo [RECORD]                the latest in effect, or RECORD
facepipe correct EP list [--json]
facepipe correct --season SEASON OPERATION ...   the same with cast ids:
    merge CAST CAST..., split CAST EPISODE, name CAST "Name", hide|unhide CAST,
    undo [RECORD], list [--json]
CLUSTER and TRACK are ids in the current clusters.json, CAST those in cast.json.
Recording builds nothing: the next snakemake, or --run, applies it (cluster and
season only). Options: --run --json --data-root DIR --config FILE"""


def cmd_correct(args) -> int:
    from ..base.layout import SEASON_OUTPUTS, EpisodePaths, SeasonPaths, step_targets
    from . import corrections as fix

    # Options may stand anywhere among the words (facepipe correct EP merge 1 2 --run).
    late = argparse.ArgumentParser(add_help=False)
    for flag in ("--data-root", "--config", "--configfile", "--season", "--into"):
        late.add_argument(flag)
    for flag in ("--run", "--json"):
        late.add_argument(flag, action="store_true")
    opts, words = late.parse_known_args(args.words)
    args.data_root = opts.data_root or args.data_root
    args.config = opts.config or opts.configfile or args.config
    args.season = opts.season or args.season
    args.run, as_json, into = args.run or opts.run, opts.json, opts.into
    cfg = _config(args)
    root = Path(cfg["data_root"])
    unit = args.season
    if unit is None:
        if not words:
            raise FacepipeError("name the episode: facepipe correct EP OPERATION ...")
        unit = words.pop(0)
    if not words:
        raise FacepipeError(f"name the correction to make:\n{CORRECT_USAGE}")
    op, rest = words[0], words[1:]
    season = args.season is not None
    if op == "list":
        paths = SeasonPaths(root, unit) if season else EpisodePaths(root, unit)
        built_path = paths.cast if season else paths.clusters
        try:
            built = json.loads(built_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            built = None
        rows = fix.history(paths.corrections, season, built)
        if as_json:
            print(json.dumps(rows, indent=1))
        elif not rows:
            print(f"no corrections of {unit} ({paths.corrections})")
        else:
            print(f"{paths.corrections}:")
            for r in rows:
                why = f": {r['why']}" if r.get("why") else ""
                print(f"  {r['id']}  {r['at'][:16].replace('T', ' ')}  {r['state']:<9} {r['note']}{why}")
        return 0
    if op == "undo":
        target = rest[0] if rest else None
        rec = (fix.correct_season(root, unit, "undo", record=target) if season
               else fix.correct_episode(root, unit, "undo", record=target))
    elif op == "name":
        if len(rest) < 2:
            raise FacepipeError(f"name needs the {'cast id' if season else 'cluster'} and the name: "
                                f"facepipe correct {unit} name ID \"Full Name\"")
        name = " ".join(rest[1:])
        rec = (fix.correct_season(root, unit, "name", cast=[rest[0]], name=name) if season
               else fix.correct_episode(root, unit, "name", clusters=[rest[0]], name=name))
    elif season and op == "split":
        if len(rest) != 2:
            raise FacepipeError(f"split needs the cast id and the episode: facepipe correct --season {unit} "
                                "split CAST EPISODE")
        rec = fix.correct_season(root, unit, "split", cast=[rest[0]], episode=rest[1])
    elif season:
        rec = fix.correct_season(root, unit, op, cast=rest)
    elif op in ("split", "not"):
        if not rest:
            raise FacepipeError(f"{op} needs a cluster and its tracks: facepipe correct {unit} {op} CLUSTER TRACK...")
        rec = fix.correct_episode(root, unit, op, clusters=rest[:1], tracks=rest[1:], into=into)
    else:
        rec = fix.correct_episode(root, unit, op, clusters=rest)
    where = (SeasonPaths(root, unit) if season else EpisodePaths(root, unit)).corrections
    if as_json:
        print(json.dumps({"record": rec, "file": str(where)}))
    else:
        print(f"recorded {rec['id']}: {rec['note']} ({where})")
    if not args.run:
        print("nothing is rebuilt yet: run snakemake season_target (or add --run) to apply it")
        return 0
    import subprocess

    from ..runtime.launch import snakemake_argv

    targets = ([str(root / p.format(season=unit)) for p in SEASON_OUTPUTS] if season
               else step_targets(root, unit, "cluster"))
    argv = snakemake_argv(*targets, configfiles=[args.config] if args.config else (),
                          config={"data_root": str(root)} if args.data_root else None)
    return subprocess.run(argv).returncode


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is no port: give 0 to 65535 (0: any free port)")
    return int(text)


def parser() -> argparse.ArgumentParser:
    from ..runtime.cancel import stage_names

    p = argparse.ArgumentParser(prog="facepipe", description="Find who is on screen in TV episodes.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, videos: bool = False):
        sp.add_argument("--config", "--configfile", dest="config",
                        help="config file (default: config/config.yaml here, if present)")
        sp.add_argument("--data-root", help="data root (default: from the config)")
        if videos:
            sp.add_argument("--videos-dir", help="folder of episode videos (default: from the config)")

    s = sub.add_parser("status", help="progress of every episode (or the ones named)")
    s.add_argument("episodes", nargs="*")
    s.add_argument("--json", action="store_true")
    s.add_argument("--watch", action="store_true",
                   help="follow live: wait for a run, and stop once every episode seen running has ended")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between redraws (--watch)")
    common(s)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("plan", help="which stages each episode needs, and why (Snakemake's dry run)")
    s.add_argument("target", nargs="?", default="cluster_target")
    s.add_argument("--json", action="store_true")
    s.add_argument("--snakefile")
    s.add_argument("--directory", "-d", help="working directory, as snakemake -d")
    common(s, videos=True)
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("cancel", help="stop an episode's (or a season's) running jobs")
    s.add_argument("episode", help="the episode id (or, with --season, the season)")
    s.add_argument("--season", action="store_true", help="EPISODE names a season")
    s.add_argument("--stage", choices=stage_names(), help="only the jobs of this rule or step")
    common(s)
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("serve", help="a live web dashboard of the episodes, with buttons to build them")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    from .web.settings import DEFAULT_PORT  # the port's one home (no config setting): no starlette needed

    s.add_argument("--port", type=port_number, help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    s.add_argument("--token", default=os.environ.get("FACEPIPE_WEB_TOKEN"),
                   help="secret every request must carry (required off the loopback; 'auto': a random one, printed)")
    s.add_argument("--profile", type=Path,
                   help="Snakemake profile every build runs with, e.g. workflow/profiles/slurm on a login node "
                        "(default: the workstation profile)")
    s.add_argument("--max-builds", type=int, metavar="N",
                   help="builds the page runs at once, more wait in a queue (default: the machine's cores on "
                        "the workstation profile, no limit with --profile; 0: no limit)")
    common(s, videos=True)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("correct", help="merge, split, name, hide or undo: corrections kept as build inputs",
                       usage="facepipe correct [--season SEASON] [EP] OPERATION ...", description=CORRECT_USAGE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--season", metavar="SEASON", help="correct the season's cast (ids are cast ids)")
    s.add_argument("--run", action="store_true", help="then rebuild what the correction changes (cluster, season)")
    common(s)
    s.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_correct)

    s = sub.add_parser("find", help="every episode and season where the face of these photos appears, nearest first")
    s.add_argument("photos", nargs="+", metavar="PHOTO", help="photos of one person's face")
    s.add_argument("--json", action="store_true", help="print the matches as JSON")
    common(s)
    s.set_defaults(func=cmd_find)

    s = sub.add_parser("make-slideshow", help="turn <person>/<photo> folders into a labelled test episode")
    s.add_argument("photos")
    s.add_argument("out")
    s.add_argument("--shot-s", type=float, default=1.0)
    s.set_defaults(func=cmd_make_slideshow)

    s = sub.add_parser("make-season", help="turn <person>/<photo> folders into a labelled season of test episodes")
    s.add_argument("photos")
    s.add_argument("videos", help="folder for the episodes ({show}_S01_E01.mp4 ...)")
    s.add_argument("--show", default="SHOW")
    s.add_argument("--episodes", type=int, default=3)
    s.add_argument("--shot-s", type=float, default=1.0)
    s.add_argument("--labels", required=True, help="where to write the season's labels (JSON)")
    s.set_defaults(func=cmd_make_season)

    s = sub.add_parser("eval", help="score an episode's clusters (or a season's cast) against labels")
    s.add_argument("episode", help="the episode id (or, with --season, the season)")
    s.add_argument("--season", action="store_true", help="score the season EPISODE's cast.json")
    s.add_argument("--labels", required=True)
    s.add_argument("--out", help="also write the scores here (JSON)")
    common(s)
    s.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except FacepipeError as err:
        print(f"facepipe: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `facepipe` command: status, plan, cancel, and quality tools (make-slideshow, eval)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from .errors import FacepipeError


def _config(args) -> dict:
    path = Path(args.config) if args.config else Path("config/config.yaml")
    cfg = {}
    if path.is_file():
        cfg = yaml.safe_load(path.read_text()) or {}
    elif args.config:
        raise FacepipeError(f"{path}: config file not found")
    if getattr(args, "data_root", None):
        cfg["data_root"] = args.data_root
    cfg.setdefault("data_root", "data")
    cfg.setdefault("progress", {}).setdefault("heartbeat_s", 5)
    return cfg


def cmd_status(args) -> int:
    from rich.console import Console
    from rich.live import Live

    from .status_view import episode_status, is_active, known_episodes, render

    cfg = _config(args)
    root, hb = Path(cfg["data_root"]), float(cfg["progress"]["heartbeat_s"])

    def snapshot():
        eps = args.episodes or known_episodes(root)
        return [episode_status(root, ep, hb) for ep in eps]

    console = Console()
    if not args.watch:
        statuses = snapshot()
        if args.json:
            print(json.dumps(statuses, indent=1))
        elif not statuses:
            console.print(f"no episodes with progress under {root}/harvest")
        else:
            console.print(render(statuses))
        return 1 if any(s["state"] and s["state"].get("status") == "error" for s in statuses) else 0
    if args.json:  # one JSON document per line, until every watched episode has ended
        while True:
            statuses = snapshot()
            print(json.dumps(statuses), flush=True)
            if not any(is_active(s) for s in statuses):
                return 0
            time.sleep(args.interval)
    with Live(render(snapshot()), console=console, refresh_per_second=4) as live:
        while True:
            statuses = snapshot()
            live.update(render(statuses))
            if not any(is_active(s) for s in statuses):
                return 0
            time.sleep(args.interval)


def cmd_plan(args) -> int:
    from .planning import dry_run, plan_by_episode
    from .steps import BY_NAME

    config = {}
    if args.videos_dir:
        config["videos_dir"] = args.videos_dir
    if args.data_root:
        config["data_root"] = args.data_root
    plan = plan_by_episode(dry_run(args.target, args.snakefile, args.directory, args.configfile, config))
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
    from .cancel import cancel

    cfg = _config(args)
    for line in cancel(cfg["data_root"], args.episode, args.stage, float(cfg["progress"]["heartbeat_s"])):
        print(line)
    print(f"{args.episode}: cancelled")
    return 0


def cmd_make_slideshow(args) -> int:
    from .slideshow import make_slideshow

    labels = make_slideshow(args.photos, args.out, shot_s=args.shot_s)
    print(f"wrote {args.out} and {labels}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import load_json, score
    from .layout import EpisodePaths

    cfg = _config(args)
    paths = EpisodePaths(Path(cfg["data_root"]), args.episode)
    result = score(load_json(paths.clusters, "clusters.json (run snakemake cluster_target first)"),
                   load_json(paths.tracks, "tracks.json"), load_json(args.labels, "labels file"))
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facepipe", description="Find who is on screen in TV episodes.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--config", help="config file (default: config/config.yaml here, if present)")
        sp.add_argument("--data-root", help="data root (default: from the config, else data)")

    s = sub.add_parser("status", help="progress of every episode (or the ones named)")
    s.add_argument("episodes", nargs="*")
    s.add_argument("--json", action="store_true")
    s.add_argument("--watch", action="store_true", help="redraw until every watched episode has ended")
    s.add_argument("--interval", type=float, default=1.0)
    common(s)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("plan", help="which stages each episode needs, and why (Snakemake's dry run)")
    s.add_argument("target", nargs="?", default="cluster_target")
    s.add_argument("--json", action="store_true")
    s.add_argument("--snakefile")
    s.add_argument("--directory", "-d", help="working directory, as snakemake -d")
    s.add_argument("--configfile", action="append", help="extra config file(s), as snakemake --configfile")
    s.add_argument("--videos-dir")
    s.add_argument("--data-root")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("cancel", help="stop an episode's running jobs")
    s.add_argument("episode")
    s.add_argument("--stage", choices=["detect", "track", "stills", "embed", "cluster"])
    common(s)
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("make-slideshow", help="turn <person>/<photo> folders into a labelled test episode")
    s.add_argument("photos")
    s.add_argument("out")
    s.add_argument("--shot-s", type=float, default=1.0)
    s.set_defaults(func=cmd_make_slideshow)

    s = sub.add_parser("eval", help="score an episode's clusters against labels")
    s.add_argument("episode")
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

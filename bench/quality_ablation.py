"""Identity quality ablation: clustering method x embedder x threshold on labelled episodes.

Builds the lfw10 and johns slideshows (facepipe.tools.slideshow) in a work folder beside a link to
hamilton_clip.mp4 (labelled by region in tests/labels/hamilton_clip.labels.json), runs the real
pipeline once per embedder (the snakemake CLI of this venv), then re-clusters the saved tracks and
embeddings in-process for each method and threshold and scores them (facepipe.tools.evaluate). It also
measures naming (facepipe.stages.cluster.naming's two passes, by distance and by elimination) at the default
clustering: on a slideshow each person's first photo is their reference and every cluster, less
the track of that photo, is compared with the references; on hamilton_clip the references are the
shared reference photos.

    python bench/quality_ablation.py [--workdir DIR] [--embedders dlib facenet] [--set SECTION.KEY=VALUE ...]

Prints markdown tables; docs/quality.md holds the figures and the defaults chosen from them.
A work folder that already holds a finished run is reused (Snakemake has nothing to redo).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml

from benchlib import REPO, SHARED, episode, snakemake_cmd, timed
from facepipe.base.config import defaults
from facepipe.base.errors import FacepipeError
from facepipe.stages.cluster import DEFAULT_THRESHOLDS, METHODS, cluster_tracks, load_embeddings, load_references
from facepipe.stages.cluster.naming import (
    DEFAULT_NAME_THRESHOLDS,
    ELIMINATION,
    cluster_distances,
    name_by_distance,
    name_by_elimination,
)
from facepipe.stages.embed.embedders import facenet_weight_candidates, find_facenet_weights
from facepipe.tools.evaluate import labelled_items, score
from facepipe.tools.slideshow import make_slideshow

SLIDESHOWS = {"lfw10": SHARED / "faces" / "lfw10", "johns": SHARED / "faces" / "johns"}
SETS = [*SLIDESHOWS, "hamilton_clip"]
HAMILTON_LABELS = REPO / "tests" / "labels" / "hamilton_clip.labels.json"
HAMILTON_REFERENCES = SHARED / "faces" / "reference"
SWEEP = {
    "dlib": [round(0.04 + 0.01 * k, 2) for k in range(11)],
    "facenet": [round(0.30 + 0.05 * k, 2) for k in range(11)],
}
# Naming rules measured: (distance threshold, elimination (threshold, margin) or None for off); the
# distance threshold alone, then dlib's default distance threshold with elimination around its default.
NAME_GRID = {
    "dlib": [(t, None) for t in (0.06, 0.07, 0.08, 0.09)]
    + [(DEFAULT_NAME_THRESHOLDS["dlib"], e) for e in ((0.12, 0.01), (0.13, 0.0), (0.13, 0.01), (0.13, 0.02),
                                                     (0.14, 0.01), (0.15, 0.01))],
    "facenet": [(round(0.30 + 0.05 * k, 2), None) for k in range(5)],
}
CLUSTER_CFG = defaults()["cluster"]  # the schema's; each sweep sets method and threshold


def build_slideshows(work: Path) -> Path:
    videos = work / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for name, folder in SLIDESHOWS.items():
        labels = work / f"{name}.labels.json"
        if not labels.exists():
            made = make_slideshow(folder, videos / f"{name}.mp4")
            shutil.move(made, labels)
    if not (videos / "hamilton_clip.mp4").exists():
        (videos / "hamilton_clip.mp4").symlink_to(SHARED / "videos" / "hamilton_clip.mp4")
    return videos


def run_pipeline(work: Path, videos: Path, embedder: str, sections: dict | None = None) -> Path:
    """One run of the pipeline with `embedder` (and the settings `sections`, else the defaults);
    returns its work folder."""
    run = work / (embedder + "".join(f"-{k}-{v}" for sec in (sections or {}).values() for k, v in sec.items()))
    run.mkdir(exist_ok=True)
    (run / "bench-config.yaml").write_text(yaml.safe_dump({"videos_dir": str(videos), "data_root": "data",
                                                           **(sections or {}),
                                                           "embed": {"embedder": embedder}}))
    print(f"running the pipeline with {embedder} in {run} ...", file=sys.stderr, flush=True)
    timed(snakemake_cmd(run, "cluster_target"))
    return run


def load_set(run: Path, work: Path, name: str) -> tuple[dict, dict, dict]:
    paths = episode(run, name)
    tracks = json.loads(paths.tracks.read_text())
    labels = json.loads((work / f"{name}.labels.json" if name in SLIDESHOWS else HAMILTON_LABELS).read_text())
    return tracks, load_embeddings(paths.embeddings), labels


def sweep_clustering(data: dict, embedder: str) -> dict:
    """(method, threshold, set) -> scores."""
    out = {}
    for method in METHODS:
        for threshold in SWEEP[embedder]:
            for name, (tracks, emb, labels) in data.items():
                result = cluster_tracks(tracks, emb, {**CLUSTER_CFG, "method": method, "threshold": threshold})
                out[method, threshold, name] = score(result, tracks, labels)
    return out


def best_threshold(scores: dict, method: str, embedder: str) -> float:
    """The threshold with the best worst-set BCubed F; among equals the lower middle one, since
    too high a threshold merges people abruptly while too low a one splits them gradually."""
    worst = {t: min(scores[method, t, s]["bcubed_f"] for s in SETS) for t in SWEEP[embedder]}
    top = max(worst.values())
    tied = [t for t in SWEEP[embedder] if worst[t] == top]
    return tied[(len(tied) - 1) // 2]


def slideshow_references(work: Path, name: str, tracks: dict, labels: dict) -> tuple[Path, set[int]]:
    """A reference folder with each person's first photo, and the tracks of those photos."""
    refs_dir = work / "references" / name
    shutil.rmtree(refs_dir, ignore_errors=True)
    refs_dir.mkdir(parents=True)
    held_out: set[int] = set()
    for shot, (person, tid) in zip(labels["shots"], labelled_items(labels, tracks)):
        first = sorted(Path(SLIDESHOWS[name], person).iterdir())[0]
        if Path(shot["photo"]) == first and not (refs_dir / f"{person}{first.suffix}").exists():
            (refs_dir / f"{person}{first.suffix}").symlink_to(first)
            if tid is not None:
                held_out.add(tid)
    return refs_dir, held_out


def name_distances(data: dict, work: Path, embedder: str, method: str, threshold: float) -> dict:
    """Set -> (reference names, cluster x name distances as facepipe.stages.cluster.naming.cluster_distances
    measures them, each cluster's labelled person), clustered with `method` at `threshold`.
    Held-out tracks (a slideshow's reference photos) are left out of their clusters, and clusters
    left with no labelled track are dropped."""
    out = {}
    for name, (tracks, emb, labels) in data.items():
        if name in SLIDESHOWS:
            refs_dir, held_out = slideshow_references(work, name, tracks, labels)
        else:
            refs_dir, held_out = HAMILTON_REFERENCES, set()
        refs = load_references(refs_dir, {**defaults()["embed"], "embedder": embedder}, defaults()["stills"]["margin"])
        person_of = {tid: person for person, tid in labelled_items(labels, tracks) if tid is not None}
        result = cluster_tracks(tracks, emb, {**CLUSTER_CFG, "method": method, "threshold": threshold})
        clusters, people = [], []
        for c in result["clusters"]:
            kept = [t for t in c["track_ids"] if t not in held_out]
            members = [t for t in kept if t in person_of]
            if members:
                clusters.append({**c, "track_ids": kept})
                people.append(Counter(person_of[t] for t in members).most_common(1)[0][0])
        names, dist = cluster_distances({**result, "clusters": clusters}, emb, refs)
        out[name] = (names, dist, people)
    return out


def apply_rule(dist: np.ndarray, names: list[str], threshold: float, elimination: tuple | None) -> dict:
    """Cluster index -> (name, distance, pass), as facepipe.stages.cluster.naming.name_clusters names them."""
    named = name_by_distance(dist, names, threshold)
    return name_by_elimination(dist, names, named, *elimination) if elimination else named


def named_count(dist: np.ndarray, names: list[str], rule: tuple, rows: Iterable[int], keep: list[int]) -> int:
    """How many of `rows` get a name with only the references `keep` (column indices of `names`)."""
    named = apply_rule(dist[:, keep], [names[j] for j in keep], *rule)
    return sum(1 for i in rows if i in named)


def naming_cells(names: list[str], dist: np.ndarray, people: list[str], rule: tuple) -> str:
    """"right, wrong, stranger, alone" of one set under `rule` (docs/quality.md)."""
    named = apply_rule(dist, names, *rule)
    everyone = range(len(names))
    known = [i for i, p in enumerate(people) if p in names]
    right = sum(1 for i in known if i in named and named[i][0] == people[i])
    wrong = sum(1 for i, (n, *_) in named.items() if n != people[i])
    # stranger: a person's clusters named once their own reference is removed
    stranger = sum(named_count(dist, names, rule, [i for i in known if people[i] == p],
                               [k for k in everyone if k != j]) for j, p in enumerate(names))
    # alone: the person's clusters removed and only their reference given
    alone = sum(1 for j, p in enumerate(names)
                if named_count(dist[[i for i, q in enumerate(people) if q != p]], names, rule,
                               range(len(people)), [j]))
    return (f"{right}/{len(known)}, {wrong}/{len(people)}, {stranger}/{len(known)}, "
            f"{alone}/{len(names)}")


def naming_rows(dists: dict, embedder: str) -> list[str]:
    rows = []
    for threshold, elimination in NAME_GRID[embedder]:
        # bold: the defaults, as docs/quality.md marks them
        bold = threshold == DEFAULT_NAME_THRESHOLDS[embedder] and elimination in (None, ELIMINATION.get(embedder))
        cells = [f"**{threshold}**" if bold else f"{threshold}"]
        if elimination is None:
            cells.append("off")
        else:
            text = ", ".join(f"{x:g}" for x in elimination)
            cells.append(f"**{text}**" if bold else text)
        cells += [naming_cells(*dists[s], (threshold, elimination)) for s in SETS]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def naming_summary(dists: dict, embedder: str) -> list[str]:
    """Per set: the farthest a cluster's own person is, and the nearest another person is."""
    lines = []
    for s, (names, dist, people) in dists.items():
        own = [dist[i, names.index(p)] for i, p in enumerate(people) if p in names]
        other = [d for i, p in enumerate(people) for n, d in zip(names, dist[i]) if n != p]
        lines.append(f"naming/{embedder} {s}: own person max {max(own, default=np.inf):.3f}, "
                     f"nearest other person min {min(other, default=np.inf):.3f}")
    return lines


def fmt(s: dict, sep: str = " | ") -> str:
    return sep.join([f"{s['bcubed_f']:.3f}", f"{s['wcp']:.3f}", f"{s['nmi']:.3f}", f"{s['clusters']}/{s['people']}"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="work folder (default: a new temporary folder)")
    ap.add_argument("--embedders", nargs="+", default=["dlib", "facenet"], choices=["dlib", "facenet"])
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting of the runs, e.g. detect.backend=blazeface (the identity figures with it)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="facepipe-ablation-")).resolve()
    sections: dict = {}
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = yaml.safe_load(value)
    videos = build_slideshows(work)
    main_rows, sweep_rows, name_tables, chosen = [], [], {}, []
    for embedder in args.embedders:
        if embedder == "facenet":
            try:
                find_facenet_weights(None)
            except FacepipeError:
                why = f"skipped: weights not found ({facenet_weight_candidates(None)[0]})"
                main_rows += [f"| {m} | facenet | {s} | - | {why} | | | |" for m in METHODS for s in SETS]
                name_tables["facenet"] = [f"| - | - | {why} | | |"]
                continue
        run = run_pipeline(work, videos, embedder, sections)
        data = {name: load_set(run, work, name) for name in SETS}
        scores = sweep_clustering(data, embedder)
        for method in METHODS:
            best = best_threshold(scores, method, embedder)
            default = DEFAULT_THRESHOLDS[method][embedder]
            chosen.append(f"{method}/{embedder}: best {best} (default now {default})")
            for t in SWEEP[embedder]:
                mark = " (default)" if t == default else ""
                sweep_rows.append(f"| {method} | {embedder} | {t}{mark} | "
                                  + " | ".join(fmt(scores[method, t, s], " / ") for s in SETS) + " |")
            for s in SETS:
                main_rows.append(f"| {method} | {embedder} | {s} | {default} | {fmt(scores[method, default, s])} |")
        dists = name_distances(data, work, embedder, "agglomerative", DEFAULT_THRESHOLDS["agglomerative"][embedder])
        name_tables[embedder] = naming_rows(dists, embedder)
        chosen += naming_summary(dists, embedder)

    print(f"work folder: {work}\n")
    print("### Clustering at the default thresholds\n")
    print("| method | embedder | set | threshold | BCubed F | WCP | NMI | clusters/people |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(main_rows))
    print("\n### Threshold sweep (each set: BCubed F / WCP / NMI / clusters/people)\n")
    print(f"| method | embedder | threshold | {' | '.join(SETS)} |")
    print("|" + " --- |" * (3 + len(SETS)))
    print("\n".join(sweep_rows))
    for embedder, rows in name_tables.items():
        print(f"\n### Naming with {embedder} at the default clustering (right: clusters of a person with a "
              "reference given that name; wrong: clusters given another person's name; stranger: clusters of a "
              "person with a reference named when it is removed; alone: names that land on a cluster when their "
              "person is removed and no one else has a reference)\n")
        print(f"| by distance | by elimination (threshold, margin) | {SETS[0]} right, wrong, stranger, alone | "
              + " | ".join(SETS[1:]) + " |")
        print("|" + " --- |" * (2 + len(SETS)))
        print("\n".join(rows))
    print("\n" + "\n".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())

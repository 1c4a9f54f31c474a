"""Find a person: every episode, and season, where the face of one or more photos appears, nearest
first, from what the episodes already hold (embeddings.npz, clusters.json, appearances.csv);
nothing is recomputed.

The photos are embedded as reference photos are (stages.cluster.embed_face: the photo detector of
stages.detect, the crop of stills.margin, the episodes' embedder), and a cluster's distance to
them is naming's: the smallest cosine distance between any of its stills and any of the photos.
A match is a shown cluster within the naming threshold (cluster.name_threshold, or the measured
default of the embedder: stages.cluster.naming_threshold), i.e. a cluster naming would give this
person's name to. Hidden people are left out: a cluster hidden in its episode, or a cast member
hidden in its season.

Library (the `facepipe find` command, the dashboard's search):
- find(photos, data_root, cfg) -> Search: the matches (match_fields), the seasons they fall in,
  how many episodes were searched;
- index_for(data_root) -> FaceIndex: every episode's stills under the data root, loaded once and
  read again only where a file changed (mtime and size), so a long-running process (facepipe
  serve) answers from memory; the photo detector and embedder stay loaded the same way;
- read_photo(path), decode_photo(bytes, name): a photo checked (type, size, an image) before any
  model loads; MAX_PHOTO_BYTES;
- render_text(search): the terminal's lines, 80 columns.
"""

from __future__ import annotations

import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..base.chart import clock, shorten
from ..base.errors import FacepipeError
from ..base.layout import HARVEST, SEASONS, STILLS_DIR, EpisodePaths, SeasonPaths
from ..base.media import PHOTO_SUFFIXES

MAX_PHOTO_BYTES = 20 * 2**20  # a query photo's largest file (a phone's photo is 2-12 MB)
WIDTH = 80  # the text output's columns
# What a match holds (the --json list): the cluster, its distance to the photos, when it is on
# screen (first start, last end, and every stay: its tracks' [start, end] merged where they touch),
# its best still (under the data root), and its season's cast member (or null).
MATCH_FIELDS = ("episode", "cluster_id", "person_id", "name", "distance", "start_s", "end_s", "appearances",
                "screen_time_s", "best_still", "photo", "season")
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile)

Photo = str | Path | tuple[str, bytes]  # a file, or an upload: (its name, its bytes)


def decode_photo(data: bytes, name: str) -> np.ndarray:
    """The image (BGR) of a photo's bytes; FacepipeError naming `name` when it is empty, too large
    or not an image."""
    import cv2

    if len(data) > MAX_PHOTO_BYTES:
        raise FacepipeError(f"{name}: {len(data) / 2**20:.0f} MB, more than the {MAX_PHOTO_BYTES // 2**20} MB a "
                            "search photo may be; give a smaller photo of the face")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise FacepipeError(f"{name}: not an image facepipe can read; give a JPEG or PNG photo of the face")
    return bgr


def read_photo(path: str | Path) -> np.ndarray:
    """The image (BGR) of a photo file; FacepipeError naming it when it is missing, not a photo
    type (base.media), too large or not an image."""
    path = Path(path)
    if not path.is_file():
        raise FacepipeError(f"{path}: photo not found; give the path of a photo of the face to find")
    if path.suffix.lower() not in PHOTO_SUFFIXES:
        raise FacepipeError(f"{path}: not a photo ({', '.join(sorted(PHOTO_SUFFIXES))}); give a JPEG or PNG "
                            "photo of the face")
    if path.stat().st_size > MAX_PHOTO_BYTES:
        raise FacepipeError(f"{path}: {path.stat().st_size / 2**20:.0f} MB, more than the "
                            f"{MAX_PHOTO_BYTES // 2**20} MB a search photo may be; give a smaller photo of the face")
    return decode_photo(path.read_bytes(), str(path))


# The photo detector and the embedders, loaded once per process (torch, dlib's network, MTCNN:
# seconds), as the index is.
_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def _models(embed_cfg: dict, embedder: str):
    from ..stages.detect import photo_detector
    from ..stages.embed import make_embedder

    device = embed_cfg["device"]
    key = (embedder, device, embed_cfg.get("engine"), embed_cfg.get("facenet_weights"))
    with _MODELS_LOCK:
        if ("detector", device) not in _MODELS:
            _MODELS["detector", device] = photo_detector(device)
        if key not in _MODELS:
            _MODELS[key] = make_embedder({**embed_cfg, "embedder": embedder})
        return _MODELS["detector", device], _MODELS[key]


def embed_query(images: list[tuple[str, np.ndarray]], embed_cfg: dict, embedder: str, margin: float) -> np.ndarray:
    """One l2-normalised row per photo: its largest face embedded as a reference photo is, with
    `embedder`; FacepipeError naming a photo with no face."""
    import torch

    from ..stages.cluster import embed_face, l2_normalise

    detector, model = _models(embed_cfg, embedder)
    rows = []
    # One photo at a time, on one thread: a photo is too little work to share, and on a busy
    # machine torch's thread pool made a query ten times slower (bench/find.py: a median of 1.4 s
    # on 2 threads, 0.14 s on one, two cores loaded by other work). One query embeds at a time.
    with _MODELS_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for name, bgr in images:
                vec = embed_face(bgr, detector, model, margin)
                if vec is None:
                    raise FacepipeError(f"{name}: no face found; give a photo where the face is clear and not too "
                                        "small")
                rows.append(l2_normalise(np.asarray(vec, np.float64)))
        finally:
            torch.set_num_threads(threads)
    return np.stack(rows).astype(np.float32)


def _stamp(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def merge_spans(spans) -> list[list[float]]:
    """[start, end] intervals, sorted, those that overlap or touch merged."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1e-6:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _track_times(paths: EpisodePaths) -> dict[int, tuple[float, float]]:
    """Track id -> (start_s, end_s): from appearances.csv, small, where it is as new as
    tracks.json; else from tracks.json (as the appearances rule computes them)."""
    from ..stages.appearances import track_times
    from ..stages.cluster import track_screen_time

    try:
        made = paths.appearances.stat().st_mtime_ns
        if not paths.tracks.exists() or made >= paths.tracks.stat().st_mtime_ns:
            return track_times(paths.appearances)
    except (OSError, ValueError, KeyError):
        pass
    try:
        tracks = json.loads(paths.tracks.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    fps = tracks.get("sample_fps")
    return {tr["track_id"]: (round(float(tr["detections"][0]["t"]), 3),
                             round(float(tr["detections"][0]["t"]) + track_screen_time(tr, fps), 3))
            for tr in tracks["tracks"] if tr["detections"]}


@dataclass
class _Episode:
    name: str
    stamp: tuple
    space: str  # the embedder's space (stages.embed.SPACE)
    embedder: str
    clusters: list[dict]  # the shown clusters with stills: a match's fields known before any query
    vectors: np.ndarray  # their stills' l2-normalised embeddings (float32), contiguous per cluster
    counts: list[int]  # each cluster's stills


def _load_episode(root: Path, episode: str, stamp: tuple) -> _Episode:
    from ..stages.cluster import l2_normalise, load_embeddings
    from ..stages.embed import SPACE

    paths = EpisodePaths(root, episode)
    result = json.loads(paths.clusters.read_text(encoding="utf-8"))
    emb = load_embeddings(paths.embeddings)
    embedder = str(result.get("embedder") or emb["embedder"])
    if embedder not in SPACE:
        raise ValueError(f"embedder {embedder!r} is unknown")
    times = _track_times(paths)
    vectors = l2_normalise(np.asarray(emb["vectors"], np.float32))
    files, quality = emb["files"], np.asarray(emb["quality"], np.float32)
    rows_of: dict[int, list[int]] = {}
    for row, tid in enumerate(np.asarray(emb["track_ids"]).tolist()):
        rows_of.setdefault(int(tid), []).append(row)
    stills = STILLS_DIR.format(ep=episode)
    clusters, picked, counts = [], [], []
    for c in result["clusters"]:
        rows = [r for t in c["track_ids"] for r in rows_of.get(t, ())]
        if c.get("hidden") or not rows:
            continue
        best = max(rows, key=lambda r: (quality[r], -r))
        spans = merge_spans(times[t] for t in c["track_ids"] if t in times)
        clusters.append({"episode": episode, "cluster_id": c["cluster_id"], "person_id": c.get("person_id"),
                         "name": c.get("name"), "start_s": spans[0][0] if spans else None,
                         "end_s": max(e for _s, e in spans) if spans else None, "appearances": spans,
                         "screen_time_s": c.get("screen_time_s"), "best_still": f"{stills}/{files[best]}"})
        picked += rows
        counts.append(len(rows))
    return _Episode(episode, stamp, SPACE[embedder], embedder, clusters, vectors[picked], counts)


def _load_cast(path: Path) -> dict[tuple[str, int], dict]:
    """(episode, cluster id) -> its cast member in a cast.json: season, cast_id, name, hidden."""
    cast = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for member in cast["cast"]:
        who = {"season": cast["season"], "cast_id": member["cast_id"], "name": member.get("name"),
               "hidden": bool(member.get("hidden"))}
        for app in member["appearances"]:
            for cid in app["cluster_ids"]:
                out[app["episode"], cid] = who
    return out


@dataclass
class _Stack:
    """One embedder space's stills of every episode, for one matrix product per query."""

    vectors: np.ndarray
    starts: np.ndarray  # each cluster's first row
    clusters: list[dict]
    embedder: str


class FaceIndex:
    """The stills of every clustered episode under a data root (and the seasons' casts), kept in
    memory. refresh() reads again only the episodes whose files changed, so a warm query costs a
    few thousand stat calls and one matrix product."""

    def __init__(self, data_root: str | Path):
        self.data_root = Path(data_root)
        self.lock = threading.RLock()
        self.reads = 0  # episodes read from disk so far
        self._episodes: dict[str, _Episode] = {}
        self._skipped: dict[str, tuple[tuple, str]] = {}  # episode -> (stamp, why it could not be read)
        self._casts: dict[str, tuple[tuple, dict]] = {}
        self._cast: dict[tuple[str, int], dict] = {}
        self._stacks: dict[str, _Stack] = {}

    @property
    def episodes(self) -> list[str]:
        return sorted(self._episodes)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return sorted((ep, why) for ep, (_stamp, why) in self._skipped.items())

    def embedders(self) -> dict[str, str]:
        """Embedder space -> an embedder its episodes were embedded with."""
        return {space: stack.embedder for space, stack in self._stacks.items()}

    def refresh(self) -> FaceIndex:
        with self.lock:
            changed = self._refresh_episodes()
            changed = self._refresh_casts() or changed
            if changed:
                self._restack()
        return self

    def _refresh_episodes(self) -> bool:
        harvest = self.data_root / HARVEST
        names = sorted(p.name for p in harvest.iterdir() if p.is_dir()) if harvest.is_dir() else []
        changed, seen = False, set()
        for ep in names:
            paths = EpisodePaths(self.data_root, ep)
            stamp = _stamp([paths.clusters, paths.embeddings, paths.appearances, paths.tracks])
            if stamp[0] is None or stamp[1] is None:
                continue  # not clustered (yet)
            seen.add(ep)
            known = self._episodes[ep].stamp if ep in self._episodes else self._skipped.get(ep, (None,))[0]
            if known == stamp:
                continue
            changed = True
            try:
                self._episodes[ep] = _load_episode(self.data_root, ep, stamp)
                self._skipped.pop(ep, None)
            except _READ_ERRORS as exc:
                self._episodes.pop(ep, None)
                self._skipped[ep] = (stamp, f"{paths.harvest}: not readable ({exc}); "
                                            "run snakemake cluster_target for it")
            self.reads += 1
        for gone in (set(self._episodes) | set(self._skipped)) - seen:
            self._episodes.pop(gone, None)
            self._skipped.pop(gone, None)
            changed = True
        return changed

    def _refresh_casts(self) -> bool:
        folder = self.data_root / SEASONS
        names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        changed, seen = False, set()
        for season in names:
            path = SeasonPaths(self.data_root, season).cast
            stamp = _stamp([path])
            if stamp[0] is None:
                continue
            seen.add(season)
            if season in self._casts and self._casts[season][0] == stamp:
                continue
            try:
                self._casts[season] = (stamp, _load_cast(path))
            except _READ_ERRORS:
                self._casts[season] = (stamp, {})  # a season is extra: its episodes are still searched
            changed = True
        for gone in set(self._casts) - seen:
            del self._casts[gone]
            changed = True
        if changed:
            self._cast = {k: v for _stamp, cast in self._casts.values() for k, v in cast.items()}
        return changed

    def _restack(self) -> None:
        stacks: dict[str, tuple[list, list, list, str]] = {}
        for ep in sorted(self._episodes.values(), key=lambda e: e.name):
            if not ep.counts:
                continue  # no face shown (an episode without faces has no vectors at all)
            vecs, counts, clusters, _embedder = stacks.setdefault(ep.space, ([], [], [], ep.embedder))
            vecs.append(ep.vectors)
            counts += ep.counts
            clusters += ep.clusters
        self._stacks = {}
        for space, (vecs, counts, clusters, embedder) in stacks.items():
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if counts else np.zeros(0, np.int64)
            self._stacks[space] = _Stack(np.concatenate(vecs).astype(np.float32, copy=False), starts, clusters,
                                         embedder)

    def search(self, queries: dict[str, np.ndarray], thresholds: dict[str, float],
               photos: list[str] | None = None) -> list[dict]:
        """The clusters within `thresholds[space]` of the photos (`queries[space]`: one
        l2-normalised row per photo, embedded with that space's embedder), nearest first."""
        matches = []
        with self.lock:
            for space, stack in self._stacks.items():
                if space not in queries or not stack.clusters:
                    continue
                dist = 1.0 - stack.vectors @ queries[space].T  # stills x photos
                per_still = dist.min(axis=1)
                per_cluster = np.minimum.reduceat(per_still, stack.starts)
                ends = np.append(stack.starts[1:], len(per_still))
                for i in np.flatnonzero(per_cluster < thresholds[space]):
                    c = stack.clusters[i]
                    who = self._cast.get((c["episode"], c["cluster_id"]))
                    if who and who["hidden"]:
                        continue
                    row = stack.starts[i] + int(np.argmin(per_still[stack.starts[i]:ends[i]]))
                    photo = int(np.argmin(dist[row]))
                    matches.append({**c, "distance": round(float(per_cluster[i]), 4),
                                    "photo": photos[photo] if photos else photo,
                                    "season": {k: who[k] for k in ("season", "cast_id", "name")} if who else None})
        matches.sort(key=lambda m: (m["distance"], m["episode"], m["cluster_id"]))
        return [{k: m[k] for k in MATCH_FIELDS} for m in matches]


_INDEXES: dict[Path, FaceIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(data_root: str | Path) -> FaceIndex:
    """The process's index of `data_root` (one per data root, kept between queries; refresh() it)."""
    key = Path(data_root).resolve()
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = FaceIndex(key)  # resolved: a server that changes its folder still finds it
        return _INDEXES[key]


@dataclass
class Search:
    """What find() found: `matches` (MATCH_FIELDS each, nearest first), the season cast members
    they belong to, and what was searched."""

    matches: list[dict]
    episodes: int  # episodes searched
    data_root: str
    photos: list[str]
    thresholds: dict[str, float]  # embedder space -> the naming distance used
    seasons: list[dict] = field(default_factory=list)  # {season, cast_id, name, episodes, distance}
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (episode, why) for episodes not readable


def _photo_images(photos: list[Photo]) -> list[tuple[str, np.ndarray]]:
    if not photos:
        raise FacepipeError("give at least one photo of the face to find: facepipe find PHOTO...")
    images = []
    for p in photos:
        if isinstance(p, tuple):
            images.append((p[0], decode_photo(p[1], p[0])))
        else:
            images.append((str(p), read_photo(p)))
    return images


def find(photos: list[Photo], data_root: str | Path, cfg: dict | None = None,
         index: FaceIndex | None = None) -> Search:
    """Every shown cluster under `data_root` within the naming distance of the photos' faces
    (files, or (name, bytes) uploads; all of one person), nearest first. `cfg`: the settings
    (base.config.load; the schema's defaults if None): embed.*, stills.margin,
    cluster.name_threshold. The photos are checked before any model loads."""
    from ..base.config import defaults
    from ..stages.cluster import naming_threshold
    from ..stages.embed import SPACE

    cfg = cfg or defaults()
    images = _photo_images(photos)
    index = (index or index_for(data_root)).refresh()
    wanted = SPACE.get(cfg["embed"]["embedder"])
    with index.lock:
        embedders = index.embedders()
    # the configured embedder for its space (dlib and dlib-native give the same vectors), else the episodes' own
    queries = {space: embed_query(images, cfg["embed"], cfg["embed"]["embedder"] if space == wanted else embedder,
                                  cfg["stills"]["margin"]) for space, embedder in embedders.items()}
    thresholds = {space: naming_threshold(space, cfg["cluster"]["name_threshold"] if space == wanted else None)
                  for space in embedders}
    names = [name for name, _bgr in images]
    with index.lock:
        matches = index.search(queries, thresholds, names)
        searched, skipped = len(index.episodes), index.skipped
    seasons: dict[tuple[str, int], dict] = {}
    for m in matches:
        if m["season"]:
            s = seasons.setdefault((m["season"]["season"], m["season"]["cast_id"]),
                                   {**m["season"], "episodes": [], "distance": m["distance"]})
            if m["episode"] not in s["episodes"]:
                s["episodes"].append(m["episode"])
    return Search(matches, searched, str(data_root), names, thresholds, list(seasons.values()), skipped)


def _who(m: dict) -> str:
    return f"#{m['cluster_id']}" + (f" {m['name']}" if m["name"] else "")


def _when(m: dict) -> str:
    if m["start_s"] is None:
        return "?"
    stays = len(m["appearances"])
    return f"{clock(m['start_s'])}-{clock(m['end_s'])}" + (f" ({stays}x)" if stays > 1 else "")


def render_text(search: Search, skipped: bool = True) -> list[str]:
    """The terminal's lines: one per match (distance, episode, cluster and name, times, best
    still), then one per season cast member; or the one line that says the face is nowhere. Then,
    with `skipped`, one per episode that could not be read."""
    notes = [f"skipped {why}" for _ep, why in search.skipped] if skipped else []
    if not search.matches:
        line = (f"no match: this face appears in none of the {search.episodes} episodes under {search.data_root}")
        if not search.episodes:
            line += " (none is clustered yet: run snakemake cluster_target)"
        return [line, *notes]
    found = len({m["episode"] for m in search.matches})
    within = ", ".join(f"{t:g}" for t in search.thresholds.values())
    lines = [f"{len(search.matches)} match{'es' if len(search.matches) > 1 else ''} in {found} of the "
             f"{search.episodes} episodes under {search.data_root}",
             f"nearest first, distance < {within}; best still: {STILLS_DIR.format(ep='EPISODE')}/FILE"]
    ep_w = max(len(m["episode"]) for m in search.matches)
    when_w = max(len(_when(m)) for m in search.matches)
    still_w = max(len(Path(m["best_still"]).name) for m in search.matches)
    longest = max(len(_who(m)) for m in search.matches)
    # names are cut to fit 80 columns, never to less than 12 characters; where even that does not
    # fit (long episode ids), the best still has a line of its own under its match
    room = WIDTH - (5 + 2 + ep_w + 2 + 2 + when_w)
    own_line = min(longest, 12) > room - 2 - still_w
    who_w = max(min(longest, 12), min(longest, room if own_line else room - 2 - still_w))
    for m in search.matches:
        row = f"{m['distance']:.3f}  {m['episode']:<{ep_w}}  {shorten(_who(m), who_w):<{who_w}}  {_when(m):<{when_w}}"
        still = Path(m["best_still"]).name
        lines += [row.rstrip(), f"{'':7}{still}"] if own_line else [f"{row}  {still}"]
    for s in search.seasons:
        name = f" {s['name']}" if s["name"] else ""
        lines.append(shorten(f"season {s['season']}: cast member {s['cast_id']}{name}, in "
                             f"{', '.join(s['episodes'])}", WIDTH))
    return lines + notes

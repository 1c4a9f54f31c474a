"""The user's season corrections (base.corrections), and the names the user gave in episodes, as
constraints on linking a season's clusters into cast members.

Items are the (shown) clusters of the season's episodes. A season record's anchors carry their
episode; each is found among that episode's current tracks (cluster.TrackIndex) and so in the
cluster now holding most of them. Records apply in order, a later one winning over an earlier:

- merge: the items of all groups are one cast member, whatever their distance;
- split (with "person") and not: those items are never linked with the person's other items;
- name: those items' cast member takes the name;
- hide / unhide: the cast member holding those items is hidden or shown again.

Names are constraints: items the user gave one name (here or in their episode) are one cast
member, and items given different names are never one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...base.corrections import Record
from ..cluster import TrackIndex


@dataclass
class Constraints:
    together: list[list[int]] = field(default_factory=list)  # item groups that are one person
    apart: set[tuple[int, int]] = field(default_factory=set)  # item pairs never linked (i < j)
    names: dict[int, str] = field(default_factory=dict)  # item -> the user's name
    hidden: dict[int, bool] = field(default_factory=dict)  # item -> hidden by a season record
    applied: list[str] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


class _Finder:
    """Anchors -> items, over the season's episodes."""

    def __init__(self, episodes, items):
        self._episodes = {e.episode: e for e in episodes}
        self._index: dict[str, TrackIndex] = {}
        self._item = {(e.episode, k): i for i, (e, k) in enumerate(items)}

    def items(self, anchors: list[dict]) -> set[int]:
        by_episode: dict[str, list[dict]] = {}
        for a in anchors:
            by_episode.setdefault(a["episode"], []).append(a)
        found = set()
        for name, mine in by_episode.items():
            e = self._episodes.get(name)
            if e is None:
                continue
            if name not in self._index:
                self._index[name] = TrackIndex(e.tracks)
            tids, _lost = self._index[name].match_all(mine)
            counts: dict[int, int] = {}
            for k, c in enumerate(e.clusters["clusters"]):
                n = len(tids & set(c["track_ids"]))
                if n and (name, k) in self._item:
                    counts[k] = n
            if counts:
                best = max(counts, key=lambda k: (counts[k], -k))
                found.add(self._item[(name, best)])
        return found


def constraints(episodes, items, records: list[Record]) -> Constraints:
    """The constraints of the effective season `records` and of the episodes' user names, over
    `items` ((EpisodeClusters, cluster index) pairs)."""
    out = Constraints()
    find = _Finder(episodes, items)
    edges: set[tuple[int, int]] = set()
    for record in records:
        d = record.data
        why = None
        if record.op == "merge":
            groups = [g for g in (find.items(g) for g in d["groups"]) if g]
            if len(groups) < 2:
                why = "the tracks of at most one of the cast members to merge are still there"
            else:
                every = sorted(set().union(*groups))
                for a in every:
                    for b in every:
                        if a < b:
                            edges.add((a, b))
                            out.apart.discard((a, b))
        else:
            mine = find.items(d["tracks"])
            if not mine:
                why = "none of its tracks is there any more"
            elif record.op in ("split", "not"):
                others = find.items(d["person"]) - mine
                if not others:
                    why = "that cast member is no longer there"
                for a in mine:
                    for b in others:
                        edges.discard(_pair(a, b))
                        out.apart.add(_pair(a, b))
            elif record.op == "name":
                for i in mine:
                    out.names[i] = d["name"].strip()
            else:
                for i in mine:
                    out.hidden[i] = record.op == "hide"
        if why:
            out.unmatched.append({"id": record.id, "op": record.op, "line": record.line, "why": why})
        else:
            out.applied.append(record.id)
    for i, (e, k) in enumerate(items):  # the names given in the episodes, where no season name is
        c = e.clusters["clusters"][k]
        if c.get("named_by") == "user" and i not in out.names:
            out.names[i] = c["name"]
    by_name: dict[str, list[int]] = {}
    for i, name in out.names.items():
        by_name.setdefault(name, []).append(i)
    for same in by_name.values():
        for a, b in zip(same, same[1:]):
            edges.add(_pair(a, b))
    names = sorted(by_name)
    for x, first in enumerate(names):
        for second in names[x + 1:]:
            for a in by_name[first]:
                for b in by_name[second]:
                    out.apart.add(_pair(a, b))
    out.together = _components(edges)
    return out


def _components(edges: set[tuple[int, int]]) -> list[list[int]]:
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in sorted(edges):
        parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)

"""Seasons: which episodes belong together, read from their ids or listed by hand.

`season.pattern` is a regular expression with named groups `show` and `season` (and usually
`episode`); an episode whose id it matches belongs to season `{show}_S{season}`
(`RHOBH_S05_E03_11062025` -> `RHOBH_S05`). Ids it does not match form one season of their own,
named `other` (UNMATCHED). `season.episodes` ({season: [episode ids]}) lists seasons by hand
instead; `season.exclude` leaves episodes out.
"""

from __future__ import annotations

import re

from .episodes import check_episode_id
from .errors import FacepipeError

UNMATCHED = "other"


def _compile(pattern: str) -> re.Pattern:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise FacepipeError(f"config key season.pattern: {pattern!r} is not a regular expression ({exc}); "
                            "fix it in config/config.yaml") from None
    missing = {"show", "season"} - set(rx.groupindex)
    if missing:
        raise FacepipeError(f"config key season.pattern: {pattern!r} has no named group {sorted(missing)[0]!r}; "
                            "write (?P<show>...) and (?P<season>...) in it, or list seasons in season.episodes")
    return rx


def season_of(episode: str, pattern: str) -> str:
    """The season an episode id belongs to by `pattern` (UNMATCHED when it does not match)."""
    match = _compile(pattern).match(episode)
    return f"{match['show']}_S{match['season']}" if match else UNMATCHED


def group(episodes, cfg: dict) -> dict[str, list[str]]:
    """Season -> its episode ids (sorted), for the episodes found and the season settings `cfg`.

    Raises FacepipeError, naming the key and the fix, for a listed episode that is not there, an
    episode listed in two seasons, or a season name that is not a safe id.
    """
    found = sorted(episodes)
    excluded = set(cfg.get("exclude") or [])
    seasons: dict[str, list[str]] = {}
    if cfg.get("episodes"):
        owner: dict[str, str] = {}
        for season, members in cfg["episodes"].items():
            check_episode_id(season, "config key season.episodes")
            for ep in members:
                if ep not in found:
                    raise FacepipeError(f"config key season.episodes: episode {ep!r} of season {season} is not in "
                                        "videos_dir; fix the id or add its video")
                if ep in owner:
                    raise FacepipeError(f"config key season.episodes: episode {ep!r} is listed in both {owner[ep]} "
                                        f"and {season}; list it once")
                owner[ep] = season
                if ep not in excluded:
                    seasons.setdefault(season, []).append(ep)
    else:
        rx_pattern = cfg.get("pattern") or ""
        _compile(rx_pattern)
        for ep in found:
            if ep not in excluded:
                seasons.setdefault(season_of(ep, rx_pattern), []).append(ep)
    return {season: sorted(eps) for season, eps in sorted(seasons.items())}

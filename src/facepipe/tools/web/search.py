"""Find a person from the dashboard: a photo uploaded as the request's body (its bytes, with their
Content-Type: no form encoding), checked for size and type (by its first bytes, whatever it is
called), then searched with tools.find (the process keeps its index and models between searches).

The answer holds what the page shows of each match: the episode and a link that plays its first
moment, every stay on screen (each a link to its moment), the best still's address, the distance
and the season cast member; then the cast members the matches belong to.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

from .. import find as finding
from .detail import still_url

MAX_BYTES = finding.MAX_PHOTO_BYTES  # the Guard lets a body this large through to the search only
# A photo's first bytes, by the type it is (base.media.PHOTO_SUFFIXES: JPEG, PNG, WebP, BMP).
MAGIC = {"image/jpeg": lambda b: b[:3] == b"\xff\xd8\xff", "image/png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
         "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP", "image/bmp": lambda b: b[:2] == b"BM"}
# What a browser may call a photo's type (the file's, or none it knows).
DECLARED = set(MAGIC) | {"image/jpg", "image/pjpeg", "image/x-ms-bmp", "application/octet-stream"}
NAME_CHARS = 80


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def photo_name(header: str | None) -> str:
    """The upload's file name for messages (X-Photo-Name, percent-encoded by the page): its last
    part, printable, cut to NAME_CHARS; "the photo" without one."""
    name = Path(unquote(header or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:NAME_CHARS]
    return name or "the photo"


def checked(data: bytes, content_type: str | None, name: str) -> None:
    """Refused (status, one line naming the photo and the fix) unless `data` is a photo of a type a
    search takes, under MAX_BYTES, sent as an image."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    kinds = "a JPEG, PNG, WebP or BMP photo of the face"
    if len(data) > MAX_BYTES:
        raise Refused(413, f"{name}: over {MAX_BYTES // 2**20} MB, more than a search photo may be; give a smaller "
                           "photo of the face")
    if not data:
        raise Refused(400, f"no photo in the request: send {kinds} as its body")
    if declared not in DECLARED:
        raise Refused(415, f"{name}: sent as {declared or 'no type'}, not as a photo; give {kinds}")
    if not any(looks(data) for looks in MAGIC.values()):
        raise Refused(415, f"{name}: not a photo (its bytes are no JPEG, PNG, WebP or BMP); give {kinds}")


async def read_photo(request) -> bytes:
    """The body, at most MAX_BYTES (a body sent without a length is cut there)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise Refused(413, f"photo refused: over {MAX_BYTES // 2**20} MB, more than a search photo may be; "
                               "give a smaller photo of the face")
        chunks.append(chunk)
    return b"".join(chunks)


def _moment(episode: str, t: float | None) -> str:
    return f"/episodes/{quote(episode)}" + (f"#t={t:g}" if t is not None else "")


def search(data_root: Path, cfg: dict, name: str, data: bytes) -> dict:
    """The search's answer (the module's docstring); FacepipeError (one line) for a photo without
    a face, or one that cannot be read."""
    found = finding.find([(name, data)], data_root, cfg or None, index=finding.index_for(data_root))
    matches = []
    for m in found.matches:
        still = Path(m["best_still"]).name if m["best_still"] else None
        matches.append({**{k: m[k] for k in ("episode", "cluster_id", "person_id", "name", "distance", "start_s",
                                             "end_s", "screen_time_s")},
                        "link": _moment(m["episode"], m["start_s"]),
                        "appearances": [{"start_s": s, "end_s": e, "link": _moment(m["episode"], s)}
                                        for s, e in m["appearances"]],
                        "still": still_url(m["episode"], still) if still else None,
                        "season": {**m["season"], "link": f"/seasons/{quote(m['season']['season'])}"}
                        if m["season"] else None})
    seasons = [{**s, "link": f"/seasons/{quote(s['season'])}"} for s in found.seasons]
    return {"photo": name, "episodes": found.episodes, "thresholds": found.thresholds, "matches": matches,
            "seasons": seasons, "skipped": [why for _ep, why in found.skipped]}

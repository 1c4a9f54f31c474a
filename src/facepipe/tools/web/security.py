"""Who may use the dashboard, and which files it may serve.

- Host: on a loopback address the Host header must name the loopback (localhost, 127.0.0.1 or
  another loopback address, [::1]: settings.is_loopback, the rule --host is judged by), so a web
  page whose DNS name is re-pointed at 127.0.0.1 cannot read or drive it.
- Token: with a token (required off the loopback), every request needs it: `?token=` once (the
  page is redirected without it and an HttpOnly SameSite=Strict cookie is set), the cookie after
  that, or an `Authorization: Bearer` header (API clients).
- Origin: every request other than GET and HEAD (the actions are all POST) must come from the
  page itself: an Origin header equal to this server's origin, or, from a client that sends no
  Origin, no Sec-Fetch-Site saying it came from another site. A form or fetch on another site
  can neither start nor cancel a run, nor record a correction, nor search. A body is at most
  MAX_BODY, the search's photo MAX_PHOTO_BYTES.
- Files: only an episode's own outputs, resolved (symbolic links followed) and still inside the
  data root's folder of that episode; a still only if stills/manifest.json lists its name.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse

from ..find import MAX_PHOTO_BYTES
from .settings import Settings, is_loopback

COOKIE = "facepipe_session"
SAFE_METHODS = {"GET", "HEAD"}
# The corrections take a small JSON body, the other actions none; a large one is refused before
# anything runs.
MAX_BODY = 64 * 1024
# ... but for the search's photo, sent as the body of its POST.
FIND_PATH = "/api/find"
HEADERS = [
    (b"content-security-policy", (b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                  b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                  b"frame-ancestors 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def error(status: int, reason: str) -> JSONResponse:
    """Every refusal: a JSON body with a one-line reason."""
    return JSONResponse({"error": reason}, status_code=status)


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie is not the token itself."""
    return hmac.new(token.encode(), b"facepipe serve session", hashlib.sha256).hexdigest()


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port ([::1]:8765 -> [::1])."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware applying the rules above to every HTTP request."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.session = session_value(settings.token) if settings.token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal, set_cookie = self.check(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = list(HEADERS)
                if set_cookie:
                    extra.append((b"set-cookie", set_cookie.encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def check(self, scope, headers: Headers):
        """(a refusal response or None, a Set-Cookie value or None)."""
        host = headers.get("host", "")
        if self.settings.loopback and not is_loopback(host_name(host)):
            return error(403, f"Host {host!r} refused: this server answers to its loopback address only"), None
        set_cookie = None
        if self.session is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.settings.token.encode()):
                set_cookie = f"{COOKIE}={self.session}; Path=/; HttpOnly; SameSite=Strict"
                if scope["method"] == "GET" and not scope["path"].startswith("/api/"):
                    rest = urlencode([(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1"))
                                      if k != "token"])
                    redirect = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
                    redirect.headers["set-cookie"] = set_cookie
                    return redirect, None
            elif not self._authorised(headers):
                return error(401, "this server needs its token: open the address printed at start-up "
                                  "(it ends in ?token=...), or send the header Authorization: Bearer <token>"), None
        if scope["method"] not in SAFE_METHODS:
            refusal = self._same_origin(scope, headers, host)
            if refusal is not None:
                return refusal, None
            length = headers.get("content-length", "0")
            if scope["path"] == FIND_PATH:
                if not length.isdigit() or int(length) > MAX_PHOTO_BYTES:
                    return error(413, f"photo refused: over {MAX_PHOTO_BYTES // 2**20} MB, more than a search photo "
                                      "may be; give a smaller photo of the face"), None
            elif not length.isdigit() or int(length) > MAX_BODY:
                return error(413, f"request body refused: over {MAX_BODY} bytes (a correction is a small JSON "
                                  "object; the other actions take no body)"), None
        return None, set_cookie

    def _authorised(self, headers: Headers) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return hmac.compare_digest(auth[7:].strip().encode(), self.settings.token.encode())
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session.encode())

    @staticmethod
    def _same_origin(scope, headers: Headers, host: str):
        origin = headers.get("origin")
        mine = f"{scope.get('scheme', 'http')}://{host}"
        if origin is not None and origin != mine:
            return error(403, f"cross-origin request refused: Origin {origin} is not this server ({mine})")
        if origin is None and headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return error(403, "cross-site request refused: it did not come from this server's page")
        return None


def contained_file(root: Path, folder: Path, name: str) -> Path | None:
    """`folder/name` if it is a regular file directly in `folder` once every link is followed, and
    inside the real `root` (the data root); None otherwise: a missing file, `..`, an absolute or
    hidden name, a link leading out of the folder or the data root."""
    if not name or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        return None
    try:
        real_root, real_folder = root.resolve(strict=True), folder.resolve(strict=True)
        real = (folder / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    inside = real.parent == real_folder and real.is_relative_to(real_root)
    return real if inside and real.is_file() else None
